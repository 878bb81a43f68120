"""A whole run on a tiny synthetic log: report files, bit-for-bit reruns, validation-only
tuning, and the ``evaluate`` command line."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from mosaicrec.errors import ConfigError
from mosaicrec.evaluation.grids import TuningGrids, default_fusion_variants
from mosaicrec.evaluation.runner import EvaluationConfig, run_evaluation
from mosaicrec.evaluation.vectors import ItemVectors

N_USERS, N_ITEMS = 40, 30


def _write_inputs(tmp_path):
    """Two taste groups over 30 items; item vectors that know the groups (plus noise)."""
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
    group = (np.arange(N_ITEMS) >= 15).astype(float)
    text = np.stack([1 - group, group, rng.normal(0, 0.3, N_ITEMS)], axis=1)
    image = rng.normal(size=(N_ITEMS, 4))
    fused = np.concatenate([text / np.linalg.norm(text, axis=1, keepdims=True),
                            image / np.linalg.norm(image, axis=1, keepdims=True)], axis=1)
    vectors = ItemVectors([f"i{i}" for i in range(N_ITEMS)],
                          {"text": text.astype(np.float32), "image": image.astype(np.float32),
                           "fused": fused.astype(np.float32)})
    npz = tmp_path / "vectors.npz"
    vectors.save(npz)
    return log, npz


def _grids() -> TuningGrids:
    variants = default_fusion_variants()
    return TuningGrids(
        item_knn_k=[5], ease_lam=[10.0, 100.0], als_factors=[4], als_regularization=[0.1, 1.0],
        als_alpha=[1.0], bpr_factors=[4], bpr_learning_rate=[0.05], bpr_regularization=[0.01],
        bpr_iterations=10, hybrid_half_life=[None, 5.0], hybrid_lam=[10.0],
        content_weights=[0.0, 0.2], popularity_weights=[0.0], cold_spaces=["text"],
        cold_ridge=[1.0], cold_folds=1,
        fusion_variants={k: variants[k] for k in list(variants)[:2]},
    )


@pytest.fixture
def tiny_config(tmp_path):
    log, npz = _write_inputs(tmp_path)
    from mosaicrec.evaluation.split import SplitConfig

    return EvaluationConfig(ratings=log, vectors_npz=npz, out=tmp_path / "out",
                            split=SplitConfig(cold_item_fraction=0.1), grids=_grids())


def test_run_writes_reproducible_report_files(tiny_config, tmp_path):
    from mosaicrec.evaluation.report import write_report

    report = run_evaluation(tiny_config)
    names = [r.name for r in report.rows]
    assert {"random", "popular", "ALS (implicit)", "BPR (implicit)", "mosaicrec hybrid"} <= set(
        names)
    assert report.split["n_cold_items"] == 3 and report.split["test_users"] > 0
    assert report.row("popular").cold_items is None  # cannot score new items
    assert report.row("mosaicrec hybrid").cold_items is not None
    paths = write_report(report, tmp_path / "a")
    for path in paths.values():
        assert path.is_file() and path.stat().st_size > 0
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(paths["json"].read_text())
    assert data["settings"]["seed"] == 0 and data["split"]["config"]["test_k"] == 5
    assert "| mosaicrec hybrid |" in paths["markdown"].read_text()
    again = write_report(run_evaluation(tiny_config), tmp_path / "b")
    for key in ("json", "markdown", "chart"):
        assert paths[key].read_bytes() == again[key].read_bytes(), key


def test_a_whole_run_tunes_on_validation_only(tiny_config, monkeypatch):
    from mosaicrec.evaluation import suite

    stages: list[str] = []
    for name in ("grid_search", "tune_hybrid", "tune_cold_map", "validation_ndcg"):
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
    args = parser.parse_args(["evaluate", "--ratings", str(tiny_config.ratings), "--vectors",
                              str(tiny_config.vectors_npz), "--out", str(tmp_path / "cli"),
                              "--quick", "--k", "10", "5"])
    config = config_from_args(args)
    assert config.ks == [5, 10] and config.quick and config.split.kind == "leave_last_k"
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--movielens", "x", "--vectors", "y"])
    with pytest.raises(ConfigError, match="must include 10"):
        EvaluationConfig(ratings=tiny_config.ratings, vectors_npz=tiny_config.vectors_npz,
                         ks=[5])
    with pytest.raises(ConfigError, match="exactly one source"):
        EvaluationConfig(ratings=tiny_config.ratings)
    import mosaicrec.evaluation.cli as cli

    # main() runs the parsed config, with a tiny grid instead of --quick's to stay fast
    monkeypatch.setattr(cli, "config_from_args",
                        lambda _args: config.model_copy(update={"grids": _grids()}))
    assert main(args) == 0
    assert (tmp_path / "cli" / "evaluation.md").is_file()
    assert "mosaicrec hybrid" in capsys.readouterr().out
