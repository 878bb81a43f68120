"""Candidate stage: several sources propose items, the stage merges them.

Sources with a trained model: the sequence model's and ALS's item vectors searched with the
user's state (Qdrant named vectors, so retrieval stays one vector search at any catalogue
size), EASE's top items, neighbours of the newest history items, popular and trending items,
and new items through the content map (``W u`` searched in the content space among items no
model has seen). Without a model: the fusion user model's interests searched in the content
space (:class:`ContentSource`). Sources search through a
:class:`~mosaicrec.engine.retrieval.Retriever`, so tuning and serving share this code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from pydantic import Field

from mosaicrec.config import StrictModel
from mosaicrec.engine.context import Candidate, RecContext
from mosaicrec.engine.models.trained import TrainedModel
from mosaicrec.engine.payload import matches
from mosaicrec.engine.popularity import Popularity
from mosaicrec.engine.retrieval import Retriever, hit_ids
from mosaicrec.indexing.stores.base import ID_FIELD, Hit

__all__ = [
    "CandidateConfig", "CandidateSource", "CandidateStage", "ContentSource", "Proposal",
    "SourceLimits", "model_sources", "new_item_vectors",
]


# One proposal: a Candidate when the source knows more than the id (a payload read with a
# filtered search, an interest, vectors), else the plain id (hundreds per request: no objects).
Proposal = Candidate | str


class CandidateSource(Protocol):
    name: str

    def propose(self, ctx: RecContext) -> Sequence[Proposal]:
        """The source's items for this request, best first."""
        ...


class CandidateConfig(StrictModel):
    """The content user model's candidate queries."""

    pool_factor: int = Field(5, ge=1, description="candidates per interest = factor * n ...")
    min_pool: int = Field(50, ge=1, description="... but at least this many")
    extra_spaces: list[str] = Field(
        default_factory=list, description="also query these per-modality spaces per interest")
    ef: int | None = Field(
        64, ge=1, description="HNSW ef per candidate query (None: the store's default)")
    memory_search_max_floats: int = Field(
        4_000_000, ge=0, description="a trained model's item matrix up to this size is "
        "searched exactly in memory when a request has no payload filter (0: always Qdrant)")


class SourceLimits(StrictModel):
    """How many candidates each source of a trained model proposes (0 turns it off)."""

    ease: int = Field(200, ge=0)
    sequence: int = Field(200, ge=0)
    als: int = Field(100, ge=0)
    recent: int = Field(50, ge=0, description="neighbours of the newest positive items")
    recent_items: int = Field(3, ge=1)
    popular: int = Field(50, ge=0)
    trending: int = Field(30, ge=0)
    new_items: int = Field(30, ge=0, description="items no model knows, via the content map")
    content: int = Field(100, ge=0, description="the fusion profile's interest queries")
    content_only_when_weighted: bool = Field(
        True, description="skip the content queries when the blend gives content no weight "
        "(unless a steer asks or the models know none of the user's items); tuning, which "
        "chooses the weights, always runs them")


class CandidateStage:
    """Union of the sources' proposals; items proposed without a payload are checked against
    the request's filter on their payload (one read for all of them)."""

    name = "candidates"

    def __init__(self, sources: Sequence[CandidateSource], retriever: Retriever) -> None:
        self.sources, self.retriever = list(sources), retriever

    def run(self, ctx: RecContext) -> None:
        merged: dict[str, Candidate] = {}
        exclude, existing, plain = ctx.exclude, merged.get, _plain
        for source in self.sources:
            name = source.name
            for new in source.propose(ctx):
                if type(new) is not str:  # the common case is a behaviour source's plain id
                    if not isinstance(new, str):
                        _merge(merged, new, name, exclude)
                        continue
                    new = str(new)  # e.g. numpy strings
                if new not in exclude:
                    if (c := existing(new)) is None:
                        merged[new] = plain(new, name)
                    else:
                        c.sources.append(name)
        if ctx.filter is not None:  # items proposed from memory are checked on their payload
            unknown = [c.id for c in merged.values() if c.payload is None]
            payloads = self.retriever.payloads(unknown)
            for i in unknown:
                merged[i].payload = payloads.get(i)
            merged = {i: c for i, c in merged.items() if c.payload is not None and (
                i not in unknown or matches(ctx.filter, {**c.payload, ID_FIELD: i}))}
        ctx.candidates = list(merged.values())


