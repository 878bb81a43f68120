"""What one recommendation request knows, filled in stage by stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mosaicrec.engine.user_model import Interaction, UserProfile
from mosaicrec.indexing.stores.base import Filter

if TYPE_CHECKING:
    from mosaicrec.engine.models.trained import BehaviourState

__all__ = ["Candidate", "RecContext", "SignalTable", "Stage"]


@dataclass(slots=True)  # hundreds per request: slots make each a third cheaper to build
class Candidate:
    id: str
    payload: dict[str, Any] | None
    interest: int  # index of the interest it is closest to (-1: none)
    similarity: float  # user-model score: cosine to that interest minus the negative push
    score: float = 0.0
    signals: dict[str, float] = field(default_factory=dict)
    reason: str = "history"  # what put it here: history, examples, prompt, popular, catalogue
    sims: dict[int, float] = field(default_factory=dict)  # user-model score per interest query
    sources: list[str] = field(default_factory=list)  # candidate sources that proposed it
    stored: bool = True  # False once a payload read finds the item gone from the collection
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # read with its search hit
    # the blend's new_item signal when a new-items search found it: the hit's score is its
    # published ALS vector times the user's ALS factor, so no vector has to be read
    new_item: float | None = None


@dataclass
class SignalTable:
    """The score stage's parts of every candidate's score, one row each: made into a dict only
    for the items that make the list (a request scores hundreds of candidates, shows ten)."""

    names: list[str]
    values: np.ndarray  # (candidates, names)
    rows: dict[str, int]  # candidate id -> row

    def of(self, item_id: str) -> dict[str, float] | None:
        row = self.rows.get(item_id)
        return None if row is None else dict(zip(self.names, self.values[row].tolist(),
                                                  strict=True))


@dataclass
class RecContext:
    """Everything one request knows; stages fill it in order.

    ``profile`` (the fusion user model's interests) is built on first use: a trained model
    that blends no content signal never pays for reading the history's content vectors."""

    user_id: str | None
    n: int
    filter: Filter | None = None
    exclude_seen: bool = True
    explain: bool = True  # explanations are built only for requests that show them
    diversity: float | None = None
    exclude: set[str] = field(default_factory=set)
    labels: dict[str, str] = field(default_factory=dict)  # display names of history items
    reason: str = "history"  # or "examples", "prompt", "popular", "catalogue"
    prompt: str | None = None
    examples: set[str] = field(default_factory=set)  # items the caller chose to steer by
    events: list[Interaction] | None = None  # a history given with the request (no store)
    history: list[Interaction] = field(default_factory=list)  # the events the list is built on
    state: BehaviourState | None = None  # the trained model's view of the user
    candidates: list[Candidate] = field(default_factory=list)
    scored: SignalTable | None = None  # the score stage's parts, read for the final list
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # candidate vectors, if fetched
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage
    profile_loader: Callable[[], UserProfile | None] | None = None
    _profile: UserProfile | None = None

    @property
    def profile(self) -> UserProfile | None:
        if self._profile is None and self.profile_loader is not None:
            loader, self.profile_loader = self.profile_loader, None
            self._profile = loader()
        return self._profile

    @profile.setter
    def profile(self, value: UserProfile | None) -> None:
        self.profile_loader, self._profile = None, value

    @property
    def steered(self) -> bool:
        return self.prompt is not None or bool(self.examples)


class Stage(Protocol):
    """A named step that reads and writes the request context. Stages get the resources they
    use when they are built, so any of them can be replaced by name."""

    name: str

    def run(self, ctx: RecContext) -> None: ...
