"""Item vectors: read through the store contract, saved and loaded."""

from __future__ import annotations

import numpy as np
import pytest

from mosaicrec.errors import CatalogueError
from mosaicrec.indexing.vectors import ItemVectors


def test_vectors_from_a_store_are_aligned_to_the_catalogue(tmp_path):
    from mosaicrec.indexing.stores import (
        CollectionSchema,
        Point,
        StoreConfig,
        VectorSpace,
        open_store,
    )

    schema = CollectionSchema(vectors={"text": VectorSpace(dim=3, encoder="t"),
                                       "image": VectorSpace(dim=2, encoder="i")})
    config = StoreConfig(backend="qdrant", path=str(tmp_path / "store"))
    store = open_store(config, schema)
    store.upsert([
        Point("b", {"text": np.array([0.0, 1.0, 0.0]), "image": np.array([1.0, 0.0])}),
        Point("a", {"text": np.array([1.0, 0.0, 0.0])}),  # no poster
    ])
    store.close()
    vectors = ItemVectors.from_store(config)
    assert vectors.ids == ["a", "b"]
    assert vectors.encoders == {"image": "i", "text": "t"}
    assert vectors.present["image"].tolist() == [False, True]
    # catalogue ids may be ints (u.data); unknown items get zero rows
    text, has = vectors.aligned(["b", "a", "zzz"], "text")
    assert text.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert has.tolist() == [True, True, False]
    assert vectors.aligned(["a", "b"], "image")[1].tolist() == [False, True]
    assert list(vectors.by_id("image")) == ["b"]
    with pytest.raises(CatalogueError, match="no vectors"):
        ItemVectors.from_store(config, names=["audio"])


def test_save_and_load_round_trip(tmp_path):
    vectors = ItemVectors(["1", "2"], {"text": np.eye(2, dtype=np.float32)},
                          encoders={"text": "enc"})
    vectors.save(tmp_path / "v.npz", meta={"k": 1})
    loaded, meta = ItemVectors.load(tmp_path / "v.npz")
    assert loaded.ids == ["1", "2"] and meta == {"k": 1} and loaded.encoders == {"text": "enc"}
    assert np.array_equal(loaded.aligned([2, 1], "text")[0], [[0, 1], [1, 0]])
    with pytest.raises(CatalogueError, match="rows"):
        ItemVectors(["1"], {"text": np.eye(2)})
    with pytest.raises(CatalogueError, match="no vector space"):
        loaded.aligned(["1"], "image")
