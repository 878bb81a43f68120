"""Ranking metrics, per user then averaged, and beyond-accuracy measures of the top-K lists.

Conventions (the same as the reference protocol): binary gains; NDCG with a log2 discount and
the ideal DCG over ``min(K, #positives)``; MAP as AP@K divided by ``min(K, #positives)``; MRR
within the top K (0 when no hit). Users without positives must be left out by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mosaicrec.engine.models.ranking import ndcg
from mosaicrec.errors import InputError

__all__ = [
    "ACCURACY_METRICS",
    "top_k",
    "hits_matrix",
    "accuracy_per_user",
    "coverage",
    "intra_list_diversity",
    "novelty",
    "popularity_bias",
]

ACCURACY_METRICS = ("precision", "recall", "f1", "ndcg", "map", "hit_rate", "mrr")
_BLOCK = 1 << 20  # scores ranked per block by top_k


def top_k(
    scores: np.ndarray, k: int, *, exclude: np.ndarray | None = None,
    tie_order: np.ndarray | None = None,
) -> np.ndarray:
    """Column indices of the ``k`` best scores per row, best first.

    ``exclude`` (bool, same shape) removes items from the ranking; ``tie_order`` is a
    permutation of the columns: among equal scores, the column that comes first in it wins.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise InputError(f"scores must be (n_users, n_items), got shape {scores.shape}")
    n_users, n_items = scores.shape
    k = min(k, n_items)
    order = np.arange(n_items) if tie_order is None else np.asarray(tie_order)
    if sorted(order.tolist()) != list(range(n_items)):
        raise InputError("tie_order must be a permutation of the item columns")
    if exclude is not None:
        exclude = np.asarray(exclude, bool)
    # a few thousand users at a time: the temporaries stay small (one pass over 2,300 x 9,200
    # scores at once took 1.5 s, 6.5 s when its buffers were fresh pages; rows are independent)
    step = max(1, _BLOCK // max(n_items, 1))
    best = [_top_rows(scores[a:a + step], k, order,
                      None if exclude is None else exclude[a:a + step])
            for a in range(0, n_users, step)]
    return order[np.concatenate(best)] if best else np.zeros((0, k), np.int64)


def _top_rows(scores: np.ndarray, k: int, order: np.ndarray,
              exclude: np.ndarray | None) -> np.ndarray:
    """Positions in ``order`` of each row's ``k`` best scores, best first."""
    n_items = scores.shape[1]
    permuted = scores[:, order]  # a copy: fancy indexing
    if not np.issubdtype(permuted.dtype, np.floating):
        permuted = permuted.astype(np.float64)
    if exclude is not None:
        permuted[exclude[:, order]] = -np.inf
    permuted[np.isnan(permuted)] = -np.inf
    if k < n_items:
        # Keep exactly k columns per row: all strictly above the k-th best value, then the
        # earliest (in permutation order) of those tied with it. Cheaper than a full sort.
        kth = np.partition(permuted, n_items - k, axis=1)[:, n_items - k, None]
        better = permuted > kth
        tied = permuted == kth
        need = k - better.sum(axis=1, keepdims=True)
        crowded = np.flatnonzero(tied.sum(axis=1) > need[:, 0])  # more ties than places
        tied[crowded] &= np.cumsum(tied[crowded], axis=1) <= need[crowded]
        keep = better | tied
        cols = np.nonzero(keep)[1].reshape(len(permuted), k)  # ascending positions per row
    else:
        cols = np.broadcast_to(np.arange(n_items), permuted.shape)
    # A stable sort keeps equal scores in permutation order: the tie-break is the permutation.
    vals = np.take_along_axis(permuted, cols, axis=1)
    return np.take_along_axis(cols, np.argsort(-vals, axis=1, kind="stable"), axis=1)


def hits_matrix(top: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """``hits[u, r]`` is True when the item at rank ``r`` of user ``u`` is relevant."""
    relevant = np.asarray(relevant, dtype=bool)
    return np.take_along_axis(relevant, np.asarray(top), axis=1)


def accuracy_per_user(
    top: np.ndarray, relevant: np.ndarray, ks: Sequence[int] = (10, 20)
) -> dict[str, np.ndarray]:
    """Every accuracy metric at every cut-off, one value per user (``"ndcg@10"`` -> array).

    ``top`` holds at least ``max(ks)`` ranked item indices per user (or every item, when there
    are fewer); ``relevant`` is a bool matrix ``(n_users, n_items)``; each user must have at
    least one relevant item.
    """
    relevant = np.asarray(relevant, dtype=bool)
    n_pos = relevant.sum(axis=1)
    if (n_pos == 0).any():
        raise InputError("a user has no relevant item", item=int(np.flatnonzero(n_pos == 0)[0]))
    hits_all = hits_matrix(top, relevant).astype(np.float64)
    if top.shape[1] < max(ks):
        # Fewer candidates than K is fine only when every candidate is ranked (a small slice).
        if top.shape[1] < relevant.shape[1]:
            raise InputError(f"need {max(ks)} ranked items per user, got {top.shape[1]}")
        hits_all = np.pad(hits_all, ((0, 0), (0, max(ks) - top.shape[1])))
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hits = hits_all[:, :k]
        n_hit = hits.sum(axis=1)
        ideal_n = np.minimum(k, n_pos)
        precision_at = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
        first = np.where(n_hit > 0, hits.argmax(axis=1) + 1, 0)
        prec = n_hit / k
        rec = n_hit / n_pos
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)
        out[f"precision@{k}"] = prec
        out[f"recall@{k}"] = rec
        out[f"f1@{k}"] = f1
        out[f"ndcg@{k}"] = ndcg(hits, n_pos, k)
        out[f"map@{k}"] = (precision_at * hits).sum(axis=1) / ideal_n
        out[f"hit_rate@{k}"] = (n_hit > 0).astype(np.float64)
        out[f"mrr@{k}"] = np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0)
    return out


def coverage(top: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    return float(len(np.unique(np.asarray(top))) / n_items)


def intra_list_diversity(top: np.ndarray, item_vectors: np.ndarray) -> float:
    """Mean over lists of 1 - mean pairwise cosine of the listed items' vectors."""
    vecs = np.asarray(item_vectors, dtype=np.float64)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs = vecs / np.maximum(norms, 1e-12)
    k = top.shape[1]
    if k < 2:
        raise InputError("intra-list diversity needs lists of at least 2 items")
    listed = vecs[np.asarray(top)]  # (n_users, k, dim)
    sims = np.einsum("ukd,ujd->ukj", listed, listed)
    off_diag = (sims.sum(axis=(1, 2)) - np.trace(sims, axis1=1, axis2=2)) / (k * (k - 1))
    return float(np.mean(1.0 - off_diag))


def novelty(top: np.ndarray, train_counts: np.ndarray) -> float:
    """Mean self-information ``-log2(count / total)`` of recommended items (count at least 1)."""
    counts = np.maximum(np.asarray(train_counts, dtype=np.float64), 1.0)
    share = counts / np.asarray(train_counts, dtype=np.float64).sum()
    return float(np.mean(-np.log2(share[np.asarray(top)])))


def popularity_bias(top: np.ndarray, train_counts: np.ndarray) -> float:
    """Mean train count of recommended items divided by the catalogue's mean train count."""
    counts = np.asarray(train_counts, dtype=np.float64)
    return float(counts[np.asarray(top)].mean() / counts.mean())
