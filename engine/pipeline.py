"""The recommender: named, replaceable stages wired over a store, an event store and a user model.

    rec = Recommender(store, events, fuser)
    recs = rec.recommend("user-1", n=10, filters=Filter(must=[...]), diversity=0.3)
    recs.ids, recs.scores, recs.items[0].explanation.sentence

Cold start (no usable history): popular items made diverse by MMR; with no events at all, an MMR
pick around the catalogue centroid (Qdrant's MMR). A prompt (text encoded into the space) or
example items steer it. Items nobody has used yet are found by content like any other item.

A filter on a payload field that no item has matches nothing (``must``) or everything
(``must_not``), as in Qdrant: the result is then empty or unfiltered, never an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.encoders.fusion import Fuser
from mosaicrec.encoders.profiles import fuser_from_schema
from mosaicrec.engine.collaborative import CollaborativeScorer
from mosaicrec.engine.events import EventStore
from mosaicrec.engine.explain import Explanation, explain_item, simple_explanation
from mosaicrec.engine.payload import matches
from mosaicrec.engine.stages import (
    Candidate,
    CandidateConfig,
    CandidateStage,
    HistoryConfig,
    HistoryStage,
    Popularity,
    RankConfig,
    RankStage,
    RecContext,
    RerankConfig,
    RerankStage,
    ScoreConfig,
    ScoreStage,
    Stage,
    mmr_select,
)
from mosaicrec.engine.user_model import (
    FusionUserModel,
    Interaction,
    Interest,
    ProfileCache,
    UserModel,
    UserModelConfig,
    UserProfile,
)
from mosaicrec.errors import ConfigError, RequestError, UnknownItemError
from mosaicrec.indexing.stores.base import Filter, VectorStore

__all__ = [
    "STAGE_NAMES", "ColdStartConfig", "Recommendation", "Recommendations", "Recommender",
    "RecommenderConfig", "cross_catalogue_recommend",
]

STAGE_NAMES = ("history", "candidates", "score", "rank", "rerank")


class ColdStartConfig(StrictModel):
    model_config = ConfigDict(extra="forbid")
    popular_pool: int = Field(200, ge=1, description="most popular items MMR picks from")
    diversity: float = Field(0.5, ge=0, le=1)
    centroid_sample: int = Field(1000, ge=1, description="records averaged for the centroid")


class RecommenderConfig(StrictModel):
    model_config = ConfigDict(extra="forbid")
    space: str = Field("fused", description="named vector the user model works in")
    max_n: int = Field(1000, ge=1)
    explain: bool = True
    popularity_refresh_s: float = Field(30.0, ge=0)
    user_model: UserModelConfig = Field(default_factory=UserModelConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    candidates: CandidateConfig = Field(default_factory=CandidateConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    rank: RankConfig = Field(default_factory=RankConfig)
    rerank: RerankConfig = Field(default_factory=RerankConfig)
    cold_start: ColdStartConfig = Field(default_factory=ColdStartConfig)


@dataclass
class Recommendation:
    id: str
    score: float
    payload: dict[str, Any]
    explanation: Explanation | None = None
    signals: dict[str, float] = field(default_factory=dict)


@dataclass
class Recommendations:
    user_id: str | None
    items: list[Recommendation]
    reason: str  # history, examples, prompt, popular, catalogue
    skipped_history: list[str] = field(default_factory=list)  # history items no longer stored
    timings_ms: dict[str, float] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Recommendation]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.items]

    @property
    def scores(self) -> np.ndarray:
        return np.array([r.score for r in self.items], dtype=np.float32)


class Recommender:
    """history -> candidates -> score -> rank -> rerank over one collection.

    ``stages`` replaces stages by name; ``history_store`` (default: ``store``) is where the
    history items' vectors are read (another catalogue for cross-catalogue recommendation);
    ``prompt_encoder`` maps a text prompt to a vector in ``config.space``.
    """

    def __init__(
        self,
        store: VectorStore,
        events: EventStore | None = None,
        fuser: Fuser | None = None,
        config: RecommenderConfig | None = None,
        *,
        user_model: UserModel | None = None,
        collaborative: CollaborativeScorer | None = None,
        prompt_encoder: Callable[[str], np.ndarray] | None = None,
        history_store: VectorStore | None = None,
        stages: Mapping[str, Stage] | None = None,
    ) -> None:
        self.store, self.events = store, events
        # Explanations split scores by modality; a collection records how it was fused.
        self.fuser = fuser or fuser_from_schema(store.schema)
        self.config = config or RecommenderConfig()
        if self.config.space not in store.schema.vectors:
            raise ConfigError(f"space {self.config.space!r} is not in the collection; it has "
                              f"{sorted(store.schema.vectors)}")
        self.history_store = history_store or store
        self.user_model = user_model or FusionUserModel(self.config.user_model)
        self.collaborative = collaborative
        self.prompt_encoder = prompt_encoder
        self.cache = ProfileCache()
        c = self.config
        self.stages: dict[str, Stage] = {
            "history": HistoryStage(c.history), "candidates": CandidateStage(c.candidates),
            "score": ScoreStage(c.score), "rank": RankStage(c.rank),
            "rerank": RerankStage(c.rerank),
        }
        for name, stage in (stages or {}).items():
            if name not in STAGE_NAMES:
                raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")
            self.stages[name] = stage
        self.popularity = Popularity(events, store.count(), c.popularity_refresh_s)
        if events is not None:  # append / forget drop the cached profile; erasure the counts
            events.add_listener(self.cache.invalidate)
            events.add_listener(self.popularity.on_change)
        self._centroid: np.ndarray | None = None
        self._popular: tuple[object, list[Any]] | None = None  # (counts seen, records)

    # -- public API ---------------------------------------------------------------------------
    def recommend(
        self,
        user_id: str | None,
        n: int = 10,
        filters: Filter | Mapping[str, Any] | None = None,
        exclude_seen: bool = True,
        diversity: float | None = None,
        *,
        prompt: str | None = None,
        examples: Sequence[str] = (),
        exclude: Sequence[str] = (),
        history: Sequence[Interaction] | None = None,
    ) -> Recommendations:
        """Top ``n`` items for a user (or for a given ``history``), best first."""
        ctx = self._context(user_id, n, filters, exclude_seen, diversity, exclude, history)
        self._timed(ctx, "history", lambda: self.stages["history"].run(ctx, self))
        if prompt is not None or examples:
            self._timed(ctx, "steer", lambda: self._steer(ctx, prompt, list(examples)))
        if ctx.profile is None or ctx.profile.is_empty:
            self._timed(ctx, "cold_start", lambda: self._cold_start(ctx))
        else:
            for name in STAGE_NAMES[1:]:
                self._timed(ctx, name, lambda name=name: self.stages[name].run(ctx, self))
        items = self._timed(ctx, "explain", lambda: self._finish(ctx))
        return Recommendations(
            user_id=user_id, items=items, reason=ctx.reason, timings_ms=ctx.timings,
            skipped_history=list(ctx.profile.skipped) if ctx.profile else [],
        )

    def profile(self, user_id: str) -> UserProfile:
        """The user's current (cached) profile."""
        ctx = RecContext(user_id=user_id, n=1)
        self.stages["history"].run(ctx, self)
        assert ctx.profile is not None
        return ctx.profile

    def fetch_vectors(self, ctx: RecContext, ids: Sequence[str]) -> None:
        """Candidate vectors in the working space, fetched once per request."""
        missing = [i for i in ids if i not in ctx.vectors]
        if missing:
            for r in self.store.retrieve(missing, vectors=[self.config.space]):
                if self.config.space in r.vectors:
                    ctx.vectors[r.id] = r.vectors[self.config.space]

    # -- internals ----------------------------------------------------------------------------
    def _context(self, user_id: str | None, n: int, filters: Any, exclude_seen: bool,
                 diversity: float | None, exclude: Sequence[str],
                 history: Sequence[Interaction] | None) -> RecContext:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or not \
                1 <= n <= self.config.max_n:
            raise RequestError(f"n must be an integer in [1, {self.config.max_n}], got {n!r}")
        if user_id is not None and (not isinstance(user_id, str) or not user_id):
            raise RequestError(f"user id must be a non-empty string, got {user_id!r}")
        if diversity is not None and (isinstance(diversity, bool) or not isinstance(
                diversity, int | float) or not 0 <= diversity <= 1):
            raise RequestError(f"diversity must be in [0, 1], got {diversity!r}")
        if filters is not None and not isinstance(filters, Filter):
            filters = Filter.model_validate(filters)  # raises RequestError when malformed
        return RecContext(user_id=user_id, n=int(n), filter=filters, exclude_seen=exclude_seen,
                          diversity=diversity, exclude=set(exclude),
                          events=list(history) if history is not None else None)

    def _timed(self, ctx: RecContext, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn()
        ctx.timings[name] = ctx.timings.get(name, 0.0) + (time.perf_counter() - t0) * 1e3
        return out

    def _steer(self, ctx: RecContext, prompt: str | None, examples: list[str]) -> None:
        """Add an interest from example items and/or a text prompt (weight = half the list)."""
        space = self.config.space
        extra: list[Interest] = []
        if examples:
            records = {r.id: r for r in self.store.retrieve(examples, vectors=[space])}
            for item in examples:
                if item not in records or space not in records[item].vectors:
                    raise UnknownItemError(item, f"the collection (space {space!r})")
            events = [Interaction("_examples", i, "like", 0.0) for i in examples]
            prof = FusionUserModel(self.config.user_model).profile(
                events, {i: records[i].vectors[space] for i in examples})
            extra += prof.interests
            ctx.labels.update({i: str(records[i].payload.get(self.config.history.label_field, i))
                               for i in examples})
            ctx.exclude.update(examples)
            ctx.examples.update(examples)
            ctx.reason = "examples"
        if prompt is not None:
            if not isinstance(prompt, str) or not prompt.strip():
                raise RequestError(f"prompt must be non-empty text, got {prompt!r}")
            if self.prompt_encoder is None:
                raise ConfigError("a text prompt needs a prompt_encoder into the space "
                                  f"{space!r} (e.g. Searcher.text_vector)")
            vec = np.asarray(self.prompt_encoder(prompt), np.float32)
            vec = vec / max(float(np.linalg.norm(vec)), 1e-12)
            extra.append(Interest(vec, 1.0, [], np.zeros(0, np.float32),
                                  np.zeros((0, len(vec)), np.float32)))
            ctx.prompt, ctx.reason = prompt, "prompt" if not examples else ctx.reason
        base = ctx.profile or UserProfile(negative_weight=self.config.user_model.negative_weight)
        old = base.interests
        share = 0.5 if old else 1.0
        interests = [Interest(i.vector, i.weight * (1 - share), i.item_ids, i.item_weights,
                              i.item_vectors) for i in old]
        interests += [Interest(i.vector, share / len(extra), i.item_ids, i.item_weights,
                               i.item_vectors) for i in extra]
        ctx.profile = UserProfile(
            interests=interests, negative=base.negative, item_weights=base.item_weights,
            skipped=base.skipped, labels=base.labels, blend=base.blend,
            negative_weight=base.negative_weight, seen=base.seen)
        if old:
            ctx.reason = "history"

    def _cold_start(self, ctx: RecContext) -> None:
        cfg, space = self.config.cold_start, self.config.space
        chosen: list[Candidate] = []
        records = [r for r in self._popular_records()
                   if r.id not in ctx.exclude and matches(ctx.filter, r.payload)]
        if records:
            z = self.popularity.z([r.id for r in records])
            rel = (z - z.min()) / (np.ptp(z) or 1.0)
            div = ctx.diversity if ctx.diversity is not None else cfg.diversity
            order = mmr_select(rel, np.stack([r.vectors[space] for r in records]), ctx.n, div)
            chosen = [Candidate(records[j].id, records[j].payload, -1, 0.0, float(z[j]),
                                {"popularity": float(z[j])}, "popular") for j in order]
        ctx.reason = "popular" if chosen else "catalogue"
        if len(chosen) < ctx.n:  # not enough popular items (or no events): catalogue MMR
            hits = self.store.mmr(
                self._catalogue_centroid(), using=space, limit=ctx.n - len(chosen),
                diversity=cfg.diversity, candidates_limit=max(100, 10 * ctx.n),
                filter=ctx.filter, exclude_ids=sorted(ctx.exclude | {c.id for c in chosen}))
            chosen += [Candidate(h.id, h.payload, -1, h.score, h.score, {"similarity": h.score},
                                 "catalogue") for h in hits]
        ctx.candidates = chosen

    def _popular_records(self) -> list[Any]:
        """The most popular items with vectors, re-read only when the counts change."""
        cfg = self.config.cold_start
        self.popularity.refresh()
        if self._popular is None or self._popular[0] is not self.popularity.counts:
            ids = self.popularity.top(cfg.popular_pool)
            records = [r for r in self.store.retrieve(ids, vectors=[self.config.space])
                       if self.config.space in r.vectors] if ids else []
            self._popular = (self.popularity.counts, records)
        return self._popular[1]

    def delete_item(self, item_id: str) -> None:
        """Remove an item from the catalogue and its events (caches follow)."""
        self.store.delete([item_id])
        if self.events is not None:
            self.events.delete_item(item_id)
        self._popular = None

    def _catalogue_centroid(self) -> np.ndarray:
        if self._centroid is None:
            space, rows = self.config.space, []
            for r in self.store.iter_records(vectors=[space],
                                             batch_size=self.config.cold_start.centroid_sample):
                if space in r.vectors:
                    rows.append(r.vectors[space])
                if len(rows) >= self.config.cold_start.centroid_sample:
                    break
            if not rows:
                dim = self.store.schema.vectors[space].dim
                return np.ones(dim, np.float32) / np.sqrt(dim)
            c = np.mean(rows, axis=0)
            self._centroid = (c / max(float(np.linalg.norm(c)), 1e-12)).astype(np.float32)
        return self._centroid

    def _finish(self, ctx: RecContext) -> list[Recommendation]:
        out = []
        if self.config.explain:
            self.fetch_vectors(ctx, [c.id for c in ctx.candidates if c.interest >= 0])
        for c in ctx.candidates:
            expl = self._explain(ctx, c) if self.config.explain else None
            out.append(Recommendation(c.id, c.score, c.payload, expl, c.signals))
        return out

    def _explain(self, ctx: RecContext, c: Candidate) -> Explanation:
        if c.reason == "popular":
            return simple_explanation("popular", "Popular with other users.", c.signals)
        if c.reason == "catalogue":
            return simple_explanation(
                "catalogue", "A varied pick from the catalogue to get you started.", c.signals)
        profile = ctx.profile
        assert profile is not None
        interest = profile.interests[c.interest]
        if not interest.item_ids:
            return simple_explanation("prompt", f"Matches your request {ctx.prompt!r}.",
                                      c.signals)
        verb = "chose" if set(interest.item_ids) <= ctx.examples else "liked"
        return explain_item(ctx.vectors.get(c.id, interest.vector), interest, fuser=self.fuser,
                            space=self.config.space, labels=ctx.labels, verb=verb,
                            reason="examples" if verb == "chose" else "history",
                            signals=c.signals)


def cross_catalogue_recommend(
    history_store: VectorStore,
    target_store: VectorStore,
    history: Sequence[Interaction] | Sequence[str],
    *,
    space: str = "image",
    n: int = 10,
    filters: Filter | None = None,
    diversity: float | None = None,
    config: RecommenderConfig | None = None,
) -> Recommendations:
    """Recommend items of ``target_store`` from a history in ``history_store`` through a space
    both collections share (e.g. CLIP ``image``: movie posters -> photos). A plain list of ids
    counts as likes. Both collections must hold ``space`` with the same encoder."""
    a, b = history_store.schema.vectors.get(space), target_store.schema.vectors.get(space)
    if a is None or b is None:
        raise ConfigError(f"space {space!r} must exist in both collections")
    if a != b:
        raise ConfigError(f"space {space!r} was built by different encoders: "
                          f"{a.encoder} (dim {a.dim}) vs {b.encoder} (dim {b.dim})")
    events = [e if isinstance(e, Interaction) else Interaction("_cross", e, "like", float(t))
              for t, e in enumerate(history)]
    cfg = (config or RecommenderConfig(score=ScoreConfig(popularity_weight=0.0)))
    cfg = cfg.model_copy(update={"space": space})
    rec = Recommender(target_store, None, None, cfg, history_store=history_store)
    return rec.recommend(None, n, filters, exclude_seen=False, diversity=diversity,
                         history=events)