def _merge(merged: dict[str, Candidate], new: Proposal, name: str, exclude: set[str]) -> None:
    """Add a proposal that came with more than its id (payload, interest, vectors)."""
    if not isinstance(new, Candidate):
        raise TypeError(f"candidate source {name!r} proposed {new!r}: "
                        "propose() returns ids (str) or Candidate objects")
    if new.id in exclude:
        return
    c = merged.setdefault(new.id, new)
    if c is not new:
        c.payload = c.payload or new.payload
        if new.interest >= 0 and (c.interest < 0 or new.similarity > c.similarity):
            c.interest, c.similarity = new.interest, new.similarity
        c.sims.update(new.sims)
        c.vectors.update(new.vectors)
        if new.new_item is not None:
            c.new_item = new.new_item
    c.sources.append(name)


def _plain(item: str, source: str) -> Candidate:
    """A candidate known by its id only (every field given, by position: the default
    factories and keywords cost half the construction, and a request makes hundreds)."""
    return Candidate(item, None, -1, 0.0, 0.0, {}, "history", {}, [source], True, {})


class ContentSource:
    """One query per interest of the fusion profile, with the negative centroid folded in:
    ``cos(c, i - λn) * |i - λn| = cos(c, i) - λ cos(c, n)`` exactly, so hit scores are the user
    model's scores and no candidate vector has to be fetched."""

    name = "content"

    def __init__(self, config: CandidateConfig, retriever: Retriever, space: str,
                 fuser: object | None = None, limit: int | None = None,
                 with_vectors: Sequence[str] = (), *, when_needed: bool = False) -> None:
        self.config, self.retriever, self.space = config, retriever, space
        self.fuser, self.limit, self.with_vectors = fuser, limit, tuple(with_vectors)
        self.when_needed = when_needed

    def propose(self, ctx: RecContext) -> list[Candidate]:
        # beside a trained blend that gives content no weight, content neighbours are only
        # scored by behaviour, which its own sources already searched: skip the queries,
        # unless a prompt or examples steer the list or the models know none of the items
        if self.when_needed and not ctx.steered and ctx.state is not None and \
                ctx.state.has_behaviour:
            return []
        profile = ctx.profile
        if profile is None or profile.is_empty:
            return []
        limit = self.limit or max(self.config.min_pool, self.config.pool_factor * ctx.n)
        lam = profile.negative_weight if profile.negative is not None else 0.0
        best: dict[str, Candidate] = {}
        for k, interest in enumerate(profile.interests):
            q = interest.vector - lam * profile.negative if lam else interest.vector
            norm = float(np.linalg.norm(q))
            if norm < 1e-6:
                continue
            for h in self.retriever.search(self.space, q / norm, limit, filter=ctx.filter,
                                           exclude=ctx.exclude, with_vectors=self.with_vectors,
                                           payload=_needs_payload(ctx)):
                _keep(best, h.id, h.payload, k, h.score * norm).vectors.update(h.vectors)
        self._extra_spaces(ctx, best, limit, lam)
        return list(best.values())

    def _extra_spaces(self, ctx: RecContext, best: dict[str, Candidate], limit: int,
                      lam: float) -> None:
        if not self.config.extra_spaces or self.fuser is None or self.space != "fused":
            return
        profile = ctx.profile
        assert profile is not None
        hits: list[Hit] = []
        for interest in profile.interests:
            blocks = self.fuser.split(interest.vector)  # type: ignore[attr-defined]
            for space in self.config.extra_spaces:
                block = blocks.get(space)
                if block is None or not np.any(block):
                    continue
                hits += self.retriever.search(space, block / np.linalg.norm(block), limit,
                                              filter=ctx.filter, exclude=ctx.exclude)
        missing = list(dict.fromkeys(h.id for h in hits if h.id not in best))
        vectors = self.retriever.vectors(missing, self.space)
        payloads = {h.id: h.payload for h in hits}
        if vectors:
            ids = list(vectors)
            mat = np.stack([vectors[i] for i in ids])
            sims = profile.interest_scores(mat)
            push = lam * (mat @ profile.negative) if lam else np.zeros(len(ids))
            for i, s, p in zip(ids, sims, push, strict=True):
                k = int(np.argmax(s))
                _keep(best, i, payloads.get(i), k, float(s[k] - p))


