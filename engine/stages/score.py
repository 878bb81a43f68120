"""Score stage: one number per candidate.

:class:`BlendStage` (with a trained model) computes every signal for every candidate — the
behaviour models on the items they know, the content map on the items they do not, popularity
overall and recent, and the fusion profile's cosine when it is weighted — and blends their
per-request z-scores with the weights chosen on validation. :class:`ScoreStage` (no trained
model) blends the content similarity with popularity. Both add business-rule boosts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np
from pydantic import Field

from mosaicrec.config import StrictModel
from mosaicrec.engine.context import Candidate, RecContext, SignalTable
from mosaicrec.engine.models.blend import blend
from mosaicrec.engine.models.trained import TrainedModel
from mosaicrec.engine.payload import condition_matches
from mosaicrec.engine.popularity import Popularity
from mosaicrec.engine.retrieval import Retriever, fill_payloads
from mosaicrec.indexing.stores.base import Condition

__all__ = ["Boost", "BlendStage", "BlendStageConfig", "ScoreConfig", "ScoreStage", "raw_signals"]


class Boost(StrictModel):
    """Business rule: add ``weight`` to the score of items whose payload matches."""

    field: str
    match: str | int | bool | None = None
    any: list[str | int] | None = None
    weight: float

    def condition(self) -> Condition:
        return Condition(field=self.field, match=self.match, any=self.any)


class ScoreConfig(StrictModel):
    """Scoring without a trained model (and the boosts, with or without one)."""

    similarity_weight: float = 1.0
    popularity_weight: float = Field(
        0.05, description="times z(log(1 + distinct users)); items nobody used get z of 0 uses")
    boosts: list[Boost] = Field(default_factory=list)


class BlendStageConfig(StrictModel):
    """Serving-time additions to the trained blend weights."""

    steer_content_weight: float = Field(
        1.0, description="content weight added when a prompt or examples steer the list, and "
        "used alone for users none of whose items the models know")


def _boosts(boosts: list[Boost], cands: Sequence[Candidate]) -> np.ndarray | None:
    if not boosts:
        return None
    return np.array([sum(b.weight for b in boosts
                         if condition_matches(b.condition(), c.payload or {})) for c in cands])


def set_scores(ctx: RecContext, total: np.ndarray, parts: Mapping[str, np.ndarray]) -> None:
    """Each candidate's score; its parts stay in one table (``ctx.scored``) until the list
    is final."""
    cands = ctx.candidates
    for c, score in zip(cands, np.asarray(total, np.float64).tolist(), strict=True):
        c.score = score
    names = list(parts)
    values = np.column_stack([parts[k] for k in names]) if names else np.zeros((len(cands), 0))
    ctx.scored = SignalTable(names, values, {c.id: j for j, c in enumerate(cands)})


class ScoreStage:
    """Similarity blended with popularity, plus boosts."""

    name = "score"

    def __init__(self, config: ScoreConfig | None, *, popularity: Popularity,
                 retriever: Retriever) -> None:
        self.config = config or ScoreConfig()
        self.popularity, self.retriever = popularity, retriever

    def run(self, ctx: RecContext) -> None:
        cfg, cands = self.config, ctx.candidates
        if not cands:
            return
        sim = np.array([c.similarity for c in cands], dtype=np.float64)
        total = cfg.similarity_weight * sim
        signals: dict[str, np.ndarray] = {"similarity": sim}
        if cfg.popularity_weight:
            pop = self.popularity.z([c.id for c in cands])
            total += cfg.popularity_weight * pop
            signals["popularity"] = pop
        if cfg.boosts:
            fill_payloads(cands, self.retriever)
        boost = _boosts(cfg.boosts, cands)
        if boost is not None:
            total += boost
            signals["boost"] = boost
        set_scores(ctx, total, signals)


def raw_signals(ctx: RecContext, model: TrainedModel, retriever: Retriever,
                popularity: Popularity, *, content_space: str | None,
                only: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """Every raw signal of ``ctx.candidates`` (shared by serving and tuning), or those in
    ``only`` and what they are standardised against."""
    ids = [c.id for c in ctx.candidates]
    state = ctx.state
    out: dict[str, np.ndarray] = {}
    wanted = None if only is None else {*only, *(("als",) if "new_item" in only else ())}
    if state is not None:
        content = mapped = None
        rows = model.items.rows(ids)
        new = [ids[j] for j in np.flatnonzero(rows < 0)] \
            if model.content_map is not None and (wanted is None or "new_item" in wanted) \
            else []
        # the new-items search's hits came with the signal itself (their scores)
        scored = {c.id: c.new_item for c in ctx.candidates if c.new_item is not None}
        new = [i for i in new if i not in scored]
        if new and retriever.has_space("als"):
            # the published ALS vectors of new items are the content map's prediction: a few
            # dozen floats each instead of a content vector of a thousand; the content
            # source's hits brought theirs
            mapped = {c.id: c.vectors["als"] for c in ctx.candidates if "als" in c.vectors}
            mapped.update(retriever.vectors([i for i in new if i not in mapped], "als"))
        elif new:
            content = retriever.vectors(new, model.content_map.space)  # type: ignore[union-attr]
        out.update(model.signals(state, ids, content, mapped=mapped, new_scores=scored,
                                 only=wanted, rows=rows))
    if wanted is None or "popularity" in wanted:
        out["popularity"] = np.log1p(popularity.count(ids))
    if wanted is None or "trending" in wanted:
        out["trending"] = np.log1p(popularity.count(ids, recent=True))
    profile = ctx.profile if content_space is not None else None
    if profile is not None and not profile.is_empty:
        vectors = retriever.vectors(ids, content_space)  # type: ignore[arg-type]
        sims = np.full(len(ids), np.nan)
        have = [j for j, i in enumerate(ids) if i in vectors]
        if have:
            sims[have] = profile.score(np.stack([vectors[ids[j]] for j in have]))
        out["content"] = sims
    return out


class BlendStage:
    """The trained blend: z-scored signals times the weights chosen on validation."""

    name = "score"

    def __init__(self, config: BlendStageConfig | None, *, model: TrainedModel,
                 retriever: Retriever, popularity: Popularity, content_space: str,
                 boosts: list[Boost] | None = None) -> None:
        self.config = config or BlendStageConfig()
        self.model, self.retriever, self.popularity = model, retriever, popularity
        self.content_space, self.boosts = content_space, list(boosts or [])

    def weights(self, ctx: RecContext) -> dict[str, float]:
        weights = dict(self.model.blend.weights)
        extra = self.config.steer_content_weight
        if ctx.state is None or not ctx.state.has_behaviour:
            weights = {"content": extra or 1.0, "new_item": weights.get("new_item", 0.0)}
        elif ctx.steered:
            weights["content"] = weights.get("content", 0.0) + extra
        return weights

    def run(self, ctx: RecContext) -> None:
        cands = ctx.candidates
        if not cands:
            return
        weights = self.weights(ctx)
        signals = raw_signals(ctx, self.model, self.retriever, self.popularity,
                              content_space=self.content_space if weights.get("content")
                              else None, only=[k for k, w in weights.items() if w])
        total, parts = blend(signals, weights, len(cands))
        if self.boosts:
            fill_payloads(cands, self.retriever)
            boost = _boosts(self.boosts, cands)
            assert boost is not None
            total, parts["boost"] = total + boost, boost
        set_scores(ctx, total, parts)
