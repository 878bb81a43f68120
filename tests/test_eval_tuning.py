"""Tuning sees validation only: the tuners refuse the test stage and fit on train rows only.
(That a whole run hands no tuner the test stage is checked in test_eval_report.py.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mosaicrec.errors import ConfigError
from mosaicrec.evaluation import baselines as bl
from mosaicrec.evaluation.evaluator import make_stage
from mosaicrec.evaluation.history import Catalogue, History
from mosaicrec.evaluation.interactions import InteractionConfig, mark_positives
from mosaicrec.evaluation.split import SplitConfig, split_interactions
from mosaicrec.evaluation.tuning import expand_grid, grid_search


def synthetic_split(n_users: int = 40, n_items: int = 30, seed: int = 0):
    """Two taste groups, 20 interactions each, times increasing per user."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        pool = np.arange(15) if u % 2 == 0 else np.arange(15, n_items)
        items = rng.choice(pool, 12, replace=False).tolist()
        items += rng.choice(np.setdiff1d(np.arange(n_items), items), 8, replace=False).tolist()
        rng.shuffle(items)
        rows += [(u, int(i), float(rng.choice([2, 4, 5])), 1000 * u + t)
                 for t, i in enumerate(items)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    split = split_interactions(mark_positives(frame, InteractionConfig()),
                               SplitConfig(cold_item_fraction=0.1))
    return split, Catalogue.from_frame(split.frame)


class Spy:
    """A recommender that records the histories it is fitted on."""

    name = "spy"

    def __init__(self, seen: list[History]) -> None:
        self.seen = seen

    def fit(self, history: History) -> Spy:
        self.seen.append(history)
        self.n_items = history.n_items
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.zeros((len(users), self.n_items))


def test_tuners_refuse_the_test_stage():
    split, cat = synthetic_split()
    test = make_stage(split, cat, "test")
    with pytest.raises(ConfigError, match="validation only"):
        grid_search(lambda p: bl.MostPopular(), [{}], test)


def test_grid_search_fits_on_train_rows_only_and_picks_the_best():
    split, cat = synthetic_split()
    val = make_stage(split, cat, "val")
    seen: list[History] = []
    result = grid_search(lambda p: Spy(seen), expand_grid(a=[1, 2]), val)
    train = split.frame[split.frame["split"] == "train"]
    assert len(seen) == 2 and all(len(h.user) == len(train) for h in seen)
    held_out = split.frame[split.frame["split"].isin(["val", "test"])]
    pairs = set(zip(cat.user_index(held_out["user_id"]), cat.item_index(held_out["item_id"]),
                    strict=True))
    assert not pairs & set(zip(seen[0].user.tolist(), seen[0].item.tolist(), strict=True))
    assert result.best == {"a": 1}  # a tie keeps the first setting in grid order
    knn = grid_search(lambda p: bl.ItemKNN(bl.ItemKNNConfig(**p)), expand_grid(k=[1, 10]), val)
    assert [t[0] for t in knn.trials] == [{"k": 1}, {"k": 10}]
    assert knn.best_score == max(score for _, score in knn.trials)