def _keep(best: dict[str, Candidate], item: str, payload: dict | None, k: int,
          sim: float) -> Candidate:
    c = best.get(item)
    if c is None:
        c = best[item] = Candidate(item, payload or None, k, sim)
    elif sim > c.similarity:
        c.interest, c.similarity = k, sim
    c.sims[k] = max(sim, c.sims.get(k, -np.inf))
    return c


class _VectorSource:
    """The user's state searched in one behaviour space (``new_only``: unknown items only).

    New items are searched in the ``als`` space among the items the content map placed there:
    their published vectors are ``W^T c + b``, so the hit score is the blend's ``new_item``
    signal itself (kept on the candidate: no vector read), in a few dozen dimensions instead of
    the content space's thousand. Without an ``als`` space, the content space is searched with
    ``W u`` (the same order), and the blend reads the hits' content vectors to score them."""

    def __init__(self, name: str, space: str, retriever: Retriever, limit: int,
                 *, new_only: bool = False, known: Callable[[str], bool] | None = None) -> None:
        self.name, self.space, self.retriever = name, space, retriever
        self.limit, self.new_only, self.known = limit, new_only, known

    def propose(self, ctx: RecContext) -> Sequence[Proposal]:
        state = ctx.state
        if state is None or not self.retriever.has_space(self.space):
            return []
        query = state.query(self.space)
        if query is None and self.new_only and self.space != "als":
            query = state.content_query  # W u, in the content map's space
        if query is None or not np.any(query):
            return []
        if not self.new_only:
            return _search(self.retriever, self.space, query, self.limit, ctx)
        exclude = ctx.exclude
        if self.known is not None:
            # items the model knows are never flagged new (publish.sync_items): only the
            # user's other items need excluding in the query (~0.2 ms less), and the merge
            # drops any excluded id whatever a source proposes
            exclude = {i for i in exclude if not self.known(i)}
        hits = self.retriever.search(self.space, query, self.limit, filter=ctx.filter,
                                     exclude=exclude, new_only=True,
                                     payload=_needs_payload(ctx))
        # in the als space the query is the user's ALS factor: a hit's score is its new_item
        return _from_hits(hits, new_item=self.space == "als")


