"""A whole run on a tiny synthetic log: report files, bit-for-bit reruns, validation-only
tuning, and the ``evaluate`` command line."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from mosaicrec.errors import ConfigError
from mosaicrec.evaluation.grids import TuningGrids
from mosaicrec.evaluation.runner import EvaluationConfig, run_evaluation
from mosaicrec.evaluation.suite import SERVED, UNTRAINED

N_USERS, N_ITEMS = 40, 30
TINY_TRAINING = {
    "ease_lams": [10.0], "ease_half_lives": [None, 5.0],
    "als": {"factors": 4, "regularization": 0.1, "iterations": 5},
    "sequence": {"dim": 8, "epochs": 3, "max_len": 20, "batch_size": 16},
    "blend_grid": {"sequence": [0.0, 1.0], "popularity": [0.0], "new_item": [0.5]},
    "content_map": {"spaces": ["text"], "ridges": [1.0], "folds": 2},
    "min_events": 6,
}


def _write_inputs(tmp_path):
    """Two taste groups over 30 items, a catalogue whose texts name the group."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(N_USERS):
        pool = np.arange(15) if u % 2 == 0 else np.arange(15, N_ITEMS)
        items = rng.choice(pool, 12, replace=False).tolist()
        items += rng.choice(np.setdiff1d(np.arange(N_ITEMS), items), 8, replace=False).tolist()
        rows += [(f"u{u}", f"i{i}", int(rng.choice([2, 4, 5])), 1000 * u + t)
                 for t, i in enumerate(items)]
    log = tmp_path / "log.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]).to_csv(
        log, index=False)
    words = ["sunny beach ocean waves", "dark forest mountain snow"]
    catalogue = tmp_path / "items.csv"
    pd.DataFrame({"id": [f"i{i}" for i in range(N_ITEMS)],
                  "title": [f"Item {i}" for i in range(N_ITEMS)],
                  "description": [f"{words[i >= 15]} number {i}" for i in range(N_ITEMS)],
                  }).to_csv(catalogue, index=False)
    return log, catalogue


def _grids() -> TuningGrids:
    return TuningGrids(
        item_knn_k=[5], ease_lam=[10.0, 100.0], als_factors=[4], als_regularization=[0.1, 1.0],
        als_alpha=[1.0], bpr_factors=[4], bpr_learning_rate=[0.05], bpr_regularization=[0.01],
        bpr_iterations=10)


@pytest.fixture
def tiny_config(tmp_path):
    log, catalogue = _write_inputs(tmp_path)
    from mosaicrec.evaluation.split import SplitConfig

    return EvaluationConfig(ratings=log, catalogue=catalogue, profile="tiny",
                            workdir=tmp_path / "work", out=tmp_path / "out",
                            split=SplitConfig(cold_item_fraction=0.1), grids=_grids(),
                            training=TINY_TRAINING)


def test_run_writes_reproducible_report_files(tiny_config, tmp_path):
    from mosaicrec.evaluation.report import write_report

    report = run_evaluation(tiny_config)
    names = [r.name for r in report.rows]
    assert {"random", "popular", "ALS (implicit)", "BPR (implicit)", SERVED, UNTRAINED} <= set(
        names)
    assert report.split["n_cold_items"] == 3 and report.split["test_users"] > 0
    assert report.row("popular").cold_items is None  # cannot score new items
    assert report.row(SERVED).cold_items is not None
    paths = write_report(report, tmp_path / "a")
    for path in paths.values():
        assert path.is_file() and path.stat().st_size > 0
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(paths["json"].read_text())
    assert data["settings"]["seed"] == 0 and data["split"]["config"]["test_k"] == 5
    assert f"| {SERVED} |" in paths["markdown"].read_text()
    again = write_report(run_evaluation(tiny_config), tmp_path / "b")
    for key in ("json", "markdown", "chart"):
        assert paths[key].read_bytes() == again[key].read_bytes(), key


def test_a_whole_run_tunes_on_validation_only(tiny_config, monkeypatch):
    from mosaicrec.evaluation import suite

    stages: list[str] = []
    for name in ("grid_search", "validation_ndcg"):
        real = getattr(suite, name)

        def spy(*args, _real=real, **kwargs):
            stage = next(a for a in (*args, *kwargs.values()) if hasattr(a, "relevant"))
            stages.append(stage.name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(suite, name, spy)
    run_evaluation(tiny_config)
    assert len(stages) > 5 and set(stages) == {"val"}


def test_cli_runs_and_rejects_bad_sources(tiny_config, tmp_path, capsys, monkeypatch):
    from mosaicrec.evaluation.cli import add_parser, config_from_args, main

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["evaluate", "--ratings", str(tiny_config.ratings), "--catalogue",
                              str(tiny_config.catalogue), "--out", str(tmp_path / "cli"),
                              "--quick", "--k", "10", "5", "--profile", "tiny"])
    config = config_from_args(args)
    assert config.ks == [5, 10] and config.quick and config.split.kind == "leave_last_k"
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--movielens", "x", "--catalogue", "y"])
    with pytest.raises(ConfigError, match="must include 10"):
        EvaluationConfig(ratings=tiny_config.ratings, catalogue=tiny_config.catalogue, ks=[5])
    with pytest.raises(ConfigError, match="exactly one source"):
        EvaluationConfig(ratings=tiny_config.ratings)
    import mosaicrec.evaluation.cli as cli

    # main() runs the parsed config, with a tiny grid instead of --quick's to stay fast
    monkeypatch.setattr(cli, "config_from_args", lambda _args: tiny_config.model_copy(
        update={"out": tmp_path / "cli"}))
    assert main(args) == 0
    assert (tmp_path / "cli" / "evaluation.md").is_file()
    assert SERVED in capsys.readouterr().out


def test_evaluate_reports_exactly_what_recommend_serves(tiny_config):
    """Parity: the NDCG@10 that evaluate reports for mosaicrec equals the one computed here
    from calling ``recommend`` for each test user, with the model evaluate trained."""
    from mosaicrec.engine import Recommender
    from mosaicrec.engine.models.artefact import load_model
    from mosaicrec.evaluation.interactions import load_interactions
    from mosaicrec.evaluation.served import event_store_from_split
    from mosaicrec.evaluation.split import split_interactions
    from mosaicrec.indexing.stores import StoreConfig, open_store

    report = run_evaluation(tiny_config)
    split = split_interactions(load_interactions(tiny_config.ratings), tiny_config.split)
    test = split.frame[(split.frame["split"] == "test") & split.frame["positive"]]
    relevant = test.groupby("user_id")["item_id"].apply(lambda s: set(map(str, s))).to_dict()
    store = open_store(StoreConfig(path=str(tiny_config.workdir / "index"),
                                   collection=tiny_config.collection))
    events = event_store_from_split(split.frame)
    try:
        model = load_model(tiny_config.workdir / "models", collection=tiny_config.collection,
                           schema=store.schema)
        rec = Recommender(store, events, model=model)
        ndcgs = []
        for user, positives in sorted(relevant.items()):
            ids = rec.recommend(str(user), n=20).ids[:10]
            dcg = sum(1 / np.log2(r + 2) for r, i in enumerate(ids) if i in positives)
            ideal = sum(1 / np.log2(r + 2) for r in range(min(10, len(positives))))
            ndcgs.append(dcg / ideal)
    finally:
        store.close()
        events.close()
    assert report.row(SERVED).test["ndcg@10"] == pytest.approx(float(np.mean(ndcgs)), abs=1e-12)
    assert report.split["test_users"] == len(ndcgs)
