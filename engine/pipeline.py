"""The recommender: named, replaceable stages wired over a collection, an event store and, when
one has been trained, the trained model.

    rec = Recommender(store, events, model=load_model(...))
    recs = rec.recommend("user-1", n=10, filters=Filter(must=[...]), diversity=0.3)
    recs.ids, recs.scores, recs.items[0].explanation.sentence

With a trained model: history -> candidates from several sources (behaviour vectors searched
in the collection with the user's state, EASE's top items, recent neighbours, popular and
trending items, new items through the content map) -> the blend chosen on validation -> rank
-> rerank (MMR, caps). Without one, the fusion user model's interests are searched in the
content space and scored by similarity and popularity. A user with no history gets the
cold-start stage (popular items made diverse, or a diverse catalogue pick); a text prompt or
example items steer any list.

A filter on a payload field that no item has matches nothing (``must``) or everything
(``must_not``), as in Qdrant: the result is then empty or unfiltered, never an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from pydantic import Field

from mosaicrec.config import StrictModel
from mosaicrec.encoders.fusion import Fuser
from mosaicrec.encoders.profiles import fuser_from_schema
from mosaicrec.engine.context import Candidate, RecContext, Stage
from mosaicrec.engine.explainer import Explainer
from mosaicrec.engine.item_cache import payload_cache, vector_cache
from mosaicrec.engine.models.trained import TrainedModel
from mosaicrec.engine.popularity import Popularity
from mosaicrec.engine.profile_cache import ProfileCache
from mosaicrec.engine.recommendations import Recommendation, Recommendations
from mosaicrec.engine.result_cache import ResultCache
from mosaicrec.engine.retrieval import (
    LayeredRetriever,
    MemoryRetriever,
    Retriever,
    StoreRetriever,
    fill_payloads,
)
from mosaicrec.engine.stages import (
    BlendStage,
    BlendStageConfig,
    CandidateConfig,
    CandidateStage,
    ColdStartConfig,
    ColdStartStage,
    ContentSource,
    HistoryConfig,
    HistoryStage,
    RankConfig,
    RankStage,
    RerankConfig,
    RerankStage,
    ScoreConfig,
    ScoreStage,
    SourceLimits,
    model_sources,
    new_item_vectors,
    raw_signals,
)
from mosaicrec.engine.steer import steer
from mosaicrec.engine.user_model import (
    FusionUserModel,
    Interaction,
    UserModel,
    UserModelConfig,
    UserProfile,
)
from mosaicrec.errors import ConfigError, RequestError
from mosaicrec.indexing.stores.base import Filter, VectorStore

__all__ = [
    "STAGE_NAMES", "Recommender", "RecommenderConfig",
]

STAGE_NAMES = ("history", "candidates", "score", "rank", "rerank", "cold_start")


class RecommenderConfig(StrictModel):
    space: str = Field("fused", description="named vector the user model works in")
    max_n: int = Field(1000, ge=1)
    explain: bool = True
    popularity_refresh_s: float = Field(30.0, ge=0)
    trend_days: float = Field(14.0, gt=0, description="window of the trending counts")
    user_model: UserModelConfig = Field(default_factory=UserModelConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    candidates: CandidateConfig = Field(default_factory=CandidateConfig)
    sources: SourceLimits = Field(default_factory=SourceLimits)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    blend: BlendStageConfig = Field(default_factory=BlendStageConfig)
    rank: RankConfig = Field(default_factory=RankConfig)
    rerank: RerankConfig = Field(default_factory=RerankConfig)
    cold_start: ColdStartConfig = Field(default_factory=ColdStartConfig)
    vector_cache_mb: float = Field(
        256.0, ge=0, description="item vectors read from the collection kept in memory "
        "(content similarity, explanations and MMR read hundreds a request; 0: off)")
    payload_cache_mb: float = Field(
        64.0, ge=0, description="item payloads read from the collection kept in memory (each "
        "list's items and the history items its explanations name; 0: off)")
    result_cache_size: int = Field(
        10_000, ge=0, description="finished lists kept for repeated requests (0: off)")
    result_cache_ttl_s: float = Field(
        600.0, gt=0, description="oldest cached list served: bounds how stale popularity and "
        "trending inside a list may get (a user's events, the catalogue and the model "
        "invalidate at once)")


class Recommender:
    """The stages over one collection. ``stages`` replaces stages by name; ``history_store``
    (default: ``store``) is where history items' vectors are read (another catalogue, for
    cross-catalogue recommendation); ``prompt_encoder`` maps a text prompt into
    ``config.space``; ``model`` is the trained model to serve."""

    def __init__(
        self,
        store: VectorStore,
        events: Any | None = None,
        fuser: Fuser | None = None,
        config: RecommenderConfig | None = None,
        *,
        model: TrainedModel | None = None,
        user_model: UserModel | None = None,
        prompt_encoder: Callable[[str], np.ndarray] | None = None,
        history_store: VectorStore | None = None,
        stages: Mapping[str, Stage] | None = None,
        retriever: Retriever | None = None,
        popularity: Any | None = None,
    ) -> None:
        self.store, self.events, self.model = store, events, model
        # Explanations split scores by modality; a collection records how it was fused.
        self.fuser = fuser or fuser_from_schema(store.schema)
        self.config = c = config or RecommenderConfig()
        if c.space not in store.schema.vectors:
            raise ConfigError(f"space {c.space!r} is not in the collection; it has "
                              f"{sorted(store.schema.vectors)}")
        self.history_store = history_store or store
        self.user_model = user_model or FusionUserModel(c.user_model)
        self.prompt_encoder = prompt_encoder
        self.cache = ProfileCache()
        # tuning injects an in-memory retriever and the popularity of the training part
        self.vector_cache = vector_cache(int(c.vector_cache_mb * 2**20), c.result_cache_ttl_s)
        self.payload_cache = payload_cache(int(c.payload_cache_mb * 2**20),
                                           c.result_cache_ttl_s)
        # the collection itself, its vectors and payloads kept in memory between requests
        self.catalogue = StoreRetriever(store, c.candidates.ef, self.vector_cache,
                                        self.payload_cache)
        self.retriever = retriever or _serving_retriever(self.catalogue, model, c.candidates)
        self.popularity = popularity or Popularity(
            events, store.count(), c.popularity_refresh_s, positive_only=model is None,
            trend_days=c.trend_days)
        self.results = ResultCache(c.result_cache_size, c.result_cache_ttl_s)
        if events is not None:  # append / forget drop the cached profile; erasure the counts
            events.add_listener(self.cache.invalidate)
            events.add_listener(self.popularity.on_change)
            events.add_listener(self.results.forget_user)
        self.explainer = Explainer(model=model, retriever=self.retriever, fuser=self.fuser,
                                   space=c.space, label_field=c.history.label_field)
        self.stages: dict[str, Stage] = self._default_stages()
        for name, stage in (stages or {}).items():
            if name not in STAGE_NAMES:
                raise ConfigError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")
            self.stages[name] = stage

    def _default_stages(self) -> dict[str, Stage]:
        c, model, retriever = self.config, self.model, self.retriever
        content = ContentSource(
            c.candidates, retriever, c.space, self.fuser,
            limit=c.sources.content if model is not None else None,
            with_vectors=new_item_vectors(model, retriever) if model is not None else (),
            when_needed=model is not None and c.sources.content_only_when_weighted
            and not model.blend.weights.get("content"))
        if model is not None:
            sources = [*model_sources(model, retriever, self.popularity, c.sources)]
            if c.sources.content:
                sources.append(content)
            score: Stage = BlendStage(c.blend, model=model, retriever=retriever,
                                      popularity=self.popularity, content_space=c.space,
                                      boosts=c.score.boosts)
        else:
            sources = [content]
            score = ScoreStage(c.score, popularity=self.popularity, retriever=retriever)
        return {
            "history": HistoryStage(c.history, events=self.events, vectors=self._history_vectors,
                                    user_model=self.user_model, cache=self.cache, model=model,
                                    same_catalogue=self.history_store is self.store),
            "candidates": CandidateStage(sources, retriever),
            "score": score,
            "rank": RankStage(c.rank, similarity_weight=c.score.similarity_weight,
                              trained=model is not None),
            "rerank": RerankStage(c.rerank, vectors=self.fetch_vectors,
                                  payloads=self._fill_payloads),
            "cold_start": ColdStartStage(c.cold_start, store=self.store,
                                         popularity=self.popularity, space=c.space),
        }

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
        explain: bool | None = None,
    ) -> Recommendations:
        """Top ``n`` items for a user (or for a given ``history``), best first; each with
        its explanation unless ``explain`` is False (None: ``config.explain``). A repeated
        request is answered from the result cache until the user, the catalogue or the model
        changes (see :mod:`~mosaicrec.engine.result_cache`)."""
        explain = self._explains(explain)
        key = None
        if history is None and user_id is not None:
            key = _result_key(user_id, n, filters, exclude_seen=exclude_seen, diversity=diversity,
                              prompt=prompt, examples=examples, exclude=exclude,
                              explain=explain)
            cached = self._from_cache(key)
            if cached is not None:
                return cached
        generation = self.results.generation
        ctx = self._context(user_id, n, filters, exclude_seen, diversity, exclude, history)
        ctx.explain = explain
        self._timed(ctx, "history", self.stages["history"].run)
        if prompt is not None or examples:
            self._timed(ctx, "steer", lambda ctx: steer(
                ctx, store=self.store, space=self.config.space, config=self.config.user_model,
                label_field=self.config.history.label_field, prompt=prompt,
                examples=list(examples), prompt_encoder=self.prompt_encoder))
        if self._is_cold(ctx):
            self._timed(ctx, "cold_start", self.stages["cold_start"].run)
        else:
            for name in STAGE_NAMES[1:5]:
                self._timed(ctx, name, self.stages[name].run)
        items = self._timed(ctx, "explain", self._finish)
        profile = ctx._profile
        recs = Recommendations(
            user_id=user_id, items=items, reason=ctx.reason, timings_ms=ctx.timings,
            skipped_history=list(profile.skipped) if profile else [],
            model_version=self.model.version if self.model is not None else None,
        )
        if key is not None:
            self.results.put(key, recs, generation)
        return recs

    def cached(self, user_id: str, n: int = 10,
               filters: Filter | Mapping[str, Any] | None = None, **options: Any,
               ) -> Recommendations | None:
        """What :meth:`recommend` would answer from its result cache (``options``: its
        keyword options), or None. Never computes and takes no lock but the cache's, so a
        server may call it on its event loop and pay for a worker thread only on a miss."""
        explain = self._explains(options.pop("explain", None))
        return self._from_cache(_result_key(user_id, n, filters, explain=explain, **options))

    def _explains(self, explain: bool | None) -> bool:
        """Whether a request builds explanations (None: as configured)."""
        return self.config.explain if explain is None else bool(explain)

    def _from_cache(self, key: Any) -> Recommendations | None:
        hit = self.results.get(key)
        return None if hit is None else replace(hit, timings_ms={"cached": 0.0})

    def warm(self, users: Sequence[str], n: int = 10) -> int:
        """Compute and cache the default list of each user (Gorse-style precomputation, so
        the first requests after a start are answered from memory); returns how many."""
        for user in users:
            self.recommend(user, n)
        return len(users)

    def candidate_signals(self, history: Sequence[Interaction], *, content: bool = False,
                          ) -> tuple[list[str], dict[str, np.ndarray], Any, list[list[str]]]:
        """The served history and candidate stages for a given history, then every raw signal
        of the candidates (before blending) and the sources that proposed each: what tuning
        on validation scores once per user."""
        if self.model is None:
            raise ConfigError("candidate signals need a trained model")
        ctx = self._context(None, 10, None, True, None, (), history)
        self.stages["history"].run(ctx)
        self.stages["candidates"].run(ctx)
        signals = raw_signals(ctx, self.model, self.retriever, self.popularity,
                              content_space=self.config.space if content else None)
        return ([c.id for c in ctx.candidates], signals, ctx.state,
                [c.sources for c in ctx.candidates])

    def profile(self, user_id: str) -> UserProfile:
        """The user's current (cached) fusion profile."""
        ctx = RecContext(user_id=user_id, n=1)
        self.stages["history"].run(ctx)
        return ctx.profile or UserProfile()

    def fetch_vectors(self, ctx: RecContext, ids: Sequence[str]) -> None:
        """Candidate vectors in the working space, fetched once per request."""
        missing = [i for i in ids if i not in ctx.vectors]
        ctx.vectors.update(self.retriever.vectors(missing, self.config.space))

    def catalogue_changed(self) -> None:
        """Items were written or deleted outside this recommender: drop cached lists, vectors
        and payloads."""
        self.results.clear()
        self.vector_cache.clear()
        self.payload_cache.clear()

    def delete_item(self, item_id: str) -> None:
        """Remove an item from the catalogue and its events (caches follow)."""
        self.catalogue_changed()
        self.store.delete([item_id])
        if self.events is not None:
            self.events.delete_item(item_id)
        cold = self.stages["cold_start"]
        if isinstance(cold, ColdStartStage):
            cold.forget_cache()

    # -- internals ----------------------------------------------------------------------------
    def _is_cold(self, ctx: RecContext) -> bool:
        if ctx.steered:
            return False
        if self.model is not None and ctx.state is not None and ctx.state.has_behaviour:
            return False
        return ctx.profile is None or ctx.profile.is_empty

    def _history_vectors(self, ids: Sequence[str]) -> tuple[dict[str, np.ndarray],
                                                             dict[str, str]]:
        space, label = self.config.space, self.config.history.label_field
        same = self.history_store is self.store  # kept vectors are this catalogue's
        kept = self.vector_cache.kept(space, ids) if same else {}
        records = self.history_store.retrieve([i for i in ids if i not in kept],
                                              vectors=[space], payload=[label])
        vectors = {r.id: r.vectors[space] for r in records if space in r.vectors}
        if same:  # scoring, MMR and explanations read them again
            self.vector_cache.put_many(space, vectors)
        labels = {r.id: str(r.payload.get(label, r.id)) for r in records}
        labels.update({i: str(p.get(label, i))
                       for i, p in self.catalogue.payloads(list(kept), [label]).items()})
        return {**kept, **vectors}, labels

    def _fill_payloads(self, cands: Sequence[Candidate]) -> None:
        fill_payloads(cands, self.retriever)

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

    def _timed(self, ctx: RecContext, name: str, fn: Callable[[RecContext], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn(ctx)
        ctx.timings[name] = ctx.timings.get(name, 0.0) + (time.perf_counter() - t0) * 1e3
        return out

    def _finish(self, ctx: RecContext) -> list[Recommendation]:
        if ctx.scored is not None:
            for c in ctx.candidates:
                c.signals = ctx.scored.of(c.id) or c.signals
        self._fill_payloads(ctx.candidates)
        explanations = self.explainer.explain(ctx, ctx.candidates) if ctx.explain \
            else [None] * len(ctx.candidates)
        return [Recommendation(c.id, c.score, c.payload or {}, e, c.signals)
                for c, e in zip(ctx.candidates, explanations, strict=True)]


def _serving_retriever(retriever: StoreRetriever, model: TrainedModel | None,
                       config: CandidateConfig) -> Retriever:
    """The store, with the model's behaviour matrices searched in memory when they are small
    enough for a matrix product to beat an HNSW query."""
    if model is None:
        return retriever
    spaces = {space: (model.items.ids, matrix, "dot")
              for space, matrix in model.item_matrices().items()
              if matrix.size <= config.memory_search_max_floats}
    return LayeredRetriever(retriever, MemoryRetriever(spaces)) if spaces else retriever


def _result_key(user_id: str, n: int, filters: Any, *, exclude_seen: bool = True,
                diversity: float | None = None, prompt: str | None = None,
                examples: Sequence[str] = (), exclude: Sequence[str] = (),
                explain: bool = True) -> Any:
    return ResultCache.key(user_id, n=n, filters=_plain(filters), seen=exclude_seen,
                           diversity=diversity, prompt=prompt, examples=list(examples),
                           exclude=sorted(exclude), explain=explain)


def _plain(filters: Any) -> Any:
    return filters.model_dump(exclude_none=True) if isinstance(filters, Filter) else filters