class _EaseSource:
    name = "ease"

    def __init__(self, model: TrainedModel, limit: int) -> None:
        self.model, self.limit = model, limit

    def propose(self, ctx: RecContext) -> Sequence[Proposal]:
        state = ctx.state
        if state is None or state.ease is None or not len(state.ease.rows):
            return []
        scores = self.model.ease.score_all(state.ease)  # type: ignore[union-attr]
        ids = self.model.items.ids
        banned = self.model.items.rows(sorted(ctx.exclude))
        scores[banned[banned >= 0]] = -np.inf
        k = min(self.limit, len(ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.isfinite(scores[top])]
        return [ids[j] for j in top.tolist()]


class _RecentSource:
    """Neighbours of the newest positive items in a behaviour space (their mean vector)."""

    name = "recent"

    def __init__(self, model: TrainedModel, retriever: Retriever, space: str, limit: int,
                 items: int) -> None:
        self.model, self.retriever, self.space = model, retriever, space
        self.limit, self.items = limit, items

    def propose(self, ctx: RecContext) -> Sequence[Proposal]:
        state = ctx.state
        if state is None or not self.retriever.has_space(self.space):
            return []
        recent = np.unique(state.history.known_positive[-self.items:])
        if not len(recent):
            return []
        vectors = (self.model.als.item_vectors if self.space == "als"  # type: ignore[union-attr]
                   else self.model.sequence.item_vectors)  # type: ignore[union-attr]
        return _search(self.retriever, self.space, vectors[recent].mean(axis=0), self.limit,
                       ctx)


class _PopularSource:
    def __init__(self, popularity: Popularity, limit: int, *, recent: bool) -> None:
        self.name = "trending" if recent else "popular"
        self.popularity, self.limit, self.recent = popularity, limit, recent

    def propose(self, ctx: RecContext) -> Sequence[Proposal]:
        # over-fetch: seen items and filtered-out items are dropped afterwards
        ids = self.popularity.top(self.limit + len(ctx.exclude), recent=self.recent)
        return [i for i in ids if i not in ctx.exclude][: self.limit]


def _needs_payload(ctx: RecContext) -> bool:
    """A filtered request checks every candidate's payload, so hits bring theirs; otherwise
    only the final list's payloads are read (most candidates never need one)."""
    return ctx.filter is not None


def _search(retriever: Retriever, space: str, query: np.ndarray, limit: int,
            ctx: RecContext) -> Sequence[Proposal]:
    """A behaviour-space search: plain ids unless a filter makes the hits bring payloads."""
    if ctx.filter is None:
        nearest = getattr(retriever, "nearest_ids", None)  # a retriever written before it
        if nearest is not None:
            return nearest(space, query, limit, exclude=ctx.exclude)
        return hit_ids(retriever, space, query, limit, ctx.exclude)
    return _from_hits(retriever.search(space, query, limit, filter=ctx.filter,
                                       exclude=ctx.exclude, payload=True))


def _from_hits(hits: list[Hit], *, new_item: bool = False) -> list[Candidate]:
    """Candidates from search hits (``new_item``: their scores are that signal)."""
    return [Candidate(h.id, h.payload or None, -1, 0.0, vectors=h.vectors,
                      new_item=h.score if new_item else None) for h in hits]


def new_item_vectors(model: TrainedModel, retriever: Retriever) -> tuple[str, ...]:
    """What a content search, which may find items no model knows, reads with each hit: their
    published ``als`` vectors, from which the blend scores them (no second read)."""
    return ("als",) if model.content_map is not None and retriever.has_space("als") else ()


def model_sources(model: TrainedModel, retriever: Retriever, popularity: Popularity,
                  limits: SourceLimits) -> list[CandidateSource]:
    """The trained model's candidate sources, in a fixed order."""
    out: list[CandidateSource] = []
    if model.ease is not None and limits.ease:
        out.append(_EaseSource(model, limits.ease))
    for space in model.spaces:
        limit = getattr(limits, space)
        if limit:
            out.append(_VectorSource(space, space, retriever, limit))
    if limits.recent and model.spaces:
        out.append(_RecentSource(model, retriever, model.spaces[0], limits.recent,
                                 limits.recent_items))
    if limits.popular:
        out.append(_PopularSource(popularity, limits.popular, recent=False))
    if limits.trending:
        out.append(_PopularSource(popularity, limits.trending, recent=True))
    if limits.new_items and model.content_map is not None:
        space = "als" if retriever.has_space("als") else model.content_map.space
        out.append(_VectorSource("new_items", space, retriever, limits.new_items,
                                 new_only=True, known=model.is_known))
    return out
