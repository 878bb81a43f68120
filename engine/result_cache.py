"""Served lists kept between requests, dropped the moment they could be stale.

Gorse-style caching of finished lists: a repeated request (same user, same options) is answered
from memory. Freshness is kept by invalidation, not by waiting: any event of the user (append,
forget, an item of theirs deleted) drops that user's lists; any change to the catalogue or the
model bumps a generation that drops every list; ``ttl_s`` bounds how old popularity and
trending inside a list may get. Requests with a given history are never cached.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

__all__ = ["ResultCache"]


class ResultCache:
    def __init__(self, max_entries: int = 10_000, ttl_s: float = 60.0) -> None:
        self.max_entries, self.ttl_s = max_entries, ttl_s
        self._entries: OrderedDict[Hashable, tuple[float, int, Any]] = OrderedDict()
        self._by_user: dict[str, set[Hashable]] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def key(user_id: str, **options: Any) -> Hashable:
        return (user_id, json.dumps(options, sort_keys=True, default=str))

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[1] != self._generation or \
                    time.monotonic() - entry[0] > self.ttl_s:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[2]

    def put(self, key: Hashable, value: Any, generation: int) -> None:
        """Store ``value`` computed under ``generation`` (dropped if it changed meanwhile)."""
        if self.max_entries <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            self._entries[key] = (time.monotonic(), generation, value)
            self._entries.move_to_end(key)
            self._by_user.setdefault(key[0], set()).add(key)  # type: ignore[index]
            while len(self._entries) > self.max_entries:
                old, _ = self._entries.popitem(last=False)
                self._by_user.get(old[0], set()).discard(old)  # type: ignore[index]

    @property
    def generation(self) -> int:
        return self._generation

    def forget_user(self, user_id: str, kind: str | None = None) -> None:
        """Event-store listener: the user's events changed."""
        with self._lock:
            for key in self._by_user.pop(user_id, set()):
                self._entries.pop(key, None)
            if kind == "delete_item":  # an item left: other users' lists may hold it
                self._generation += 1

    def clear(self) -> None:
        """The catalogue or the model changed: every list is stale."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._by_user.clear()
