"""Where candidate sources search: the collection when serving, matrices in memory when tuning.

Candidate sources speak to a :class:`Retriever`, never to a store directly, so the code that
proposes candidates during tuning on validation (models fitted on part of the log, their vectors
held in memory) is the code that proposes them in serving (vectors in the collection, filtered
by Qdrant).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from mosaicrec.errors import ConfigError
from mosaicrec.indexing.stores.base import Condition, Filter, Hit, VectorStore

__all__ = ["NEW_ITEM_FIELD", "Retriever", "StoreRetriever", "MemoryRetriever"]

# Payload field the trained model sets on every item: "trained" or "mapped" (content map).
NEW_ITEM_FIELD = "behaviour"


class Retriever(Protocol):
    def search(self, space: str, query: np.ndarray, limit: int, *, filter: Filter | None,
               exclude: Sequence[str], new_only: bool = False) -> list[Hit]: ...

    def vectors(self, ids: Sequence[str], space: str) -> dict[str, np.ndarray]: ...

    def payloads(self, ids: Sequence[str]) -> dict[str, dict]: ...

    def has_space(self, space: str) -> bool: ...


class StoreRetriever:
    """Searches the collection (HNSW, payload filters, seen items excluded by Qdrant)."""

    def __init__(self, store: VectorStore, ef: int | None = None) -> None:
        self.store, self.ef = store, ef

    def has_space(self, space: str) -> bool:
        return space in self.store.schema.vectors

    def search(self, space: str, query: np.ndarray, limit: int, *, filter: Filter | None,
               exclude: Sequence[str], new_only: bool = False) -> list[Hit]:
        if new_only:
            mapped = Condition(field=NEW_ITEM_FIELD, match="mapped")
            filter = (filter or Filter()).model_copy(
                update={"must": [*(filter.must if filter else []), mapped]})
        ef = max(self.ef, limit) if self.ef else None
        return self.store.query(query, using=space, limit=limit, filter=filter,
                                exclude_ids=sorted(exclude), ef=ef)

    def vectors(self, ids: Sequence[str], space: str) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        return {r.id: r.vectors[space]
                for r in self.store.retrieve(ids, vectors=[space], payload=False)
                if space in r.vectors}

    def payloads(self, ids: Sequence[str]) -> dict[str, dict]:
        return {r.id: r.payload for r in self.store.retrieve(ids)} if ids else {}


class MemoryRetriever:
    """Exact search over in-memory matrices (tuning): no payloads, so no filters."""

    def __init__(self, spaces: Mapping[str, tuple[Sequence[str], np.ndarray, str]],
                 new_ids: Sequence[str] = ()) -> None:
        # space -> (ids, matrix, "cosine" | "dot"); cosine rows are normalised once here
        self._spaces: dict[str, tuple[list[str], np.ndarray, dict[str, int]]] = {}
        for name, (ids, matrix, distance) in spaces.items():
            m = np.asarray(matrix, np.float32)
            if distance == "cosine":
                m = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
            ids = list(ids)
            self._spaces[name] = (ids, m, {i: k for k, i in enumerate(ids)})
        self.new_ids = set(new_ids)

    def has_space(self, space: str) -> bool:
        return space in self._spaces

    def search(self, space: str, query: np.ndarray, limit: int, *, filter: Filter | None,
               exclude: Sequence[str], new_only: bool = False) -> list[Hit]:
        if filter is not None:
            raise ConfigError("in-memory retrieval (tuning) does not evaluate payload filters")
        ids, matrix, row = self._spaces[space]
        scores = matrix @ np.asarray(query, np.float32)
        banned = [row[i] for i in exclude if i in row]
        scores[banned] = -np.inf
        if new_only:
            keep = np.zeros(len(ids), bool)
            keep[[row[i] for i in self.new_ids if i in row]] = True
            scores[~keep] = -np.inf
        k = min(limit, int(np.isfinite(scores).sum()))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [Hit(ids[j], float(scores[j]), {}) for j in top]

    def vectors(self, ids: Sequence[str], space: str) -> dict[str, np.ndarray]:
        names, matrix, row = self._spaces[space]
        return {i: matrix[row[i]] for i in ids if i in row}

    def payloads(self, ids: Sequence[str]) -> dict[str, dict]:
        return {i: {} for i in ids}
