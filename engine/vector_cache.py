"""Item vectors kept in memory between requests, within a byte budget.

Reading a point's vector out of the collection costs far more than the dot product it is read
for: Qdrant Edge hands each vector to Python as a list of floats (a 1,408-d fused vector took
0.05 to 0.1 ms to read and convert on the 2-core host), so scoring 500 candidates' content
similarity took ~30 ms a request. Vectors are kept per (space, item), least recently used first
out once the budget is spent. Writes through this process clear the cache (``clear``, called on
every catalogue change); ``ttl_s`` bounds how long a vector written by another process (a
shared Qdrant server) can stay stale.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["VectorCache"]

Fetch = Callable[[Sequence[str]], "dict[str, np.ndarray]"]


class VectorCache:
    def __init__(self, max_bytes: int, ttl_s: float = 600.0) -> None:
        self.max_bytes, self.ttl_s = max_bytes, ttl_s
        self._entries: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._born = time.monotonic()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get_many(self, space: str, ids: Sequence[str], fetch: Fetch) -> dict[str, np.ndarray]:
        """The vectors of ``ids`` in ``space`` (ids without one are left out); the missing ones
        come from ``fetch(ids)`` and are kept."""
        if self.max_bytes <= 0:
            return fetch(ids)
        out = self.kept(space, ids)
        missing = [i for i in ids if i not in out]
        if missing:
            found = fetch(missing)
            out.update(found)
            self.put_many(space, found)
        return out

    def kept(self, space: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors of ``ids`` this cache holds (no read)."""
        out: dict[str, np.ndarray] = {}
        with self._lock:
            if time.monotonic() - self._born > self.ttl_s:
                self._drop_all()
            entries = self._entries
            for i in ids:
                vec = entries.get((space, i))
                if vec is not None:
                    entries.move_to_end((space, i))
                    out[i] = vec
            self.hits += len(out)
            self.misses += len(ids) - len(out)
        return out

    def put_many(self, space: str, vectors: dict[str, np.ndarray]) -> None:
        """Keep vectors read elsewhere (with their payloads, in one read)."""
        if self.max_bytes <= 0:
            return
        with self._lock:
            for i, vec in vectors.items():
                self._put((space, i), vec)

    def _put(self, key: tuple[str, str], vec: np.ndarray) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        vec.flags.writeable = False  # shared by every request that reads it
        self._entries[key] = vec
        self._bytes += vec.nbytes
        while self._bytes > self.max_bytes and self._entries:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.nbytes

    def _drop_all(self) -> None:
        self._entries.clear()
        self._bytes = 0
        self._born = time.monotonic()

    def clear(self) -> None:
        """The catalogue changed: every kept vector may be stale."""
        with self._lock:
            self._drop_all()

    @property
    def nbytes(self) -> int:
        return self._bytes
