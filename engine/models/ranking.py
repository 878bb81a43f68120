"""NDCG with binary gains, shared by tuning in the engine and the offline evaluation, so that a
setting is chosen with the same metric it is reported with."""

from __future__ import annotations

import numpy as np

__all__ = ["ndcg"]


def ndcg(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Per-row NDCG@k: ``hits[u, r]`` says the item at rank ``r`` is relevant (at least ``k``
    columns, or fewer when every candidate was ranked); the ideal DCG is over
    ``min(k, n_relevant[u])`` hits, log2 discount. Rows with no relevant item score 0."""
    hits = np.asarray(hits, np.float64)[:, :k]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discount[: hits.shape[1]]
    ideal_n = np.minimum(k, np.asarray(n_relevant))
    idcg = np.where(ideal_n > 0, np.cumsum(discount)[np.maximum(ideal_n, 1) - 1], 1.0)
    return np.where(ideal_n > 0, dcg / idcg, 0.0)
