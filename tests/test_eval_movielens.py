"""A reduced evaluation on MovieLens 100K (slow: two to three minutes on two cores, most of it
embedding 1682 texts with MiniLM)."""

from __future__ import annotations

import pytest

from mosaicrec.evaluation.report import write_report
from mosaicrec.evaluation.runner import EvaluationConfig, run_evaluation


@pytest.mark.slow
@pytest.mark.realdata
def test_reduced_movielens_evaluation(movielens_dir, tmp_path):
    from mosaicrec.encoders.loading import packaged_minilm_dir

    # New items can only be ranked above chance from text that means something: real MiniLM
    # weights when installed (the mosaicrec[minilm] extra), else an untrained tiny model.
    real_text = packaged_minilm_dir() is not None
    config = EvaluationConfig(
        ratings=movielens_dir / "u.data", movielens=movielens_dir, cache_dir=tmp_path / "cache",
        out=tmp_path / "out", quick=True, image_encoder="tiny-clip",
        text_encoder="minilm" if real_text else "tiny-text",
    )
    report = run_evaluation(config)
    paths = write_report(report, config.out)
    assert all(p.is_file() for p in paths.values())
    assert report.split["test_users"] == 812 and report.split["cold_item_users"] == 85
    assert report.chance["ndcg@10"] == pytest.approx(0.0544, abs=0.003)
    popular = report.row("popular").test["ndcg@10"]
    assert popular == pytest.approx(0.0613, abs=0.003)
    assert report.row("ALS (implicit)").test["ndcg@10"] == pytest.approx(0.1107, abs=0.005)
    hybrid = report.row("mosaicrec hybrid")
    assert hybrid.test["ndcg@10"] > report.row("ALS (implicit)").test["ndcg@10"]
    assert hybrid.cold_items is not None
    if real_text:  # the reference reached 2.6x chance with a ridge map from MiniLM text
        assert hybrid.cold_items["ndcg@10"] > 1.8 * report.chance["ndcg@10"]
