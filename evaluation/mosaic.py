"""mosaicrec's own methods in the evaluation contract (``fit(history)``, ``score(users)``).

* :class:`FusionContent`: the engine's :class:`~mosaicrec.engine.user_model.FusionUserModel`
  (aggregation by interaction or rating, recency half-life, negatives that push away, several
  interests) scoring every item in one vector space, optionally re-ranked by MMR.
* :class:`ColdItemMap`: content mapped into what predicts behaviour. A ridge regression from an
  item's content vector to its ALS item factors is fitted on warm items; a new item's factors
  are predicted from its content alone, so users' ALS factors can score it.
* :class:`Hybrid`: per-user z-scores of a collaborative score (EASE on a recency-weighted
  history), the fusion content score, the cold map's content score and a popularity term,
  blended with weights chosen on validation; on new items only the cold map can score.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field

from mosaicrec.engine.stages import mmr_select
from mosaicrec.errors import ConfigError
from mosaicrec.evaluation._config import StrictConfig
from mosaicrec.evaluation.baselines import ALS, EASE, ALSConfig, EASEConfig, _require_fit
from mosaicrec.evaluation.history import History

__all__ = [
    "FusionContentConfig",
    "FusionContent",
    "ColdItemConfig",
    "ColdItemMap",
    "HybridConfig",
    "Hybrid",
    "zscore_rows",
    "mmr_rerank",
    "ridge_map",
]


class _Config(StrictConfig):
    model_config = ConfigDict(extra="forbid", frozen=True)


def zscore_rows(scores: np.ndarray) -> np.ndarray:
    """Per-row standardisation, so that scores on different scales can be blended."""
    scores = np.asarray(scores, dtype=np.float64)
    std = scores.std(axis=1, keepdims=True)
    return (scores - scores.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)


def mmr_rerank(
    scores: np.ndarray, vectors: np.ndarray, *, diversity: float, depth: int,
    candidates: int, exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Maximal marginal relevance over one user's scores (Qdrant's convention: ``diversity``
    0 = pure relevance, 1 = pure novelty w.r.t. the items already picked).

    Returns scores whose order puts the ``depth`` MMR picks first (in pick order) and every
    other item after them in its original order.
    """
    s = np.where(exclude, -np.inf, scores) if exclude is not None else np.asarray(scores)
    n_cand = min(candidates, int(np.isfinite(s).sum()))
    cand = np.argsort(-s, kind="stable")[:n_cand]
    if n_cand == 0:
        return np.asarray(scores, dtype=np.float64)
    rel = s[cand]
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.zeros_like(rel)
    # the engine's own MMR, so the evaluated reranking is the one served
    picked = mmr_select(rel, vectors[cand], min(depth, n_cand), diversity)
    out = np.asarray(scores, dtype=np.float64).copy()
    top = np.nanmax(np.where(np.isfinite(out), out, np.nan)) if np.isfinite(out).any() else 0.0
    for rank, j in enumerate(picked):
        out[cand[j]] = top + 1.0 + (len(picked) - rank)
    return out


class FusionContentConfig(_Config):
    """Settings of the fusion user model as evaluated (see ``engine/user_model.py``)."""

    space: str = Field("fused", description="which item vector space the profile lives in")
    aggregation: Literal["interaction", "rating"] = Field(
        "rating", description="every positive counts the same, or (rating - 3) per event")
    half_life_events: float | None = Field(None, gt=0)
    negatives: bool = Field(True, description="ratings <= 2 push candidates away")
    negative_weight: float = Field(0.5, ge=0)
    max_interests: int = Field(1, ge=1)
    mmr_diversity: float | None = Field(None, ge=0, le=1)
    mmr_candidates: int = Field(100, ge=2)
    mmr_depth: int = Field(20, ge=1)
    seed: int = 0


class FusionContent:
    """The fusion user model, one profile per user, scoring the whole catalogue."""

    def __init__(self, vectors: np.ndarray, config: FusionContentConfig | None = None,
                 name: str = "fusion") -> None:
        self.config = config or FusionContentConfig()
        self.name = name
        self.vectors = np.asarray(vectors, dtype=np.float32)

    def _model(self) -> Any:
        from mosaicrec.engine.user_model import FusionUserModel, UserModelConfig

        cfg = self.config
        return FusionUserModel(UserModelConfig(
            half_life_events=cfg.half_life_events,
            negative_weight=cfg.negative_weight if cfg.negatives else 0.0,
            max_interests=cfg.max_interests, seed=cfg.seed,
        ))

    def _events(self, history: History) -> list[list[object]]:
        from mosaicrec.engine.user_model import Interaction

        cfg = self.config
        per_user: list[list[object]] = [[] for _ in range(history.n_users)]
        for u, i, r, t, pos in zip(history.user, history.item, history.rating,
                                   history.timestamp, history.positive, strict=True):
            negative = r <= 2
            if negative and not cfg.negatives:
                continue
            if cfg.aggregation == "rating":
                event = Interaction(str(u), str(i), "rating", float(t), value=float(r))
            elif pos or negative:
                event = Interaction(str(u), str(i), "like" if pos else "dislike", float(t))
            else:
                continue
            per_user[u].append(event)
        return per_user

    def fit(self, history: History) -> FusionContent:
        if len(self.vectors) != history.n_items:
            raise ConfigError(f"{self.name}: {len(self.vectors)} item vectors for "
                              f"{history.n_items} catalogue items")
        self.events_ = self._events(history)
        self.seen_ = history.seen
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        events = _require_fit(self, "events_")
        model = self._model()
        lookup = {str(i): v for i, v in enumerate(self.vectors)}
        cfg = self.config
        out = np.zeros((len(users), len(self.vectors)), dtype=np.float64)
        for row, u in enumerate(np.asarray(users)):
            profile = model.profile(events[u], lookup)
            if profile.is_empty and profile.negative is None:
                continue
            s = profile.score(self.vectors).astype(np.float64)
            if cfg.mmr_diversity is not None:
                s = mmr_rerank(s, self.vectors, diversity=cfg.mmr_diversity,
                               depth=cfg.mmr_depth, candidates=cfg.mmr_candidates,
                               exclude=self.seen_[u])
            out[row] = s
        return out


