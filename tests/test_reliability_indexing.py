"""Indexing reliability (issue 14): the build a killed run owed is done by the next run, the
quarantine is exact, a bad medium costs only itself, duplicated ids never replace a stored item,
and points other code enriched are not rewritten when their row is unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reliability_support import SAMPLE_MAPPING, messy_catalogue, snapshot

from mosaicrec.encoders.profiles import load_profile
from mosaicrec.indexing.catalogue import ColumnMapping
from mosaicrec.indexing.indexer import IndexerConfig, index_catalogue
from mosaicrec.indexing.stores import StoreConfig, VectorSpace, open_store

MAPPING = ColumnMapping.model_validate(SAMPLE_MAPPING)


@pytest.fixture(scope="module")
def tiny():
    return load_profile("tiny", device="cpu")


def _index(catalogue: Path, config: StoreConfig, **options):
    options.setdefault("quarantine_path", catalogue.parent / "q.jsonl")
    indexer = IndexerConfig(progress=False, batch_size=8, **options)
    return index_catalogue(catalogue, config, "tiny", mapping=MAPPING, indexer=indexer,
                           device="cpu")


class _Killed(RuntimeError):
    pass


# -- defect 1: killed between the last upsert and the build -----------------------------------
def test_the_next_run_builds_the_index_a_killed_run_left_undone(tmp_path: Path) -> None:
    catalogue = messy_catalogue(tmp_path / "cat")
    # a low threshold, so that 40 items get a real HNSW graph
    config = StoreConfig(backend="edge", path=str(tmp_path / "edge"), indexing_threshold_kb=1)
    store, _, _ = _index(catalogue, config, optimize=False)  # "killed" before the build
    pending = store.info()
    assert pending["indexed_vectors"] == 0
    store.close()
    store, _, report = _index(catalogue, config)  # nothing changed since
    info = store.info()
    assert report.indexed == 0 and report.unchanged > 0
    assert info["indexed_vectors"] > 0, "the owed build was skipped"
    assert pending["search_index"] == "pending"
    assert report.optimized and info["search_index"] == "built"
    store.close()
    store = open_store(config)  # the state is persisted, not remembered by the handle
    assert store.info()["search_index"] == "built"
    store.close()


def test_a_build_that_dies_is_redone(tmp_path: Path) -> None:
    catalogue = messy_catalogue(tmp_path / "cat")
    config = StoreConfig(backend="edge", path=str(tmp_path / "edge"))
    store, _, _ = _index(catalogue, config, optimize=False)
    real = store.optimize
    store.optimize = lambda: (_ for _ in ()).throw(_Killed("killed during the build"))
    from mosaicrec.indexing.catalogue import read_catalogue
    from mosaicrec.indexing.indexer import BulkIndexer

    items, rejected = read_catalogue(catalogue, MAPPING)
    with pytest.raises(_Killed):
        BulkIndexer(load_profile("tiny", device="cpu"), store,
                    IndexerConfig(progress=False)).run(items, rejected)
    store.optimize = real
    store.close()
    store, _, report = _index(catalogue, config)
    assert report.optimized and store.info()["search_index"] == "built"
    store.close()


# -- defect 2: the quarantine grew with every run -----------------------------------------------
def test_quarantine_is_identical_after_re_runs_and_resumes(tmp_path: Path) -> None:
    catalogue = messy_catalogue(tmp_path / "cat")
    quarantine = tmp_path / "cat" / "q.jsonl"
    config = StoreConfig(backend="edge", path=str(tmp_path / "edge"))
    store, _, first = _index(catalogue, config)
    store.close()
    text = quarantine.read_text()
    for _ in range(2):  # plain re-runs
        store, _, again = _index(catalogue, config)
        store.close()
        assert quarantine.read_text() == text and again.indexed == 0
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == first.quarantined == 8
    assert [(r["row"], r["field"]) for r in rows] == sorted((r["row"], r["field"]) for r in rows)
    # a resume: the collection lost half its items (as if the first run had died half-way)
    store = open_store(config)
    store.delete(sorted(r.id for r in store.iter_records())[::2])
    store.close()
    store, _, resumed = _index(catalogue, config)
    store.close()
    assert resumed.indexed > 0 and quarantine.read_text() == text


# -- defect 6: a bad medium dropped the whole item; silence was rejected ---------------------
def test_bad_media_cost_only_themselves_and_silence_is_audio(tmp_path: Path, tiny) -> None:
    catalogue = messy_catalogue(tmp_path / "cat")
    store, _, report = _index(catalogue, StoreConfig(backend="qdrant", path=":memory:"))
    stored = snapshot(store)
    failures = (("ocean-03", "image"), ("forest-02", "audio"), ("no-file", "image"),
                ("escape", "image"))
    for item, medium in failures:
        assert item in stored, item  # indexed from what it has
        assert medium not in stored[item] and "text" in stored[item]
    assert "audio" in stored["quiet"] and not [r for r in report.reasons if r.id == "quiet"]
    records = {(r.id, r.field): r for r in report.reasons}
    for item, medium in failures:
        assert records[(item, medium)].indexed  # the record names the failed medium
    assert "truncated" in records[("forest-02", "audio")].reason
    assert "outside the media roots" in records[("escape", "image")].reason
    # the fused vector is renormalised over the modalities the item kept
    for item in ("ocean-03", "forest-02"):
        assert abs(float(np.linalg.norm(stored[item]["fused"])) - 1.0) < 1e-5
    (escape,) = store.retrieve(["escape"])
    assert "image" not in escape.payload  # a refused path is not recorded
    (ocean,) = store.retrieve(["ocean-01"])
    assert ocean.payload["image"] == "images/ocean-01.png"  # relative to its root
    store.close()


# -- defect 8: a duplicated id replaced the stored item ---------------------------------------
def test_a_duplicated_id_never_replaces_the_stored_item(tmp_path: Path) -> None:
    catalogue = messy_catalogue(tmp_path / "cat")
    config = StoreConfig(backend="qdrant", path=str(tmp_path / "db"))
    store, _, _ = _index(catalogue, config)
    (before,) = store.retrieve(["city-01"], vectors=True)
    store.close()
    frame = pd.read_csv(catalogue, dtype=str, keep_default_na=False)
    original = frame[frame.id == "city-01"]
    impostor = {**original.iloc[0].to_dict(), "title": "Something else entirely"}
    # the ambiguous row comes FIRST, the unchanged one later
    frame = pd.concat([pd.DataFrame([impostor]), frame])
    frame.to_csv(catalogue, index=False)
    store, _, report = _index(catalogue, config, prune=True)
    (after,) = store.retrieve(["city-01"], vectors=True)
    assert after.payload == before.payload  # untouched, and not pruned either
    np.testing.assert_allclose(after.vectors["fused"], before.vectors["fused"], atol=1e-6)
    dupes = [r for r in report.reasons if r.id == "city-01"]
    assert len(dupes) == 2 and all("duplicate id" in r.reason for r in dupes)
    store.close()


# -- upserts keep what other code stored on unchanged points; on_upsert for changed ones ------
def test_unchanged_rows_are_not_rewritten_and_on_upsert_sees_changed_ones(tmp_path: Path) -> None:
    catalogue = messy_catalogue(tmp_path / "cat")
    config = StoreConfig(backend="edge", path=str(tmp_path / "edge"))
    written: list[list[str]] = []
    store, _, _ = _index(catalogue, config)
    ids = sorted(r.id for r in store.iter_records())
    store.add_vector_space("als", VectorSpace(dim=4, encoder="als-test", distance="dot"))
    store.update_vectors("als", ids, np.arange(4 * len(ids), dtype=np.float32).reshape(-1, 4))
    store.set_payload(ids, {"behaviour": "trained"})
    store.close()
    frame = pd.read_csv(catalogue, dtype=str, keep_default_na=False)
    frame.loc[frame.id == "city-02", "description"] = "A changed description."
    frame.to_csv(catalogue, index=False)
    store, _, report = index_catalogue(
        catalogue, config, "tiny", mapping=MAPPING, device="cpu", on_upsert=written.append,
        indexer=IndexerConfig(progress=False, quarantine_path=catalogue.parent / "q.jsonl"))
    assert report.indexed == 1 and written == [["city-02"]]
    records = {r.id: r for r in store.iter_records(vectors=["als"])}
    kept = records["city-01"]
    assert kept.payload["behaviour"] == "trained" and "als" in kept.vectors
    assert "behaviour" not in records["city-02"].payload  # replaced; the service re-syncs it
    assert "behaviour" in store.schema.payload_fields
    store.close()
