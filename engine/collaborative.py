"""Collaborative signals for the score stage: a small protocol and an item-item co-occurrence
scorer built from the event store. A learned model (ALS, EASE, a sequence model) plugs in by
implementing :class:`CollaborativeScorer`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mosaicrec.errors import MissingDependencyError

__all__ = ["CollaborativeScorer", "CooccurrenceScorer"]


@runtime_checkable
class CollaborativeScorer(Protocol):
    """Scores candidates for a history given as ``{item_id: weight}`` (net, recency-weighted).
    Unknown candidates score 0; higher is better; any scale (the pipeline z-normalises)."""

    def score(self, history: Mapping[str, float], candidates: Sequence[str]) -> np.ndarray: ...


class CooccurrenceScorer:
    """Item-item cosine over co-occurrence in user histories:
    ``score(c) = sum_h w_h * |U_h & U_c| / sqrt(|U_h| |U_c|)`` over positive history items."""

    def __init__(self, user_items: Mapping[str, Sequence[str]]) -> None:
        try:
            from scipy import sparse
        except ImportError as err:  # scipy comes with the 'eval' extra
            raise MissingDependencyError(
                "CooccurrenceScorer needs scipy: pip install 'mosaicrec[eval]'") from err
        items = sorted({i for its in user_items.values() for i in its})
        self.index = {item: k for k, item in enumerate(items)}
        rows, cols = [], []
        for u, its in enumerate(user_items.values()):
            for i in set(its):
                rows.append(u)
                cols.append(self.index[i])
        x = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                              shape=(len(user_items), len(items)))
        co = (x.T @ x).tocsr()
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
        inv = sparse.diags(1.0 / np.maximum(norms, 1e-12))
        sim = (inv @ co @ inv).tocsr()
        sim.setdiag(0)  # an item does not recommend itself
        sim.eliminate_zeros()
        self._sim: Any = sim

    @classmethod
    def from_events(cls, events: Any) -> CooccurrenceScorer:
        """Built from an :class:`~mosaicrec.engine.events.EventStore` (positive events)."""
        return cls(events.user_items(positive_only=True))

    def score(self, history: Mapping[str, float], candidates: Sequence[str]) -> np.ndarray:
        pos = [(self.index[i], w) for i, w in history.items() if w > 0 and i in self.index]
        out = np.zeros(len(candidates), dtype=np.float32)
        if not pos:
            return out
        idx = np.array([k for k, _ in pos])
        w = np.array([w for _, w in pos], dtype=np.float32)
        total = np.asarray(self._sim[idx].T @ w).ravel()
        for j, c in enumerate(candidates):
            k = self.index.get(c)
            if k is not None:
                out[j] = total[k]
        return out
