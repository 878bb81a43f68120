"""The recommendation stages: history -> candidates -> score -> rank -> rerank.

Each stage is a small object with a typed config and ``run(ctx, rec)``: it reads and writes the
request's :class:`RecContext` and reaches shared resources (store, events, user model, caches)
through the :class:`~mosaicrec.engine.pipeline.Recommender`. Any stage can be replaced by name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.engine.user_model import Interaction, UserProfile
from mosaicrec.indexing.stores.base import Condition, Filter, Hit

if TYPE_CHECKING:
    from mosaicrec.engine.pipeline import Recommender

__all__ = [
    "Boost", "Candidate", "CandidateConfig", "CandidateStage", "HistoryConfig", "HistoryStage",
    "Popularity", "RankConfig", "RankStage", "RecContext", "RerankConfig", "RerankStage",
    "ScoreConfig", "ScoreStage", "Stage", "mmr_select",
]


@dataclass
class Candidate:
    id: str
    payload: dict[str, Any]
    interest: int  # index of the interest it is closest to (-1: none)
    similarity: float  # user-model score: cosine to that interest minus the negative push
    score: float = 0.0
    signals: dict[str, float] = field(default_factory=dict)
    reason: str = "history"  # what put it here: history, examples, prompt, popular, catalogue
    sims: dict[int, float] = field(default_factory=dict)  # user-model score per interest query


@dataclass
class RecContext:
    """Everything one request knows; stages fill it in order."""

    user_id: str | None
    n: int
    filter: Filter | None = None
    exclude_seen: bool = True
    diversity: float | None = None
    exclude: set[str] = field(default_factory=set)
    profile: UserProfile | None = None
    labels: dict[str, str] = field(default_factory=dict)  # display names of history items
    reason: str = "history"  # or "examples", "prompt", "popular", "catalogue"
    prompt: str | None = None
    examples: set[str] = field(default_factory=set)  # items the caller chose to steer by
    events: list[Interaction] | None = None  # a history given with the request (no store)
    candidates: list[Candidate] = field(default_factory=list)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # candidate vectors, if fetched
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage


class Stage(Protocol):
    name: str

    def run(self, ctx: RecContext, rec: Recommender) -> None: ...


class _Config(StrictModel):
    model_config = ConfigDict(extra="forbid")


class HistoryConfig(_Config):
    limit: int | None = Field(500, ge=1, description="newest events used for the profile")
    use_cache: bool = True
    label_field: str = "title"


class HistoryStage:
    """Events -> profile (cached per user; the cache drops a user on append and forget)."""

    name = "history"

    def __init__(self, config: HistoryConfig | None = None) -> None:
        self.config = config or HistoryConfig()

    def run(self, ctx: RecContext, rec: Recommender) -> None:
        if ctx.profile is not None or (ctx.user_id is None and ctx.events is None):
            return
        space = rec.config.space
        use_cache = self.config.use_cache and ctx.events is None and ctx.user_id is not None
        cached = rec.cache.get(ctx.user_id) if use_cache else None  # type: ignore[arg-type]
        if cached is None:
            if ctx.events is not None:
                events = sorted(ctx.events, key=lambda e: e.timestamp)  # stable
                events = events[-self.config.limit:] if self.config.limit else events
            elif rec.events is not None:
                events = rec.events.history(ctx.user_id, limit=self.config.limit)
            else:
                events = []
            ids = list(dict.fromkeys(e.item_id for e in events))
            known = rec.cache.vectors(ctx.user_id) if use_cache else {}  # type: ignore[arg-type]
            vectors = {i: known[i] for i in ids if i in known}
            missing = [i for i in ids if i not in known]
            records = rec.history_store.retrieve(missing, vectors=[space]) if missing else []
            vectors.update({r.id: r.vectors[space] for r in records if space in r.vectors})
            labels = dict(rec.cache.labels(ctx.user_id)) if use_cache else {}  # type: ignore
            labels.update({r.id: str(r.payload.get(self.config.label_field, r.id))
                           for r in records})
            cached = rec.user_model.profile(events, vectors)
            cached.labels = labels
            if ctx.events is None and rec.events is not None and self.config.limit and \
                    len(events) >= self.config.limit:  # older events still count as seen
                cached.seen |= rec.events.items_of(ctx.user_id)
            if use_cache and events:
                rec.cache.put(ctx.user_id, cached, vectors)  # type: ignore[arg-type]
        ctx.profile = cached
        ctx.labels.update(cached.labels)
        if ctx.exclude_seen and rec.history_store is rec.store:
            ctx.exclude.update(cached.seen)


class CandidateConfig(_Config):
    pool_factor: int = Field(5, ge=1, description="candidates per interest = factor * n ...")
    min_pool: int = Field(50, ge=1, description="... but at least this many")
    extra_spaces: list[str] = Field(
        default_factory=list, description="also query these per-modality spaces per interest")
    ef: int | None = Field(
        64, ge=1, description="HNSW ef per candidate query (None: the store's default)")


class CandidateStage:
    """One store query per interest, with the negative centroid folded into the query vector:
    ``cos(c, i - λn) * |i - λn| = cos(c, i) - λ cos(c, n)`` exactly, so the hit scores are the
    user model's scores and no candidate vector has to be fetched."""

    name = "candidates"

    def __init__(self, config: CandidateConfig | None = None) -> None:
        self.config = config or CandidateConfig()

    def run(self, ctx: RecContext, rec: Recommender) -> None:
        profile = ctx.profile
        if profile is None or profile.is_empty:
            return
        limit = max(self.config.min_pool, self.config.pool_factor * ctx.n)
        best: dict[str, Candidate] = {}
        lam = profile.negative_weight if profile.negative is not None else 0.0
        for k, interest in enumerate(profile.interests):
            q = interest.vector - lam * profile.negative if lam else interest.vector
            norm = float(np.linalg.norm(q))
            if norm < 1e-6:
                continue
            hits = rec.store.query(q / norm, using=rec.config.space, limit=limit,
                                   filter=ctx.filter, exclude_ids=sorted(ctx.exclude),
                                   ef=max(self.config.ef, limit) if self.config.ef else None)
            for h in hits:
                self._keep(best, h, k, h.score * norm)
        extra = self._extra_space_hits(ctx, rec, limit)
        missing = [h for h in extra if h.id not in best]
        if missing:
            records = rec.store.retrieve([h.id for h in missing], vectors=[rec.config.space])
            found = [r for r in records if rec.config.space in r.vectors]
            if found:
                mat = np.stack([r.vectors[rec.config.space] for r in found])
                sims = profile.interest_scores(mat)
                push = lam * (mat @ profile.negative) if lam else np.zeros(len(found))
                for r, s, p in zip(found, sims, push, strict=True):
                    k = int(np.argmax(s))
                    self._keep(best, Hit(r.id, 0.0, r.payload), k, float(s[k] - p))
        ctx.candidates = list(best.values())

    @staticmethod
    def _keep(best: dict[str, Candidate], hit: Hit, k: int, sim: float) -> None:
        c = best.get(hit.id)
        if c is None:
            c = best[hit.id] = Candidate(hit.id, hit.payload, k, sim)
        elif sim > c.similarity:
            c.interest, c.similarity = k, sim
        c.sims[k] = max(sim, c.sims.get(k, -np.inf))

    def _extra_space_hits(self, ctx: RecContext, rec: Recommender, limit: int) -> list[Hit]:
        if not self.config.extra_spaces or rec.fuser is None or rec.config.space != "fused":
            return []
        assert ctx.profile is not None
        hits: list[Hit] = []
        for interest in ctx.profile.interests:
            blocks = rec.fuser.split(interest.vector)
            for space in self.config.extra_spaces:
                block = blocks.get(space)  # type: ignore[call-overload]
                if block is None or not np.any(block):
                    continue
                hits += rec.store.query(block / np.linalg.norm(block), using=space,
                                        limit=limit, filter=ctx.filter,
                                        exclude_ids=sorted(ctx.exclude))
        return hits


