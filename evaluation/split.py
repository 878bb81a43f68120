"""Temporal splits with a validation part, and held-out "cold" items.

Leave-last-k (the default): each user's interactions sorted by (timestamp, item_id); the last
``test_k`` go to test, the ``val_k`` before them to validation, the rest to train. Users with
fewer than ``min_interactions`` stay entirely in train. Global: one time cut for everybody
(the last ``test_fraction`` of the log by time to test, the ``val_fraction`` before it to
validation). Cold items: a seeded sample of items whose train and validation rows are removed
(label ``removed_cold``) while their test rows stay, so one split serves every slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from mosaicrec.errors import ConfigError
from mosaicrec.evaluation._config import StrictConfig

__all__ = ["SplitConfig", "Split", "split_interactions", "SPLIT_LABELS"]

SPLIT_LABELS = ("train", "val", "test", "removed_cold")


class SplitConfig(StrictConfig):
    """How interactions are divided into train, validation and test."""

    kind: Literal["leave_last_k", "global_temporal"] = "leave_last_k"
    test_k: int = Field(default=5, ge=1)
    val_k: int = Field(default=5, ge=0)
    min_interactions: int = Field(default=15, ge=1, description="fewer: the user is all train")
    test_fraction: float = Field(default=0.1, gt=0, lt=1, description="global_temporal only")
    val_fraction: float = Field(default=0.1, ge=0, lt=1, description="global_temporal only")
    cold_item_fraction: float = Field(default=0.05, ge=0, lt=1)
    cold_item_seed: int = 42

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        if self.kind == "global_temporal" and self.test_fraction + self.val_fraction >= 1:
            raise ConfigError("test_fraction + val_fraction must be < 1")
        return self


@dataclass
class Split:
    """The interactions with a ``split`` column, and the held-out cold items."""

    frame: pd.DataFrame
    cold_items: np.ndarray
    config: SplitConfig

    def part(self, *labels: str) -> pd.DataFrame:
        return self.frame[self.frame["split"].isin(labels)]

    @property
    def train(self) -> pd.DataFrame:
        return self.part("train")

    @property
    def val(self) -> pd.DataFrame:
        return self.part("val")

    @property
    def test(self) -> pd.DataFrame:
        return self.part("test")

    def counts(self) -> dict[str, int]:
        counts = self.frame["split"].value_counts()
        return {label: int(counts.get(label, 0)) for label in SPLIT_LABELS}


def _sorted_log(interactions: pd.DataFrame) -> pd.DataFrame:
    # Ties in time are broken by item id so that the split does not depend on file order.
    return interactions.sort_values(
        ["user_id", "timestamp", "item_id"], kind="mergesort"
    ).reset_index(drop=True)


def _leave_last_k(log: pd.DataFrame, config: SplitConfig) -> np.ndarray:
    size = log.groupby("user_id", sort=False)["item_id"].transform("size").to_numpy()
    # Position from the end within each user's chronological sequence: 0 = most recent.
    from_end = log.groupby("user_id", sort=False).cumcount(ascending=False).to_numpy()
    label = np.full(len(log), "train", dtype=object)
    eligible = size >= config.min_interactions
    label[eligible & (from_end < config.test_k)] = "test"
    in_val = (from_end >= config.test_k) & (from_end < config.test_k + config.val_k)
    label[eligible & in_val] = "val"
    return label


def _global_temporal(log: pd.DataFrame, config: SplitConfig) -> np.ndarray:
    order = np.lexsort((log["item_id"].to_numpy(), log["timestamp"].to_numpy()))
    n = len(log)
    n_test = int(round(config.test_fraction * n))
    n_val = int(round(config.val_fraction * n))
    label = np.full(n, "train", dtype=object)
    label[order[n - n_test:]] = "test"
    label[order[n - n_test - n_val: n - n_test]] = "val"
    return label


def split_interactions(interactions: pd.DataFrame, config: SplitConfig | None = None) -> Split:
    """Split a standard interaction frame (see ``interactions.py``) and hold out cold items."""
    config = config or SplitConfig()
    if interactions.empty:
        raise ConfigError("cannot split an empty interaction log")
    log = _sorted_log(interactions)
    split_fn = _leave_last_k if config.kind == "leave_last_k" else _global_temporal
    log["split"] = split_fn(log, config)
    items = np.sort(log["item_id"].unique())
    n_cold = int(round(config.cold_item_fraction * len(items)))
    rng = np.random.default_rng(config.cold_item_seed)
    cold = np.sort(rng.choice(items, n_cold, replace=False)) if n_cold else items[:0]
    removed = log["item_id"].isin(cold).to_numpy() & log["split"].isin(["train", "val"]).to_numpy()
    log.loc[removed, "split"] = "removed_cold"
    return Split(frame=log, cold_items=cold, config=config)
