"""Temporal splits, cold items, and the exact reproduction of the reference MovieLens split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mosaicrec.errors import CatalogueError, ConfigError
from mosaicrec.evaluation.interactions import InteractionConfig, load_interactions, mark_positives
from mosaicrec.evaluation.split import SplitConfig, split_interactions


def _log(rows: list[tuple[int, int, float, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return mark_positives(frame, InteractionConfig())


def test_leave_last_k_with_validation_and_short_users():
    # user 1: 16 interactions, items 100..115 at times 0..15, except items 114 and 113 that
    # share time 13 (ties go by item id: 113 before 114). User 2 has 14: all train.
    rows = [(1, 100 + i, 5.0, i) for i in range(13)] + [(1, 114, 4.0, 13), (1, 113, 3.0, 13)]
    rows += [(1, 115, 2.0, 14)]
    rows += [(1, 116, 1.0, 15)]
    rows += [(2, 200 + i, 4.0, i) for i in range(14)]
    split = split_interactions(_log(rows), SplitConfig(cold_item_fraction=0.0))
    f = split.frame
    u1 = f[f.user_id == 1]
    assert u1["item_id"].tolist()[-5:] == [112, 113, 114, 115, 116]
    assert u1["split"].tolist() == ["train"] * 7 + ["val"] * 5 + ["test"] * 5
    assert (f[f.user_id == 2]["split"] == "train").all()
    assert split.counts() == {"train": 21, "val": 5, "test": 5, "removed_cold": 0}
    # sorted rows 13..16 are items 113 (3 stars), 114 (4), 115 (2), 116 (1)
    assert f["positive"].tolist()[13:17] == [False, True, False, False]


def test_cold_items_are_a_seeded_sample_whose_train_and_val_rows_go():
    rng = np.random.default_rng(0)
    rows = [(u, int(i), 5.0, t) for u in range(30) for t, i in
            enumerate(rng.choice(60, 20, replace=False))]
    log = _log(rows)
    split = split_interactions(log, SplitConfig(cold_item_fraction=0.1, cold_item_seed=42))
    items = np.sort(log["item_id"].unique())
    expected = np.sort(np.random.default_rng(42).choice(items, round(0.1 * len(items)),
                                                        replace=False))
    assert split.cold_items.tolist() == expected.tolist()
    cold_rows = split.frame[split.frame["item_id"].isin(expected)]
    assert set(cold_rows["split"]) <= {"test", "removed_cold"}
    assert (cold_rows["split"] == "test").any()
    assert len(split.frame) == len(log)  # nothing dropped, only relabelled


def test_global_temporal_split():
    rows = [(u, 10 * u + i, 4.0, 100 * i + u) for u in range(4) for i in range(10)]
    split = split_interactions(_log(rows), SplitConfig(
        kind="global_temporal", test_fraction=0.25, val_fraction=0.25, cold_item_fraction=0.0))
    f = split.frame
    cut_test = f[f.split == "test"]["timestamp"].min()
    assert f[f.split != "test"]["timestamp"].max() <= cut_test
    assert f[f.split == "val"]["timestamp"].max() <= cut_test
    assert split.counts()["test"] == 10 and split.counts()["val"] == 10
    with pytest.raises(ConfigError):
        SplitConfig(kind="global_temporal", test_fraction=0.6, val_fraction=0.5)


def test_loader_accepts_typed_csv_and_names_missing_columns(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,item,type,time\nu1,a,purchase,2024-01-01\nu1,b,dislike,2024-01-02\n")
    log = load_interactions(path)
    assert log["positive"].tolist() == [True, False]
    assert log["rating"].tolist() == [5.0, 1.0]
    assert log["timestamp"].iloc[1] - log["timestamp"].iloc[0] == 86400
    bad = tmp_path / "bad.tsv"
    bad.write_text("user\tthing\trating\tts\n1\t2\t3\t4\n")
    with pytest.raises(CatalogueError, match="item_id"):
        load_interactions(bad)
    with pytest.raises(CatalogueError, match="does not exist"):
        load_interactions(tmp_path / "missing.csv")


@pytest.mark.realdata
def test_reproduces_the_reference_movielens_split_exactly(movielens_dir):
    split = split_interactions(load_interactions(movielens_dir / "u.data"))
    reference = pd.read_csv(movielens_dir / "reference_split.csv.gz")
    ours = split.frame[["user_id", "item_id", "rating", "timestamp", "split"]].copy()
    ours["rating"] = ours["rating"].astype(reference["rating"].dtype)
    key = ["user_id", "item_id", "timestamp"]
    ours = ours.sort_values(key).reset_index(drop=True)
    reference = reference.sort_values(key).reset_index(drop=True)
    assert len(ours) == len(reference) == 100_000
    pd.testing.assert_frame_equal(ours, reference, check_dtype=False)
    assert split.counts() == {"train": 87014, "val": 4522, "test": 4715, "removed_cold": 3749}
    assert len(split.cold_items) == 84
