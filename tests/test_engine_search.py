"""Cross-modal and example search through one request API, with injected encoders."""

from __future__ import annotations

import numpy as np
import pytest

from mosaicrec.encoders.fusion import Fuser
from mosaicrec.engine.search import Searcher, SearchRequest
from mosaicrec.engine.synthetic import clustered_catalogue
from mosaicrec.errors import ConfigError, RequestError, UnknownItemError
from mosaicrec.indexing.stores import (
    CollectionSchema,
    Condition,
    Filter,
    Point,
    StoreConfig,
    VectorSpace,
    open_store,
)

D = 16


class FakeEncoder:
    """Maps known inputs to fixed vectors (a stand-in for a trained tower)."""

    def __init__(self, table, modality="text", dim=D):
        self.table, self.modality, self.dim, self.name = table, modality, dim, "fake"

    def encode(self, batch):
        return np.stack([self.table[x] for x in batch]).astype(np.float32)


@pytest.fixture(scope="module")
def world():
    text = clustered_catalogue(3, 10, D, spread=0.2, seed=1)
    image = clustered_catalogue(3, 10, D, spread=0.2, seed=2)
    fuser = Fuser({"text": D, "image": D})
    fused = fuser.fuse_batch({"text": text.vectors, "image": image.vectors})
    schema = CollectionSchema(
        vectors={"text": VectorSpace(dim=D, encoder="t"), "image": VectorSpace(dim=D, encoder="i"),
                 "fused": VectorSpace(dim=2 * D, encoder="f")},
        payload_indexes={"kind": "keyword"})
    store = open_store(StoreConfig(backend="qdrant", path=":memory:"), schema)
    store.upsert([Point(f"x{k}", {"text": text.vectors[k], "image": image.vectors[k],
                                  "fused": fused[k]}, {"kind": "even" if k % 2 == 0 else "odd"})
                  for k in range(30)])
    encoders = {
        # the text and image clusters of item k are both label k // 10
        "text->text": FakeEncoder({"first": text.centers[0], "third": text.centers[2]}),
        "text->image": FakeEncoder({"first": image.centers[0], "third": image.centers[2]}),
        "image->image": FakeEncoder({b"img-2": image.centers[2]}, "image"),
    }
    return store, Searcher(store, encoders, fuser)


def group(hits):
    return {int(h.id[1:]) // 10 for h in hits}


@pytest.mark.parametrize("space", ["text", "image", "fused"])
def test_text_query_into_each_space(world, space):
    _, searcher = world
    hits = searcher.search(SearchRequest(text="third", space=space, limit=5))
    assert len(hits) == 5 and group(hits) == {2}


def test_image_query_into_image_and_fused(world):
    _, searcher = world
    assert group(searcher.search(SearchRequest(image=b"img-2", space="image", limit=4))) == {2}
    assert group(searcher.search({"image": b"img-2", "space": "fused", "limit": 4})) == {2}


def test_item_to_similar_items_excludes_itself_and_filters(world):
    _, searcher = world
    hits = searcher.search(SearchRequest(item_id="x3", space="fused", limit=5))
    assert "x3" not in [h.id for h in hits] and group(hits) == {0}
    even = searcher.search(SearchRequest(item_id="x3", limit=5, filter=Filter(
        must=[Condition(field="kind", match="even")])))
    assert even and all(h.payload["kind"] == "even" for h in even)
    diverse = searcher.search(SearchRequest(item_id="x3", limit=5, diversity=0.5))
    assert len(diverse) == 5 and "x3" not in [h.id for h in diverse]


def test_errors(world):
    store, searcher = world
    with pytest.raises(UnknownItemError):
        searcher.search(SearchRequest(item_id="nope"))
    with pytest.raises(RequestError, match="space 'audio' is not in the collection"):
        searcher.search(SearchRequest(text="first", space="audio"))
    with pytest.raises(ConfigError, match="image -> text"):
        searcher.search(SearchRequest(image=b"img-2", space="text"))
    with pytest.raises(ConfigError):
        Searcher(store, {"fused": FakeEncoder({})})
    for bad in ({}, {"text": "a", "item_id": "x1"}, {"text": "  "}, {"text": "a", "limit": 0},
                {"text": "a", "space": "video"}, {"text": "a", "limt": 3}):
        with pytest.raises(RequestError):
            SearchRequest(**bad)
    with pytest.raises(ConfigError, match="text -> image"):
        Searcher(store, {}, None).search({"text": "first", "space": "image"})
    with pytest.raises(ConfigError, match="Fuser"):
        Searcher(store, {}, None).search({"text": "first", "space": "fused"})


def test_tiny_clip_text_to_image_end_to_end():
    """A real (tiny, untrained) CLIP: both towers run, vectors land in one space."""
    from mosaicrec.encoders import create_encoder

    clip = create_encoder("tiny-clip", device="cpu")
    from PIL import Image

    imgs = [Image.new("RGB", (40, 40), c) for c in ("red", "green", "blue")]
    vecs = clip.encode(imgs)
    schema = CollectionSchema(vectors={"image": VectorSpace(dim=clip.dim, encoder=clip.name)})
    store = open_store(StoreConfig(backend="qdrant", path=":memory:"), schema)
    store.upsert([Point(f"img{k}", {"image": v}) for k, v in enumerate(vecs)])
    searcher = Searcher(store, {"text->image": clip.text_tower(), "image->image": clip})
    hits = searcher.search(SearchRequest(text="a red square", space="image", limit=3))
    assert sorted(h.id for h in hits) == ["img0", "img1", "img2"]
    same = searcher.search(SearchRequest(image=_png(imgs[1]), space="image", limit=1))
    assert same[0].id == "img1" and same[0].score == pytest.approx(1.0, abs=1e-3)


def _png(img):
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
