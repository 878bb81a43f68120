"""Item vectors and payloads kept in memory between requests, each within a byte budget.

Reading a point out of the collection costs far more than what it is read for: Qdrant Edge
hands each vector to Python as a list of floats (a 1,408-d fused vector took 0.05 to 0.1 ms to
read and convert on the 2-core host), so scoring 500 candidates' content similarity took ~30 ms
a request; the payloads of a list and the labels of the history items behind its explanations
took two reads of ~0.2 ms each, and a request with them kept ran ~1 ms faster on the 100k
benchmark (a remote Qdrant server adds a round trip per read). Entries are kept per (space,
item), least recently used first out once the budget is spent. Writes through this process
clear the caches (``clear``, called on every catalogue change); ``ttl_s`` bounds how long an
item written by another process (a shared Qdrant server) can stay stale.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any, Generic, TypeVar

import numpy as np

__all__ = ["ItemCache", "PAYLOAD", "payload_cache", "vector_cache"]

V = TypeVar("V")
# the payload cache's one "space": a payload is read whole, whatever fields a caller wants
PAYLOAD = "payload"


class ItemCache(Generic[V]):
    """``weigh(value)``: its size in bytes; ``share(value)``: what a reader gets (None: the
    kept value itself; arrays are kept read-only)."""

    def __init__(self, max_bytes: int, ttl_s: float = 600.0, *, weigh: Callable[[V], int],
                 share: Callable[[V], V] | None = None) -> None:
        self.max_bytes, self.ttl_s = max_bytes, ttl_s
        self._weigh, self._share = weigh, share
        self._entries: OrderedDict[tuple[str, str], tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._born = time.monotonic()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get_many(self, space: str, ids: Sequence[str],
                 fetch: Callable[[Sequence[str]], dict[str, V]]) -> dict[str, V]:
        """The values of ``ids`` in ``space`` (ids without one are left out); the missing ones
        come from ``fetch(ids)`` and are kept."""
        if self.max_bytes <= 0:
            return fetch(ids)
        out = self.kept(space, ids)
        missing = [i for i in ids if i not in out]
        if missing:
            found = fetch(missing)
            self.put_many(space, found)
            share = self._share
            out.update(found if share is None else {i: share(v) for i, v in found.items()})
        return out

    def kept(self, space: str, ids: Sequence[str]) -> dict[str, V]:
        """The values of ``ids`` this cache holds (no read)."""
        out: dict[str, V] = {}
        with self._lock:
            if time.monotonic() - self._born > self.ttl_s:
                self._drop_all()
            entries = self._entries
            for i in ids:
                entry = entries.get((space, i))
                if entry is not None:
                    entries.move_to_end((space, i))
                    out[i] = entry[0]
            self.hits += len(out)
            self.misses += len(ids) - len(out)
        share = self._share
        return out if share is None else {i: share(v) for i, v in out.items()}

    def put_many(self, space: str, values: Mapping[str, V]) -> None:
        """Keep values read elsewhere (vectors that came with their payloads, in one read)."""
        if self.max_bytes <= 0:
            return
        with self._lock:
            for i, value in values.items():
                self._put((space, i), value)

    def _put(self, key: tuple[str, str], value: V) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        if isinstance(value, np.ndarray):
            value.flags.writeable = False  # shared by every request that reads it
        size = self._weigh(value)
        self._entries[key] = (value, size)
        self._bytes += size
        while self._bytes > self.max_bytes and self._entries:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped

    def _drop_all(self) -> None:
        self._entries.clear()
        self._bytes = 0
        self._born = time.monotonic()

    def clear(self) -> None:
        """The catalogue changed: every kept value may be stale."""
        with self._lock:
            self._drop_all()

    @property
    def nbytes(self) -> int:
        return self._bytes


def vector_cache(max_bytes: int, ttl_s: float = 600.0) -> ItemCache[np.ndarray]:
    """Vectors, shared read-only by every request that reads them."""
    return ItemCache(max_bytes, ttl_s, weigh=attrgetter("nbytes"))


def payload_cache(max_bytes: int, ttl_s: float = 600.0) -> ItemCache[dict[str, Any]]:
    """Payloads; each reader gets its own (shallow) copy."""
    return ItemCache(max_bytes, ttl_s, weigh=_payload_bytes, share=dict)


def _payload_bytes(value: Any) -> int:
    """Roughly what a payload holds in memory (the budget needs a size, not an exact one)."""
    if isinstance(value, dict):
        return 64 + sum(48 + len(k) + _payload_bytes(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 56 + sum(8 + _payload_bytes(v) for v in value)
    if isinstance(value, str | bytes):
        return 49 + len(value)
    return 32
