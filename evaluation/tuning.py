"""Hyper-parameter search on the validation stage only: small, seeded, deterministic grids.

Every function here takes a :class:`~mosaicrec.evaluation.evaluator.Stage` and refuses any
stage but validation, so the test split can never leak into a choice. Models are fitted on the
validation stage's history (train), scored on validation positives; the caller refits the
chosen setting on train+validation and evaluates it once on test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mosaicrec.errors import ConfigError
from mosaicrec.evaluation.baselines import Recommender
from mosaicrec.evaluation.evaluator import Stage, rank_users
from mosaicrec.evaluation.metrics import accuracy_per_user

__all__ = ["TuningResult", "expand_grid", "grid_search", "validation_ndcg"]


@dataclass
class TuningResult:
    """The chosen parameters, their validation score, and every trial in grid order."""

    best: dict[str, Any]
    best_score: float
    trials: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    metric: str = "ndcg@10"

    def record(self, params: dict[str, Any], score: float) -> None:
        self.trials.append((params, score))
        # Strictly better only: the first setting in grid order wins ties (deterministic).
        if score > self.best_score:
            self.best, self.best_score = params, score


def _check_validation(stage: Stage) -> None:
    if stage.name != "val":
        raise ConfigError(f"tuning got the {stage.name!r} stage; tuning uses validation only "
                          "(never the test split)")


def expand_grid(**axes: Sequence[Any]) -> list[dict[str, Any]]:
    """Cartesian product of the axes, in a fixed order (the first axis varies slowest)."""
    names = list(axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*axes.values())]


def validation_ndcg(scores: np.ndarray, stage: Stage, k: int = 10) -> float:
    """Mean NDCG@k of ``scores`` (rows = ``stage.users``) on the validation positives."""
    _check_validation(stage)
    top = rank_users(scores, stage, stage.users, k)
    return float(accuracy_per_user(top, stage.relevant[stage.users], (k,))[f"ndcg@{k}"].mean())


def grid_search(
    build: Callable[[dict[str, Any]], Recommender], grid: Sequence[dict[str, Any]],
    stage: Stage, *, k: int = 10, on_trial: Callable[[], Any] | None = None,
) -> TuningResult:
    """Fit ``build(params)`` on the validation history for every ``params``; keep the best
    (``on_trial`` is called after each, for progress)."""
    _check_validation(stage)
    if not grid:
        raise ConfigError("empty tuning grid")
    result = TuningResult(dict(grid[0]), -np.inf, metric=f"ndcg@{k}")
    for params in grid:
        method = build(dict(params)).fit(stage.history)
        result.record(dict(params), validation_ndcg(method.score(stage.users), stage, k))
        if on_trial is not None:
            on_trial()
    return result
