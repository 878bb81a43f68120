"""Rank and rerank: order the scored candidates, then diversify and apply business rules.

Rank sorts by score; without a trained model and with several interests it interleaves the
interests by weight (smooth weighted round robin), so one strong taste cannot fill the list.
Rerank applies maximal marginal relevance over the items' vectors when diversity is asked for,
then caps per payload value, then keeps the first n.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from mosaicrec.config import StrictModel
from mosaicrec.engine.context import Candidate, RecContext

__all__ = ["RankConfig", "RankStage", "RerankConfig", "RerankStage", "mmr_select"]


class RankConfig(StrictModel):
    merge: Literal["auto", "interleave", "score"] = Field(
        "auto", description="interleave interests by weight, or one global sort; auto: "
        "interleave for the content user model, sort for a trained model's blend")


class RankStage:
    name = "rank"

    def __init__(self, config: RankConfig | None = None, *, similarity_weight: float = 1.0,
                 trained: bool = False) -> None:
        self.config = config or RankConfig()
        self.similarity_weight, self.trained = similarity_weight, trained

    def run(self, ctx: RecContext) -> None:
        cands = sorted(ctx.candidates, key=lambda c: (-c.score, c.id))
        merge = self.config.merge
        if merge == "auto":
            merge = "score" if self.trained else "interleave"
        if merge == "score" or ctx.profile is None or len(ctx.profile.interests) < 2:
            ctx.candidates = cands
            return
        ctx.candidates = _interleave(cands, [i.weight for i in ctx.profile.interests],
                                     self.similarity_weight)


def _interleave(cands: list[Candidate], interest_weights: list[float], sw: float,
                ) -> list[Candidate]:
    """Each interest ranks the hits of its own query (its similarity in place of the best
    one); the lists merge by smooth weighted round robin, skipping items already taken."""
    weights = dict(enumerate(interest_weights))
    queues = {k: sorted((c for c in cands if k in c.sims),
                        key=lambda c, k=k: (-(c.score + sw * (c.sims[k] - c.similarity)), c.id))
              for k in weights}
    pos = dict.fromkeys(weights, 0)
    taken = dict.fromkeys(weights, 0)
    done: set[str] = set()
    merged: list[Candidate] = []
    while len(merged) < len(cands):
        for k in queues:  # skip what another interest already took
            while pos[k] < len(queues[k]) and queues[k][pos[k]].id in done:
                pos[k] += 1
        live = [k for k in queues if pos[k] < len(queues[k])]
        if not live:
            break
        k = min(live, key=lambda k: (taken[k] + 1) / weights[k])
        c = queues[k][pos[k]]
        merged.append(c)
        done.add(c.id)
        taken[k] += 1
    return merged


class RerankConfig(StrictModel):
    diversity: float | None = Field(None, ge=0, le=1, description="default MMR diversity")
    mmr_pool_factor: int = Field(3, ge=1)
    max_per_value: dict[str, int] = Field(
        default_factory=dict, description="business rule: at most N items per payload value")


class RerankStage:
    """MMR over the candidates' vectors (relevance = rank-stage order and score), then caps
    per payload value, then the first n the collection still holds. ``vectors(ctx, ids)``
    fills ``ctx.vectors``; ``payloads(cands)`` fills missing payloads and marks items no
    longer stored (a model or the event counts may know items deleted since)."""

    name = "rerank"

    def __init__(self, config: RerankConfig | None, *,
                 vectors: Callable[[RecContext, Sequence[str]], None],
                 payloads: Callable[[Sequence[Candidate]], None]) -> None:
        self.config = config or RerankConfig()
        self.fetch_vectors, self.fill_payloads = vectors, payloads

    def run(self, ctx: RecContext) -> None:
        diversity = ctx.diversity if ctx.diversity is not None else self.config.diversity
        cands = ctx.candidates
        if diversity and len(cands) > 1:
            pool = cands[: max(ctx.n * self.config.mmr_pool_factor, ctx.n + 10)]
            self.fetch_vectors(ctx, [c.id for c in pool])
            pool = [c for c in pool if c.id in ctx.vectors]
            if pool:
                rel = np.array([c.score for c in pool])
                # rank-stage order matters (interleaving): blend score with a rank prior
                rel = (rel - rel.min()) / (np.ptp(rel) or 1.0)
                rel = 0.5 * rel + 0.5 * (1 - np.arange(len(pool)) / len(pool))
                vecs = np.stack([ctx.vectors[c.id] for c in pool])
                order = mmr_select(rel, vecs, ctx.n, diversity)
                cands = [pool[j] for j in order]
        if self.config.max_per_value:
            self.fill_payloads(cands)
            cands = _cap([c for c in cands if c.stored], self.config.max_per_value)
        ctx.candidates = self._stored(cands, ctx.n)

    def _stored(self, cands: list[Candidate], n: int) -> list[Candidate]:
        """The first ``n`` candidates the collection holds (payloads read ``n`` at a time)."""
        out: list[Candidate] = []
        start = 0
        while len(out) < n and start < len(cands):
            window = cands[start: start + n - len(out)]
            self.fill_payloads(window)
            out += [c for c in window if c.stored]
            start += len(window)
        return out


def _cap(cands: list[Candidate], caps: dict[str, int]) -> list[Candidate]:
    counts: dict[tuple[str, Any], int] = {}
    out = []
    for c in cands:
        payload = c.payload or {}
        keys = [(f, str(payload.get(f))) for f in caps if f in payload]
        if any(counts.get(k, 0) >= caps[k[0]] for k in keys):
            continue
        for k in keys:
            counts[k] = counts.get(k, 0) + 1
        out.append(c)
    return out


def mmr_select(relevance: np.ndarray, vectors: np.ndarray, k: int, diversity: float) -> list[int]:
    """Greedy maximal marginal relevance: ``(1-d) * rel - d * max cos to the chosen``.
    ``relevance`` should be on a [0, 1] scale like the cosines."""
    vecs = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sims = vecs @ vecs.T
    chosen: list[int] = []
    left = np.ones(len(relevance), dtype=bool)
    redundancy = np.full(len(relevance), -np.inf)
    for _ in range(min(k, len(relevance))):
        red = np.where(np.isfinite(redundancy), redundancy, 0.0)
        value = np.where(left, (1 - diversity) * relevance - diversity * red, -np.inf)
        j = int(np.argmax(value))
        chosen.append(j)
        left[j] = False
        redundancy = np.maximum(redundancy, sims[j])
    return chosen
