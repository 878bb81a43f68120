"""Index the full MovieLens 100K catalogue with posters (tiny encoders, embedded store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mosaicrec.encoders.profiles import EncoderProfile, load_profile
from mosaicrec.indexing.catalogue import ColumnMapping, read_catalogue
from mosaicrec.indexing.indexer import BulkIndexer, IndexerConfig, collection_schema
from mosaicrec.indexing.movielens import movielens_catalogue
from mosaicrec.indexing.stores import StoreConfig, open_store


@pytest.mark.realdata
def test_index_full_movielens_with_posters(movielens_dir: Path, tmp_path: Path) -> None:
    catalogue, count = movielens_catalogue(movielens_dir, tmp_path / "movies.csv")
    mapping = ColumnMapping.model_validate(
        json.loads((tmp_path / "movies.mapping.json").read_text())
    )
    items, rejected = read_catalogue(catalogue, mapping)
    profile = load_profile(
        EncoderProfile(name="tiny-ml", text="tiny-text", image="tiny-clip", audio=None),
        device="cpu",
    )
    store = open_store(
        StoreConfig(backend="edge", path=str(tmp_path / "store"), collection="movies"),
        collection_schema(profile, dict(mapping.payload)),
    )
    config = IndexerConfig(progress=False, batch_size=64, quarantine_path=tmp_path / "q.jsonl")
    report = BulkIndexer(profile, store, config).run(items, rejected)
    assert report.quarantined == 0, report.reasons[:3]
    assert store.count() == count == 1682
    posters = {p.stem for p in (movielens_dir / "posters").glob("*.jpg")}
    with_image = {r.id for r in store.iter_records(vectors=["image"]) if "image" in r.vectors}
    assert with_image == posters
    assert len(posters) == 1663
    store.close()