class Boost(_Config):
    """Business rule: add ``weight`` to the score of items whose payload matches."""

    field: str
    match: str | int | bool | None = None
    any: list[str | int] | None = None
    weight: float

    def condition(self) -> Condition:
        return Condition(field=self.field, match=self.match, any=self.any)


class ScoreConfig(_Config):
    similarity_weight: float = 1.0
    popularity_weight: float = Field(
        0.05, description="times z(log(1 + distinct users)); items nobody used get z of 0 uses")
    collaborative_weight: float = Field(0.0, description="times z(collaborative score)")
    boosts: list[Boost] = Field(default_factory=list)


class ScoreStage:
    """Blend similarity, popularity, a collaborative signal and payload boosts."""

    name = "score"

    def __init__(self, config: ScoreConfig | None = None) -> None:
        self.config = config or ScoreConfig()

    def run(self, ctx: RecContext, rec: Recommender) -> None:
        from mosaicrec.engine.payload import condition_matches

        cfg, cands = self.config, ctx.candidates
        if not cands:
            return
        sim = np.array([c.similarity for c in cands], dtype=np.float64)
        total = cfg.similarity_weight * sim
        signals: dict[str, np.ndarray] = {"similarity": sim}
        if cfg.popularity_weight:
            pop = rec.popularity.z([c.id for c in cands])
            total += cfg.popularity_weight * pop
            signals["popularity"] = pop
        if cfg.collaborative_weight and rec.collaborative is not None and ctx.profile:
            raw = np.asarray(rec.collaborative.score(ctx.profile.item_weights,
                                                     [c.id for c in cands]), np.float64)
            z = (raw - raw.mean()) / raw.std() if raw.std() > 0 else np.zeros_like(raw)
            total += cfg.collaborative_weight * z
            signals["collaborative"] = z
        if cfg.boosts:
            boost = np.array([sum(b.weight for b in cfg.boosts
                                  if condition_matches(b.condition(), c.payload)) for c in cands])
            total += boost
            signals["boost"] = boost
        for j, c in enumerate(cands):
            c.score = float(total[j])
            c.signals = {k: float(v[j]) for k, v in signals.items()}


