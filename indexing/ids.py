"""The ids of a catalogue, compactly: a 128-bit BLAKE2b digest per row (16 bytes) in one sorted
numpy array, instead of a Python set of strings (about 100 bytes an id). A million ids take
16 MB. Two different ids share a digest with a probability near 1e-27 for a million rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

__all__ = ["CatalogueIds"]

_DTYPE = np.dtype([("hi", ">u8"), ("lo", ">u8")])


def _digest(item_id: str) -> bytes:
    return hashlib.blake2b(item_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class _Duplicated:
    """``id in ids.duplicates``: the ids more than one row has."""

    def __init__(self, digests: set[bytes]) -> None:
        self.digests = digests

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and bool(self.digests) and _digest(item_id) in self.digests

    def __len__(self) -> int:
        return len(self.digests)


class CatalogueIds:
    """Add every row's id, :meth:`freeze`, then ask ``id in ids`` or ``id in ids.duplicates``."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._sorted = np.zeros(0, dtype=_DTYPE)
        self.duplicates = _Duplicated(set())
        self._distinct = 0

    def add(self, item_id: str) -> None:
        self._buf += _digest(item_id)

    def freeze(self) -> CatalogueIds:
        values = np.sort(np.frombuffer(bytes(self._buf), dtype=_DTYPE))
        self._buf = bytearray()
        repeated = values[1:][values[1:] == values[:-1]]
        self.duplicates = _Duplicated({v.tobytes() for v in np.unique(repeated)})
        self._sorted = values
        self._distinct = len(values) - len(repeated)
        return self

    def __len__(self) -> int:
        return self._distinct

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, str) or not len(self._sorted):
            return False
        key = np.frombuffer(_digest(item_id), dtype=_DTYPE)
        at = int(np.searchsorted(self._sorted, key)[0])
        return at < len(self._sorted) and self._sorted[at] == key[0]

    def missing(self, ids: Iterable[str]) -> list[str]:
        """Those of ``ids`` that are not catalogue ids (what ``prune`` deletes)."""
        ids = list(ids)
        if not ids:
            return []
        keys = np.frombuffer(b"".join(_digest(i) for i in ids), dtype=_DTYPE)
        at = np.minimum(np.searchsorted(self._sorted, keys), max(len(self._sorted) - 1, 0))
        found = (self._sorted[at] == keys) if len(self._sorted) else np.zeros(len(ids), bool)
        return [i for i, ok in zip(ids, found, strict=True) if not ok]
