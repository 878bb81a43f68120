"""The blender: one score per candidate from several signals, with weights chosen on validation.

Each signal is standardised over the request's candidates (per-user z-score), so signals on
different scales (EASE sums, logits, cosines, log counts) can be added. A signal that cannot
score a candidate (the sequence model on an item it never saw) gives NaN there, which counts as
the candidates' mean: unknown is neutral, neither a reward nor a penalty.

Signals: ``ease`` (on positives), ``ease_all`` (EASE on every event), ``als`` and ``sequence``
(behaviour models on items they know), ``new_item``
(the ALS factor predicted from content, on items no model knows), ``popularity`` and
``trending`` (log counts overall and recently), ``content`` (the fusion user model's cosine).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import Field, field_validator

from mosaicrec.config import StrictModel
from mosaicrec.engine.models.ranking import ndcg

__all__ = ["SIGNALS", "BlendConfig", "BlendTrial", "TuningSet", "blend", "standardise",
           "tune_blend", "zscore"]

SIGNALS = ("ease", "ease_all", "als", "sequence", "new_item", "popularity", "trending",
           "content")


def _check_names(names: Sequence[str]) -> None:
    unknown = sorted(set(names) - set(SIGNALS))
    if unknown:
        raise ValueError(f"unknown signals {unknown}; signals are {', '.join(SIGNALS)}")


class BlendConfig(StrictModel):
    """Weights on per-request z-scores. The default is the reference ensemble
    (``z(EASE + recency) - 0.5 z(popularity) + 2 z(sequence)``) plus new items from content."""

    weights: dict[str, float] = Field(default_factory=lambda: {
        "ease": 1.0, "sequence": 2.0, "popularity": -0.5, "new_item": 0.5})

    @field_validator("weights")
    @classmethod
    def _known(cls, weights: dict[str, float]) -> dict[str, float]:
        _check_names(list(weights))
        return weights


def zscore(values: np.ndarray) -> np.ndarray:
    """Standardise over the finite entries; NaN (cannot score) becomes 0, the mean."""
    v = np.asarray(values, np.float64)
    ok = np.isfinite(v)
    out = np.zeros(len(v))
    if ok.sum() >= 2:
        std = v[ok].std()
        if std > 0:
            out[ok] = (v[ok] - v[ok].mean()) / std
    return out


def standardise(signals: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """One signal's z-scores. ``new_item`` (a predicted ALS score on items ALS never saw) is
    put on the scale of the ``als`` scores of the known candidates when there are some, so a
    single new item among known ones is ranked by how its predicted score compares with
    theirs; among new items only, it is standardised over itself."""
    values = np.asarray(signals[name], np.float64)
    ref = signals.get("als") if name == "new_item" else None
    if ref is not None:
        known = np.asarray(ref, np.float64)
        known = known[np.isfinite(known)]
        std = known.std() if len(known) >= 2 else 0.0
        if std > 0:
            out = (values - known.mean()) / std
            return np.where(np.isfinite(out), out, 0.0)
    return zscore(values)


def blend(signals: Mapping[str, np.ndarray], weights: Mapping[str, float], n: int,
          ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Blended scores of ``n`` candidates and each weighted part (for explanations)."""
    total = np.zeros(n)
    parts: dict[str, np.ndarray] = {}
    for name, w in weights.items():
        if w == 0 or name not in signals:
            continue
        parts[name] = w * standardise(signals, name)
        total += parts[name]
    return total, parts


@dataclass
class BlendTrial:
    weights: dict[str, float]
    ndcg: float


@dataclass
class TuningSet:
    """Per validation user: the signals of their candidates and which candidates are hits."""

    signals: list[dict[str, np.ndarray]] = field(default_factory=list)
    relevant: list[np.ndarray] = field(default_factory=list)  # bool per candidate
    n_relevant: list[int] = field(default_factory=list)  # held-out positives (also missed ones)
    # per candidate, the one source that proposed it ("" when several did)
    sole_source: list[np.ndarray] = field(default_factory=list)

    def without_source(self, source: str) -> TuningSet:
        """The same users with the candidates only ``source`` proposed left out: what the
        blend would rank if that source were switched off."""
        out = TuningSet(n_relevant=list(self.n_relevant))
        for sig, rel, sole in zip(self.signals, self.relevant, self.sole_source, strict=True):
            keep = sole != source
            out.signals.append({k: v[keep] for k, v in sig.items()})
            out.relevant.append(rel[keep])
            out.sole_source.append(sole[keep])
        return out


def tune_blend(data: TuningSet, grid: Mapping[str, Sequence[float]], k: int = 10,
               ) -> tuple[dict[str, float], float, list[BlendTrial]]:
    """Exhaustive search over ``grid`` (signal -> candidate weights) by mean NDCG@k.

    Every model was scored once when ``data`` was built; each trial only re-blends. The first
    setting in grid order wins ties, so the choice is deterministic."""
    _check_names(list(grid))
    names = list(grid)
    users = len(data.signals)
    pool = max((len(r) for r in data.relevant), default=0)
    # z-scores do not depend on the weights: one padded (users, pool, signals) array
    z = np.zeros((users, pool, len(names)))
    relevant = np.zeros((users, pool), bool)
    padding = np.ones((users, pool), bool)
    for u, (sig, rel) in enumerate(zip(data.signals, data.relevant, strict=True)):
        m = len(rel)
        relevant[u, :m], padding[u, :m] = rel, False
        for j, name in enumerate(names):
            if name in sig:
                z[u, :m, j] = standardise(sig, name)
    n_rel = np.asarray(data.n_relevant)
    kk = min(k, pool)
    trials: list[BlendTrial] = []
    best_w, best = dict.fromkeys(names, 0.0), -np.inf
    for combo in itertools.product(*(grid[nm] for nm in names)):
        scores = np.where(padding, -np.inf, z @ np.asarray(combo, np.float64))
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk] if kk < pool else \
            np.broadcast_to(np.arange(pool), (users, pool))
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)
        hits = np.take_along_axis(relevant, top, axis=1)
        score = float(ndcg(hits, n_rel, k).mean()) if users else 0.0
        weights = dict(zip(names, map(float, combo), strict=True))
        trials.append(BlendTrial(weights, score))
        if score > best:
            best_w, best = weights, score
    return best_w, best, trials
