"""The Ray engine (issue 16) against the single-process indexer, on a local Ray started here
(2 CPUs, tiny random-initialised encoders): the same points (ids, payloads, vectors within
float tolerance) and the same quarantine on the messy sample catalogue and on MovieLens, and a
``mosaicrec index --engine ray`` killed after its first written batch resumes with nothing lost
and nothing doubled."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_support import (
    SAMPLE,
    SAMPLE_MAPPING,
    CliRun,
    assert_same_vectors,
    index_args,
    messy_catalogue,
    read_collection,
)

from mosaicrec.encoders.profiles import EncoderProfile
from mosaicrec.errors import MissingDependencyError
from mosaicrec.indexing.catalogue import ColumnMapping
from mosaicrec.indexing.distributed import RayEngineConfig, plan_pools
from mosaicrec.indexing.indexer import IndexerConfig, IndexReport, index_catalogue
from mosaicrec.indexing.stores import StoreConfig

ray = pytest.importorskip("ray", reason="the Ray engine needs mosaicrec[distributed] (ray[data])")
pytest.importorskip("ray.data", reason="the Ray engine needs Ray Data: mosaicrec[distributed]")

Collection = tuple[dict, dict, str, str]  # vectors, payloads, search-index state, quarantine


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """A local Ray for the whole module (its start costs seconds); yields its address and the
    environment another driver needs to join it (Ray turns token authentication on for a
    local cluster in this process's environment)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    env = {k: os.environ[k] for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
           if k in os.environ}
    try:
        yield ray.get_runtime_context().gcs_address, env
    finally:
        ray.shutdown()


def _index(catalogue: Path, store: Path, engine: str, *, profile: object = "tiny",
           mapping: dict = SAMPLE_MAPPING, **options: object) -> tuple[Collection, IndexReport]:
    """Index into ``<store>/items`` (the CLI's layout); the collection read back, the report."""
    options = {"progress": False, "batch_size": 8, **options}
    config = IndexerConfig(engine=engine, quarantine_path=store / "items.quarantine.jsonl",
                           **options)
    handle, _, report = index_catalogue(
        catalogue, StoreConfig(backend="edge", path=str(store), collection="items"), profile,
        mapping=ColumnMapping.model_validate(mapping), indexer=config, device="cpu")
    handle.close()
    assert report.search_index == "built"
    return read_collection(store), report


def _assert_same(reference: Collection, other: Collection) -> None:
    assert_same_vectors(reference[0], other[0], atol=1e-5)  # same ids, no duplicates
    assert other[1] == reference[1]
    assert other[2] == "built"
    assert other[3] == reference[3]


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample catalogue with bad rows and broken media (a non-empty quarantine)."""
    return messy_catalogue(tmp_path_factory.mktemp("ray") / "catalogue")


@pytest.fixture(scope="module")
def reference(messy: Path) -> Collection:
    """The single-process indexer's collection of the messy catalogue."""
    collection = _index(messy, messy.parent.parent / "reference", "local")[0]
    assert len(collection[3].splitlines()) == 8  # bad rows and failed media, as in issue 14
    return collection


def test_ray_engine_gives_the_single_process_points_and_quarantine(
    cluster: tuple[str, dict[str, str]], messy: Path, reference: Collection, tmp_path: Path
) -> None:
    _assert_same(reference, _index(messy, tmp_path / "ray", "ray")[0])


@pytest.mark.realdata
def test_ray_engine_on_movielens_matches_the_single_process_indexer(
    cluster: tuple[str, dict[str, str]], movielens_dir: Path, tmp_path: Path
) -> None:
    from mosaicrec.indexing.movielens import movielens_catalogue

    catalogue, count = movielens_catalogue(movielens_dir, tmp_path / "movies.csv")
    mapping = json.loads((tmp_path / "movies.mapping.json").read_text())
    profile = EncoderProfile(name="tiny-ml", text="tiny-text", image="tiny-clip", audio=None)
    options = {"profile": profile, "mapping": mapping, "batch_size": 64}
    local = _index(catalogue, tmp_path / "local", "local", **options)[0]
    distributed = _index(catalogue, tmp_path / "ray", "ray", **options)[0]
    assert len(local[0]) == count
    assert sum("image" in v for v in local[0].values()) > 0.9 * count  # posters were embedded
    _assert_same(local, distributed)


def test_a_killed_ray_run_resumes_with_nothing_lost_or_doubled(
    cluster: tuple[str, dict[str, str]], messy: Path, reference: Collection, tmp_path: Path
) -> None:
    store = tmp_path / "killed"
    address, env = cluster
    args = [*index_args(messy, store), "--engine", "ray", "--ray-address", address,
            "--ray-block-rows", "8"]
    # the run holds still right after its first batch is in the store, and is killed there
    run = CliRun(args, {**env, "MOSAICREC_TEST_PAUSE_BATCH_WRITTEN": "600"})
    try:
        assert run.wait_for("batch-written", timeout=240), "".join(run.err)[-3000:]
    finally:
        killed = run.kill()
    assert killed
    from mosaicrec.indexing.stores import open_store

    with open_store(StoreConfig(backend="edge", path=str(store), collection="items")) as s:
        written = s.count()
    assert 0 < written < len(reference[0])  # killed part-way
    resumed, report = _index(messy, store, "ray")
    _assert_same(reference, resumed)
    assert report.unchanged == written  # what the killed run wrote was not embedded again
    assert report.indexed == len(reference[0]) - written


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from mosaicrec.indexing.distributed import require_ray
    from mosaicrec.serving.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"mosaicrec\[distributed\]"):
        require_ray()
    catalogue = SAMPLE / "catalogue.csv"
    assert main([*index_args(catalogue, tmp_path / "store"), "--engine", "ray"]) == 2
    assert "pip install 'mosaicrec[distributed]'" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()  # refused before anything was loaded or written
    assert main([*index_args(catalogue, tmp_path / "store"), "--ray-address", "auto"]) == 2


def test_pools_share_the_gpus_when_there_are_fewer_than_encoders() -> None:
    config = RayEngineConfig()
    one_gpu = plan_pools(config, {"CPU": 16, "GPU": 1}, ["text", "image"], 32)
    assert sum(p.min_size * p.num_gpus for p in one_gpu.values()) <= 1  # every pool starts
    assert all(p.batch_size == config.gpu_batch_size for p in one_gpu.values())
    eight = plan_pools(config, {"CPU": 64, "GPU": 8}, ["text", "image", "audio"], 32)
    assert {p.num_gpus for p in eight.values()} == {1.0}
    assert all(p.max_size == 8 for p in eight.values())
    cpus = plan_pools(config, {"CPU": 2}, ["text", "image", "audio"], 32)
    assert sum(p.min_size * p.num_cpus for p in cpus.values()) <= 2 - config.decode_cpus
    assert plan_pools(config, {"CPU": 8, "GPU": 2}, ["image"], 32, force_cpu=True)[
        "image"].num_gpus == 0
