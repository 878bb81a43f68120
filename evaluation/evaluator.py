"""Scoring a fitted method on one stage (validation or test), on the whole catalogue or a slice.

A :class:`Stage` bundles what one evaluation needs: the history methods are fitted on (train
for validation, train+validation for test), the positives to find, the users evaluated (those
with at least one positive), the items to exclude (everything in the history, whatever its
rating) and the seeded tie-break permutation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mosaicrec.errors import ConfigError
from mosaicrec.evaluation.baselines import Recommender
from mosaicrec.evaluation.history import Catalogue, History, build_history, relevance_matrix
from mosaicrec.evaluation.metrics import (
    accuracy_per_user,
    coverage,
    intra_list_diversity,
    novelty,
    popularity_bias,
    top_k,
)
from mosaicrec.evaluation.split import Split

__all__ = [
    "Stage",
    "make_stage",
    "MethodResult",
    "evaluate_method",
    "rank_users",
    "summarize",
    "cold_item_users",
    "evaluate_cold_items",
    "evaluate_cold_top",
    "evaluate_top",
]

_HISTORY_PARTS = {"val": ("train",), "test": ("train", "val")}


@dataclass
class Stage:
    """One evaluation target. ``name`` is ``"val"`` or ``"test"``."""

    name: str
    history: History
    relevant: np.ndarray  # bool (n_users, n_items)
    users: np.ndarray  # users with at least one positive in this stage
    tie_order: np.ndarray  # permutation of the item columns
    cold_items: np.ndarray  # item indices held out as new items


def make_stage(split: Split, catalogue: Catalogue, name: str, tie_seed: int = 0) -> Stage:
    """The validation (``"val"``) or test (``"test"``) stage of a split."""
    if name not in _HISTORY_PARTS:
        raise ConfigError(f"unknown stage {name!r}; use 'val' or 'test'")
    history = build_history(split, catalogue, _HISTORY_PARTS[name])
    relevant = relevance_matrix(split, catalogue, name)
    users = np.flatnonzero(relevant.any(axis=1))
    tie_order = np.random.default_rng(tie_seed).permutation(catalogue.n_items)
    return Stage(name, history, relevant, users, tie_order, catalogue.item_index(split.cold_items))


def rank_users(scores: np.ndarray, stage: Stage, users: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` item indices per user, seen items excluded, ties by the stage permutation."""
    return top_k(scores, k, exclude=stage.history.seen[users], tie_order=stage.tie_order)


@dataclass
class MethodResult:
    """Everything measured for one method on one stage."""

    name: str
    metrics: dict[str, float] = field(default_factory=dict)
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    beyond: dict[str, float] = field(default_factory=dict)
    slices: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0


def summarize(per_user: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict[str, float]:
    """Means over users (optionally a subset), plus ``n_users``."""
    out = {}
    for key, values in per_user.items():
        chosen = values if mask is None else values[mask]
        out[key] = float(chosen.mean()) if len(chosen) else float("nan")
    any_values = next(iter(per_user.values()))
    out["n_users"] = int(len(any_values) if mask is None else mask.sum())
    return out


def evaluate_method(
    method: Recommender,
    stage: Stage,
    *,
    ks: Sequence[int] = (10, 20),
    diversity_vectors: np.ndarray | None = None,
    user_slices: dict[str, np.ndarray] | None = None,
    fitted: bool = False,
) -> MethodResult:
    """Fit (unless ``fitted``) on the stage's history, rank its users, measure everything.

    ``user_slices`` maps a slice name to a bool mask over ``stage.users``; the slice result is
    the mean of the per-user metrics over that subset.
    """
    import time

    start = time.perf_counter()
    if not fitted:
        method.fit(stage.history)
    scores = method.score(stage.users)
    top = rank_users(scores, stage, stage.users, max(ks))
    result = evaluate_top(method.name, top, stage, ks=ks, diversity_vectors=diversity_vectors,
                          user_slices=user_slices)
    result.seconds = time.perf_counter() - start
    return result


def _padded(top: np.ndarray, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lists may hold -1 (short list, or an item outside the catalogue): point those at an
    extra never-relevant column."""
    n_items = relevant.shape[1]
    return np.where(top < 0, n_items, top), np.pad(relevant, ((0, 0), (0, 1)))


def evaluate_top(
    name: str,
    top: np.ndarray,
    stage: Stage,
    *,
    ks: Sequence[int] = (10, 20),
    diversity_vectors: np.ndarray | None = None,
    user_slices: dict[str, np.ndarray] | None = None,
) -> MethodResult:
    """Measure ranked lists ``top`` (item indices, best first, one row per ``stage.users``)."""
    top, relevant = _padded(np.asarray(top), stage.relevant[stage.users])
    per_user = accuracy_per_user(top, relevant, ks)
    result = MethodResult(name, summarize(per_user), per_user)
    top10 = top[:, : min(10, top.shape[1])]
    listed = top10[top10 < stage.history.n_items]  # beyond-accuracy over the listed items
    counts = stage.history.interaction_counts
    result.beyond = {
        "coverage@10": coverage(listed, stage.history.n_items),
        "novelty@10": novelty(listed, counts),
        "popularity_bias@10": popularity_bias(listed, counts),
    }
    if diversity_vectors is not None and (top10 < stage.history.n_items).all():
        result.beyond["diversity@10"] = intra_list_diversity(top10, diversity_vectors)
    for slice_name, mask in (user_slices or {}).items():
        result.slices[slice_name] = summarize(per_user, mask)
    return result


def cold_item_users(stage: Stage) -> np.ndarray:
    """Users with a positive among the held-out items in this stage."""
    return np.flatnonzero(stage.relevant[:, stage.cold_items].any(axis=1))


def evaluate_cold_top(top: np.ndarray, stage: Stage, users: np.ndarray,
                      ks: Sequence[int] = (10, 20)) -> dict[str, float]:
    """The cold-item slice from served lists (catalogue indices) restricted to the held-out
    items: only positives among those items count."""
    relevant = np.zeros_like(stage.relevant[users])
    relevant[:, stage.cold_items] = stage.relevant[np.ix_(users, stage.cold_items)]
    top, relevant = _padded(np.asarray(top), relevant)
    return summarize(accuracy_per_user(top, relevant, ks))


def evaluate_cold_items(
    scores: np.ndarray | None, stage: Stage, users: np.ndarray, ks: Sequence[int] = (10, 20)
) -> dict[str, float]:
    """The cold-item slice: candidates are the held-out items only. ``scores`` is
    ``(len(users), len(stage.cold_items))`` or ``None`` for a method that cannot score new
    items (every candidate ties, so the seeded permutation decides: chance level)."""
    cold = stage.cold_items
    if scores is None:
        scores = np.zeros((len(users), len(cold)))
    rank_of = np.empty(stage.history.n_items, dtype=np.int64)
    rank_of[stage.tie_order] = np.arange(stage.history.n_items)
    order = np.argsort(rank_of[cold], kind="stable")  # the permutation restricted to cold
    top = top_k(scores, max(ks), tie_order=order)
    per_user = accuracy_per_user(top, stage.relevant[np.ix_(users, cold)], ks)
    return summarize(per_user)