def ridge_map(x: np.ndarray, y: np.ndarray, fit_rows: np.ndarray, ridge: float) -> np.ndarray:
    """Fit ``y ~ x`` (ridge, with intercept) on ``fit_rows``; predict ``y`` for every row."""
    xf, yf = x[fit_rows], y[fit_rows]
    x_mean, y_mean = xf.mean(axis=0), yf.mean(axis=0)
    xc = xf - x_mean
    weights = np.linalg.solve(xc.T @ xc + ridge * np.eye(x.shape[1]), xc.T @ (yf - y_mean))
    return (x - x_mean) @ weights + y_mean


class ColdItemConfig(_Config):
    """Ridge map from a content space to ALS item factors, fitted on warm items."""

    space: str = "text"
    ridge: float = Field(10.0, gt=0)
    als: ALSConfig = Field(default_factory=ALSConfig)


class ColdItemMap:
    """ALS for users; item factors predicted from content for every item (warm or new)."""

    name = "cold_map"

    def __init__(self, vectors: np.ndarray, config: ColdItemConfig | None = None) -> None:
        self.config = config or ColdItemConfig()
        self.vectors = np.asarray(vectors, dtype=np.float64)

    def fit(self, history: History) -> ColdItemMap:
        als = ALS(self.config.als).fit(history)
        warm = history.item_counts > 0
        self.item_factors_ = ridge_map(self.vectors, als.item_factors_, warm, self.config.ridge)
        self.user_factors_ = als.user_factors_
        self.warm_ = warm
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        user_factors = _require_fit(self, "user_factors_")
        return user_factors[np.asarray(users)] @ self.item_factors_.T


class HybridConfig(_Config):
    """Blend weights (on per-user z-scores) and the components' settings."""

    cf: EASEConfig = Field(default_factory=lambda: EASEConfig(half_life=5.0))
    content: FusionContentConfig | None = Field(default_factory=FusionContentConfig)
    content_weight: float = 0.1
    popularity_weight: float = -0.5
    cold: ColdItemConfig | None = Field(default_factory=ColdItemConfig)
    mapped_weight: float = Field(
        0.0, description="weight of the cold map's content->behaviour score on every item")


class Hybrid:
    """``z(cf) + content_weight * z(fusion profile) + mapped_weight * z(content mapped to ALS
    factors) + popularity_weight * z(log count)``.

    New items (no positives in the history) are scored by the cold-item map alone on the
    cold-item slice (:meth:`score_cold`)."""

    name = "hybrid"

    def __init__(self, spaces: dict[str, np.ndarray], config: HybridConfig | None = None) -> None:
        self.config = config or HybridConfig()
        self.spaces = spaces

    def _space(self, name: str) -> np.ndarray:
        if name not in self.spaces:
            raise ConfigError(f"hybrid: no vector space {name!r}; have {sorted(self.spaces)}")
        return self.spaces[name]

    def fit(self, history: History) -> Hybrid:
        cfg = self.config
        self.cf_ = EASE(cfg.cf).fit(history)
        self.content_ = (FusionContent(self._space(cfg.content.space), cfg.content).fit(history)
                         if cfg.content is not None and cfg.content_weight != 0 else None)
        self.cold_ = (ColdItemMap(self._space(cfg.cold.space), cfg.cold).fit(history)
                      if cfg.cold is not None else None)
        logpop = np.log1p(history.interaction_counts)
        self.popularity_ = (logpop - logpop.mean()) / max(float(logpop.std()), 1e-12)
        return self

    def components(self, users: np.ndarray) -> dict[str, np.ndarray]:
        """Per-user z-scored parts, so that a tuner can try many weights from one pass."""
        _require_fit(self, "cf_")
        parts = {"cf": zscore_rows(self.cf_.score(users))}
        if self.content_ is not None:
            parts["content"] = zscore_rows(self.content_.score(users))
        if self.cold_ is not None and self.config.mapped_weight != 0:
            parts["mapped"] = zscore_rows(self.cold_.score(users))
        parts["popularity"] = np.broadcast_to(self.popularity_, parts["cf"].shape)
        return parts

    @staticmethod
    def blend(parts: dict[str, np.ndarray], content_weight: float, popularity_weight: float,
              mapped_weight: float = 0.0) -> np.ndarray:
        out = parts["cf"] + popularity_weight * parts["popularity"]
        if "content" in parts and content_weight:
            out = out + content_weight * parts["content"]
        if "mapped" in parts and mapped_weight:
            out = out + mapped_weight * parts["mapped"]
        return out

    def score(self, users: np.ndarray) -> np.ndarray:
        cfg = self.config
        return self.blend(self.components(users), cfg.content_weight, cfg.popularity_weight,
                          cfg.mapped_weight)

    def score_cold(self, users: np.ndarray) -> np.ndarray:
        """Scores for the cold-item slice: the content -> behaviour map alone."""
        if self.cold_ is None:
            raise ConfigError("hybrid has no cold-item map configured")
        return self.cold_.score(users)
