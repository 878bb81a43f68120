"""Hyper-parameter search on the validation stage only: small, seeded, deterministic grids.

Every function here takes a :class:`~mosaicrec.evaluation.evaluator.Stage` and refuses any
stage but validation, so the test split can never leak into a choice. Models are fitted on the
validation stage's history (train), scored on validation positives; the caller refits the
chosen setting on train+validation and evaluates it once on test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mosaicrec.errors import ConfigError
from mosaicrec.evaluation.baselines import ALS, ALSConfig, Recommender
from mosaicrec.evaluation.evaluator import Stage, rank_users
from mosaicrec.evaluation.history import History
from mosaicrec.evaluation.metrics import accuracy_per_user, top_k
from mosaicrec.evaluation.mosaic import Hybrid, HybridConfig, ridge_map

__all__ = ["TuningResult", "expand_grid", "grid_search", "tune_hybrid", "tune_cold_map",
           "validation_ndcg"]


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
    stage: Stage, *, k: int = 10,
) -> TuningResult:
    """Fit ``build(params)`` on the validation history for every ``params``; keep the best."""
    _check_validation(stage)
    if not grid:
        raise ConfigError("empty tuning grid")
    result = TuningResult(dict(grid[0]), -np.inf, metric=f"ndcg@{k}")
    for params in grid:
        method = build(dict(params)).fit(stage.history)
        result.record(dict(params), validation_ndcg(method.score(stage.users), stage, k))
    return result


def tune_hybrid(
    spaces: dict[str, np.ndarray], stage: Stage, base: HybridConfig,
    cf_grid: Sequence[dict[str, Any]], content_weights: Sequence[float],
    popularity_weights: Sequence[float], mapped_weights: Sequence[float] = (0.0,),
    *, k: int = 10,
) -> TuningResult:
    """The hybrid's CF settings and blend weights, in two stages to keep the grid small:
    (1) CF settings x popularity weight without content; (2) with that CF setting, content
    weight x mapped-content weight x popularity weight. Each component is scored once and every
    weight combination reuses it. Weight 0 must be in ``content_weights`` and
    ``mapped_weights`` (stage 1 uses it)."""
    _check_validation(stage)
    if 0.0 not in content_weights or 0.0 not in mapped_weights:
        raise ConfigError("content_weights and mapped_weights must include 0")
    result = TuningResult({}, -np.inf, metric=f"ndcg@{k}")
    stage_one: dict[tuple[Any, ...], dict[str, np.ndarray]] = {}
    for cf_params in cf_grid:
        cfg = base.model_copy(update={"cf": base.cf.model_copy(update=cf_params),
                                      "cold": None, "content": None})
        parts = Hybrid(spaces, cfg).fit(stage.history).components(stage.users)
        stage_one[tuple(cf_params.items())] = parts
        for wp in popularity_weights:
            score = validation_ndcg(Hybrid.blend(parts, 0.0, wp), stage, k)
            result.record({**cf_params, "content_weight": 0.0, "popularity_weight": wp,
                           "mapped_weight": 0.0}, score)
    best_cf = {key: result.best[key] for key in cf_grid[0]}
    parts = dict(stage_one[tuple(best_cf.items())])
    probe_cfg = base.model_copy(update={"content_weight": 1.0, "mapped_weight": 1.0})
    extra = Hybrid(spaces, probe_cfg).fit(stage.history).components(stage.users)
    parts.update({key: extra[key] for key in ("content", "mapped") if key in extra})
    weights = itertools.product(content_weights if "content" in parts else [0.0],
                                mapped_weights if "mapped" in parts else [0.0],
                                popularity_weights)
    for wc, wm, wp in weights:
        if wc == 0 and wm == 0:
            continue  # measured in stage one
        score = validation_ndcg(Hybrid.blend(parts, wc, wp, wm), stage, k)
        result.record({**best_cf, "content_weight": wc, "popularity_weight": wp,
                       "mapped_weight": wm}, score)
    return result


def _without_items(history: History, items: np.ndarray) -> History:
    """The history with every interaction on ``items`` removed (pseudo-new items)."""
    keep = ~np.isin(history.item, items)
    return replace(history, user=history.user[keep], item=history.item[keep],
                   rating=history.rating[keep], timestamp=history.timestamp[keep],
                   positive=history.positive[keep])


def tune_cold_map(
    spaces: dict[str, np.ndarray], stage: Stage, als: ALSConfig,
    grid: Sequence[dict[str, Any]], *, n_folds: int = 3, fold_fraction: float = 0.05,
    seed: int = 0, k: int = 10,
) -> TuningResult:
    """Ridge map settings (``space``, ``ridge``) on pseudo-new items.

    Each fold hides a seeded sample of warm items from the train history, fits ALS and the
    ridge map without them, and ranks only those items for the validation users who liked one
    of them, exactly as the cold-item slice does on test. NDCG@k is pooled over folds.
    """
    _check_validation(stage)
    history = stage.history
    warm = np.flatnonzero(history.item_counts > 0)
    rng = np.random.default_rng(seed)
    n_fold = max(1, int(round(fold_fraction * len(warm))))
    folds = rng.permutation(warm)[: n_fold * n_folds].reshape(n_folds, -1)
    rank_of = np.empty(history.n_items, dtype=np.int64)
    rank_of[stage.tie_order] = np.arange(history.n_items)
    per_params: dict[int, list[np.ndarray]] = {i: [] for i in range(len(grid))}
    for fold in folds:
        users = np.flatnonzero(stage.relevant[:, fold].any(axis=1))
        if len(users) == 0:
            continue
        reduced = _without_items(history, fold)
        model = ALS(als).fit(reduced)
        fitted = reduced.item_counts > 0
        relevant = stage.relevant[np.ix_(users, fold)]
        order = np.argsort(rank_of[fold], kind="stable")
        for i, params in enumerate(grid):
            factors = ridge_map(spaces[params["space"]].astype(np.float64), model.item_factors_,
                                fitted, float(params["ridge"]))
            scores = model.user_factors_[users] @ factors[fold].T
            top = top_k(scores, k, tie_order=order)
            per_params[i].append(accuracy_per_user(top, relevant, (k,))[f"ndcg@{k}"])
    result = TuningResult(dict(grid[0]), -np.inf, metric=f"pseudo-cold ndcg@{k}")
    for i, params in enumerate(grid):
        if per_params[i]:
            result.record(dict(params), float(np.concatenate(per_params[i]).mean()))
    return result
