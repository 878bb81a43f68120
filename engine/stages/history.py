"""History stage: the user's events -> what the later stages need to know about them.

It reads the newest events (or takes a history given with the request), marks every item the
user has touched as seen, prepares the fusion user model's profile (built on first use, cached
per user; the cache drops a user on each new event and on ``forget``), and, with a trained
model, computes the behaviour state: one EASE query row, one folded-in ALS factor and one
sequence-model pass, so a new event changes the very next list without retraining.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from pydantic import Field

from mosaicrec.config import StrictModel
from mosaicrec.engine.context import RecContext
from mosaicrec.engine.models.trained import TrainedModel
from mosaicrec.engine.profile_cache import ProfileCache
from mosaicrec.engine.user_model import Interaction, UserModel, UserProfile

__all__ = ["HistoryConfig", "HistoryStage"]

VectorLookup = Callable[[Sequence[str]], "tuple[dict[str, np.ndarray], dict[str, str]]"]


class HistoryConfig(StrictModel):
    limit: int | None = Field(500, ge=1, description="newest events used for the profile")
    use_cache: bool = True
    label_field: str = "title"


class HistoryStage:
    """``vectors(ids)`` returns the history items' vectors in the user model's space and their
    display labels (from the catalogue the history lives in)."""

    name = "history"

    def __init__(self, config: HistoryConfig | None, *, events: object | None,
                 vectors: VectorLookup, user_model: UserModel, cache: ProfileCache,
                 model: TrainedModel | None = None, same_catalogue: bool = True) -> None:
        self.config = config or HistoryConfig()
        self.events, self.lookup, self.user_model = events, vectors, user_model
        self.cache, self.model, self.same_catalogue = cache, model, same_catalogue

    def run(self, ctx: RecContext) -> None:
        if ctx.user_id is None and ctx.events is None:
            return
        cached = self._use_cache(ctx)
        events = self._events(ctx, cached)
        ctx.history = events
        seen = {e.item_id for e in events}
        if ctx.events is None and self.events is not None and self.config.limit and \
                len(events) >= self.config.limit:  # older events still count as seen
            seen |= self.events.items_of(ctx.user_id)  # type: ignore[attr-defined]
        if ctx.exclude_seen and self.same_catalogue:
            ctx.exclude.update(seen)
        ctx.profile_loader = lambda: self._profile(ctx, events, seen)
        if self.model is not None and events:
            state = self.cache.state(ctx.user_id) if cached else None  # type: ignore[arg-type]
            if state is None:
                state = self.model.state(events)
                if cached:
                    self.cache.put_state(ctx.user_id, state)  # type: ignore[arg-type]
            ctx.state = state

    def _use_cache(self, ctx: RecContext) -> bool:
        return self.config.use_cache and ctx.events is None and ctx.user_id is not None

    def _events(self, ctx: RecContext, cached: bool) -> list[Interaction]:
        if ctx.events is not None:
            events = sorted(ctx.events, key=lambda e: e.timestamp)  # stable
            return events[-self.config.limit:] if self.config.limit else events
        if self.events is None:
            return []
        if cached:
            hit = self.cache.events(ctx.user_id)  # type: ignore[arg-type]
            if hit is not None:
                return hit
        events = self.events.history(ctx.user_id, limit=self.config.limit)  # type: ignore
        if cached and events:
            self.cache.put_events(ctx.user_id, events)  # type: ignore[arg-type]
        return events

    def _profile(self, ctx: RecContext, events: list[Interaction], seen: set[str],
                 ) -> UserProfile:
        cached = self._use_cache(ctx)
        profile = self.cache.get(ctx.user_id) if cached else None  # type: ignore[arg-type]
        if profile is None:
            ids = list(dict.fromkeys(e.item_id for e in events))
            known = self.cache.vectors(ctx.user_id) if cached else {}  # type: ignore[arg-type]
            vectors = {i: known[i] for i in ids if i in known}
            labels = dict(self.cache.labels(ctx.user_id)) if cached else {}  # type: ignore
            missing = [i for i in ids if i not in known]
            if missing:
                found, names = self.lookup(missing)
                vectors.update(found)
                labels.update(names)
            profile = self.user_model.profile(events, vectors)
            profile.labels = labels
            profile.seen |= seen
            if cached and events:
                self.cache.put(ctx.user_id, profile, vectors)  # type: ignore[arg-type]
        ctx.labels.update(profile.labels)
        return profile
