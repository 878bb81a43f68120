"""Bulk indexing: idempotence, resume after a crash, quarantine, incremental updates, filters,
schema checks, on both store backends."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mosaicrec.encoders.profiles import load_profile
from mosaicrec.errors import SchemaMismatchError
from mosaicrec.indexing.catalogue import ColumnMapping, read_catalogue
from mosaicrec.indexing.indexer import BulkIndexer, IndexerConfig, collection_schema
from mosaicrec.indexing.stores import Condition, Filter, StoreConfig, open_store

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
MAPPING = ColumnMapping.model_validate(json.loads((SAMPLE / "catalogue.mapping.json").read_text()))


@pytest.fixture(scope="module")
def tiny_profile():
    return load_profile("tiny", device="cpu")


@pytest.fixture(params=["edge", "qdrant"])
def store_config(request, tmp_path: Path) -> StoreConfig:
    if request.param == "edge":
        return StoreConfig(backend="edge", path=str(tmp_path / "edge"))
    return StoreConfig(backend="qdrant", path=str(tmp_path / "local"))


def _sample(tmp_path: Path) -> Path:
    """A private copy of the sample catalogue, free to break."""
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE, target)
    return target / "catalogue.csv"


def _index(profile, config, catalogue: Path, **kw):
    items, rejected = read_catalogue(catalogue, MAPPING)
    store = open_store(config, collection_schema(profile, dict(MAPPING.payload)))
    cfg = IndexerConfig(progress=False, batch_size=8, **kw)
    report = BulkIndexer(profile, store, cfg).run(items, rejected)
    return store, report


def _vectors(store) -> dict[str, dict[str, np.ndarray]]:
    return {r.id: r.vectors for r in store.iter_records(vectors=True)}


def test_index_sample_and_reindex_is_idempotent(tiny_profile, store_config, tmp_path):
    catalogue = _sample(tmp_path)
    store, report = _index(tiny_profile, store_config, catalogue)
    assert (report.indexed, report.quarantined) == (40, 0)
    assert store.count() == 40
    before = _vectors(store)
    # items without an image or audio still have text + fused vectors
    no_image = [i for i, v in before.items() if "image" not in v]
    assert no_image and all({"text", "fused"} <= set(before[i]) for i in no_image)
    store.close()
    store, again = _index(tiny_profile, store_config, catalogue)
    assert (again.indexed, again.unchanged) == (0, 40)
    after = _vectors(store)
    assert store.count() == 40 and set(after) == set(before)
    for item_id, vecs in before.items():
        for name, vec in vecs.items():
            np.testing.assert_allclose(after[item_id][name], vec, atol=1e-6)
    store.close()


def test_full_reembed_keeps_count_and_vectors(tiny_profile, tmp_path):
    config = StoreConfig(backend="qdrant", path=":memory:")
    items, _ = read_catalogue(_sample(tmp_path), MAPPING)
    store = open_store(config, collection_schema(tiny_profile, dict(MAPPING.payload)))
    indexer = BulkIndexer(tiny_profile, store, IndexerConfig(progress=False))
    indexer.run(items)
    before = _vectors(store)
    for it in items:  # pretend every row changed: everything is embedded and upserted again
        it.content_hash = "changed"
    report = indexer.run(items)
    assert report.indexed == 40 and store.count() == 40
    after = _vectors(store)
    for item_id, vecs in before.items():
        for name, vec in vecs.items():
            np.testing.assert_allclose(after[item_id][name], vec, atol=1e-5)


class _Crash(RuntimeError):
    pass


def test_resume_after_crash_loses_and_duplicates_nothing(tiny_profile, store_config, tmp_path):
    catalogue = _sample(tmp_path)
    items, _ = read_catalogue(catalogue, MAPPING)
    store = open_store(store_config, collection_schema(tiny_profile, dict(MAPPING.payload)))
    real_upsert, calls = store.upsert, []

    def dying_upsert(points):
        calls.append(len(points))
        if len(calls) == 3:  # the process "dies" while writing the third batch
            raise _Crash("killed")
        real_upsert(points)

    store.upsert = dying_upsert
    with pytest.raises(_Crash):
        BulkIndexer(tiny_profile, store, IndexerConfig(progress=False, batch_size=8)).run(items)
    assert store.count() == 16  # two finished batches are durable
    store.upsert = real_upsert
    store.close()
    store, report = _index(tiny_profile, store_config, catalogue)
    assert report.unchanged == 16 and report.indexed == 24  # finished batches not redone
    assert store.count() == 40
    assert sorted(r.id for r in store.iter_records()) == sorted(it.id for it in items)
    store.close()


def test_quarantine_lists_every_bad_row_and_indexes_the_rest(tiny_profile, tmp_path):
    catalogue = _sample(tmp_path)
    folder = catalogue.parent
    (folder / "images" / "ocean-03.png").write_bytes(b"not a png at all")
    (folder / "audio" / "forest-02.wav").write_bytes(
        (folder / "audio" / "forest-02.wav").read_bytes()[:30]
    )
    frame = pd.read_csv(catalogue, dtype=str, keep_default_na=False)
    extra = [
        {**frame.iloc[0].to_dict(), "id": ""},  # missing id
        {**frame.iloc[1].to_dict()},  # duplicate id ocean-02
        {**frame.iloc[2].to_dict(), "id": "bad-year", "year": "soon"},
        {**frame.iloc[3].to_dict(), "id": "no-file", "image": "images/missing.png"},
    ]
    pd.concat([frame, pd.DataFrame(extra)]).to_csv(catalogue, index=False)
    quarantine = tmp_path / "q.jsonl"
    store, report = _index(
        tiny_profile,
        StoreConfig(backend="qdrant", path=":memory:"),
        catalogue,
        quarantine_path=quarantine,
    )
    rows = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert len(rows) == report.quarantined == 7
    assert [r["row"] for r in rows] == sorted(r["row"] for r in rows)
    by = {(r["id"], r["field"]): r for r in rows}
    assert "missing id" in by[(None, "id")]["reason"]
    assert sum(r["id"] == "ocean-02" and "duplicate id" in r["reason"] for r in rows) == 2
    assert "soon" in by[("bad-year", "payload")]["reason"]
    # a bad medium costs that medium, not the item: indexed from what it has, and said so
    assert by[("no-file", "image")]["indexed"] and "missing.png" in by[("no-file", "image")][
        "reason"]
    assert by[("ocean-03", "image")]["indexed"]
    assert by[("forest-02", "audio")]["indexed"]
    assert report.degraded == 3
    stored = {r.id: r for r in store.iter_records(vectors=True)}
    assert len(stored) == store.count() == 40  # 40 - ocean-02 (ambiguous) + no-file
    assert "ocean-02" not in stored and "bad-year" not in stored
    assert set(stored["forest-02"].vectors) == {"text", "image", "fused"}
    assert stored["forest-02"].payload["modalities"] == ["image", "text"]
    assert set(stored["ocean-03"].vectors) == {"text", "audio", "fused"}


def test_incremental_update_and_prune(tiny_profile, tmp_path):
    catalogue = _sample(tmp_path)
    config = StoreConfig(backend="qdrant", path=str(tmp_path / "db"))
    store, _ = _index(tiny_profile, config, catalogue)
    store.close()
    frame = pd.read_csv(catalogue, dtype=str, keep_default_na=False)
    frame.loc[frame.id == "city-01", "description"] = "A brand new description."
    frame = frame[frame.id != "space-10"]
    new = {**frame.iloc[0].to_dict(), "id": "new-01", "title": "Fresh item"}
    pd.concat([frame, pd.DataFrame([new])]).to_csv(catalogue, index=False)
    store, report = _index(tiny_profile, config, catalogue, prune=True)
    assert (report.indexed, report.deleted, report.unchanged) == (2, 1, 38)
    assert store.count() == 40
    (rec,) = store.retrieve(["city-01"])
    assert "brand new" in rec.payload["text"]
    assert store.retrieve(["space-10"]) == []
    store.close()


def test_payload_filters_on_indexed_collection(tiny_profile, store_config, tmp_path):
    store, _ = _index(tiny_profile, store_config, _sample(tmp_path))
    (query,) = store.retrieve(["forest-02"], vectors=["fused"])
    flt = Filter(
        must=[Condition(field="category", match="city"), Condition(field="year", gte=2020)]
    )
    hits = store.query(query.vectors["fused"], using="fused", limit=40, filter=flt)
    assert hits and all(h.payload["category"] == "city" and h.payload["year"] >= 2020 for h in hits)
    tagged = store.query(
        query.vectors["fused"],
        using="fused",
        limit=40,
        filter=Filter(must=[Condition(field="tags", match="calm")]),
    )
    assert len(tagged) == 10 and all(h.id.startswith("ocean") for h in tagged)
    store.close()


def test_opening_with_other_encoders_is_refused(tiny_profile, store_config, tmp_path):
    store, _ = _index(tiny_profile, store_config, _sample(tmp_path))
    store.close()
    other = load_profile(
        tiny_profile.profile.model_copy(update={"text": "tiny-clip-text"}), device="cpu"
    )
    with pytest.raises(SchemaMismatchError, match="text"):
        open_store(store_config, collection_schema(other, dict(MAPPING.payload)))


def test_collection_records_how_it_was_fused(tiny_profile):
    from mosaicrec.encoders.profiles import fuser_from_schema

    schema = collection_schema(tiny_profile, dict(MAPPING.payload))
    fuser = fuser_from_schema(schema)
    assert fuser.dim == schema.vectors["fused"].dim == tiny_profile.fuser.dim
    assert fuser.modalities == ("text", "image", "audio")
    assert fuser_from_schema(schema.model_copy(update={"profile": None})) is None