class RankConfig(_Config):
    merge: Literal["interleave", "score"] = Field(
        "interleave", description="interleave interests by weight, or one global sort")


class RankStage:
    """Order candidates. ``interleave``: each interest ranks the hits of its own query (its
    similarity in place of the best one) and the lists are merged by smooth weighted round
    robin, skipping items already taken, so a strong taste cannot fill the whole list."""

    name = "rank"

    def __init__(self, config: RankConfig | None = None) -> None:
        self.config = config or RankConfig()

    def run(self, ctx: RecContext, rec: Recommender) -> None:
        cands = sorted(ctx.candidates, key=lambda c: (-c.score, c.id))
        if self.config.merge == "score" or ctx.profile is None or len(ctx.profile.interests) < 2:
            ctx.candidates = cands
            return
        sw = rec.config.score.similarity_weight
        weights = {k: i.weight for k, i in enumerate(ctx.profile.interests)}
        queues = {k: sorted((c for c in cands if k in c.sims),
                            key=lambda c, k=k: (-(c.score + sw * (c.sims[k] - c.similarity)),
                                                c.id))
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
        ctx.candidates = merged


class RerankConfig(_Config):
    diversity: float | None = Field(None, ge=0, le=1, description="default MMR diversity")
    mmr_pool_factor: int = Field(3, ge=1)
    max_per_value: dict[str, int] = Field(
        default_factory=dict, description="business rule: at most N items per payload value")


class RerankStage:
    """MMR over the candidates' vectors (relevance = rank-stage order and score), then caps
    per payload value, then the first n."""

    name = "rerank"

    def __init__(self, config: RerankConfig | None = None) -> None:
        self.config = config or RerankConfig()

    def run(self, ctx: RecContext, rec: Recommender) -> None:
        diversity = ctx.diversity if ctx.diversity is not None else self.config.diversity
        cands = ctx.candidates
        if diversity and len(cands) > 1:
            pool = cands[: max(ctx.n * self.config.mmr_pool_factor, ctx.n + 10)]
            rec.fetch_vectors(ctx, [c.id for c in pool])
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
            cands = _cap(cands, self.config.max_per_value)
        ctx.candidates = cands[: ctx.n]


def _cap(cands: list[Candidate], caps: dict[str, int]) -> list[Candidate]:
    counts: dict[tuple[str, Any], int] = {}
    out = []
    for c in cands:
        keys = [(f, str(c.payload.get(f))) for f in caps if f in c.payload]
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


class Popularity:
    """z-scored log(1 + distinct positive users) per item over the whole catalogue (items
    nobody used count as 0, so new items get a finite, below-average term, not -inf).
    Refreshed from the event store at most every ``refresh_s`` seconds after a change."""

    def __init__(self, events: Any, catalogue_size: int, refresh_s: float = 30.0) -> None:
        self.events, self.catalogue_size, self.refresh_s = events, catalogue_size, refresh_s
        self._version: int | None = None
        self._at = 0.0
        self._erased = False
        self.counts: dict[str, int] = {}
        self._mean, self._std = 0.0, 1.0

    def on_change(self, user_id: str, kind: str) -> None:
        """Event-store listener: erasures (forget, deleted items) apply at the next request;
        appends at most every ``refresh_s``."""
        if kind != "append":
            self._erased = True

    def refresh(self, force: bool = False) -> None:
        if self.events is None:
            return
        version = getattr(self.events, "version", None)
        stale = version != self._version or version is None
        due = time.monotonic() - self._at >= self.refresh_s or self._erased
        if not force and self._version is not None and not (stale and due):
            return
        self._erased = False
        self.counts = self.events.item_counts(positive_only=True)
        self._version, self._at = version, time.monotonic()
        n = max(self.catalogue_size, len(self.counts), 1)
        logs = np.log1p(np.fromiter(self.counts.values(), np.float64, len(self.counts)))
        self._mean = logs.sum() / n
        var = (np.square(logs).sum() / n) - self._mean ** 2
        self._std = float(np.sqrt(var)) if var > 1e-12 else 1.0

    def z(self, ids: list[str]) -> np.ndarray:
        self.refresh()
        logs = np.log1p(np.array([self.counts.get(i, 0) for i in ids], np.float64))
        return (logs - self._mean) / self._std

    def top(self, k: int) -> list[str]:
        self.refresh()
        return [i for i, _ in sorted(self.counts.items(), key=lambda t: (-t[1], t[0]))[:k]]
