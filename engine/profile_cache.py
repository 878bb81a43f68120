"""What a user's recent requests built, kept for the next one: events, profile, behaviour
state and history item vectors, dropped by the event store on each change to the user."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

from mosaicrec.engine.user_model import Interaction, UserProfile

__all__ = ["ProfileCache"]


class ProfileCache:
    """Per user: the newest events, the profile and the behaviour state built from them, and
    the history item vectors the profile was built from.

    An append drops the user's events, profile and state but keeps the vectors, so the next
    profile reads only the new items from the store (incremental update); ``forget`` and
    deleted items drop everything. At most ``max_users`` users are kept (oldest first out).
    """

    def __init__(self, max_users: int = 1000) -> None:
        self.max_users = max_users
        self._profiles: dict[str, UserProfile] = {}
        self._vectors: dict[str, dict[str, np.ndarray]] = {}
        self._labels: dict[str, dict[str, str]] = {}
        self._events: dict[str, list[Interaction]] = {}
        self._states: dict[str, object] = {}
        self._lock = threading.Lock()

    def get(self, user_id: str) -> UserProfile | None:
        with self._lock:
            return self._profiles.get(user_id)

    def vectors(self, user_id: str) -> dict[str, np.ndarray]:
        """History item vectors already read for this user (possibly empty)."""
        with self._lock:
            return dict(self._vectors.get(user_id, {}))

    def labels(self, user_id: str) -> dict[str, str]:
        """Display names of the history items already read for this user."""
        with self._lock:
            return dict(self._labels.get(user_id, {}))

    def events(self, user_id: str) -> list[Interaction] | None:
        with self._lock:
            return self._events.get(user_id)

    def state(self, user_id: str) -> object | None:
        with self._lock:
            return self._states.get(user_id)

    def _make_room(self, user_id: str) -> None:
        known = self._vectors.keys() | self._events.keys()
        if len(known) >= self.max_users and user_id not in known:
            oldest = next(iter(self._events or self._vectors))  # insertion order
            for table in (self._profiles, self._vectors, self._labels, self._events,
                          self._states):
                table.pop(oldest, None)  # type: ignore[attr-defined]

    def put(self, user_id: str, profile: UserProfile,
            vectors: Mapping[str, np.ndarray] | None = None) -> None:
        """Keep ``profile`` (its ``labels`` travel with it) and the item ``vectors``."""
        with self._lock:
            self._make_room(user_id)
            self._profiles[user_id] = profile
            self._vectors[user_id] = dict(vectors or {})
            self._labels[user_id] = dict(profile.labels)

    def put_events(self, user_id: str, events: list[Interaction]) -> None:
        with self._lock:
            self._make_room(user_id)
            self._events[user_id] = events

    def put_state(self, user_id: str, state: object) -> None:
        with self._lock:
            self._states[user_id] = state

    def invalidate(self, user_id: str, kind: str | None = None) -> None:
        """Drop what the user's events produced; on anything but an append, drop the stored
        vectors too."""
        with self._lock:
            self._profiles.pop(user_id, None)
            self._events.pop(user_id, None)
            self._states.pop(user_id, None)
            if kind != "append":
                self._vectors.pop(user_id, None)
                self._labels.pop(user_id, None)

    def clear(self) -> None:
        with self._lock:
            for table in (self._profiles, self._vectors, self._labels, self._events,
                          self._states):
                table.clear()  # type: ignore[attr-defined]

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._profiles or user_id in self._vectors or user_id in self._events

    def __len__(self) -> int:
        return len(self._vectors.keys() | self._events.keys())
