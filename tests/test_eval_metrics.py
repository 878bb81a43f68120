"""Metrics against answers computed by hand (see the comments for the arithmetic)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mosaicrec.errors import InputError
from mosaicrec.evaluation.metrics import (
    accuracy_per_user,
    coverage,
    intra_list_diversity,
    novelty,
    popularity_bias,
    top_k,
)


def _relevant(n_items: int, *sets: set[int]) -> np.ndarray:
    out = np.zeros((len(sets), n_items), dtype=bool)
    for u, items in enumerate(sets):
        out[u, list(items)] = True
    return out


def test_accuracy_known_answers_at_3():
    # user 0: relevant {0, 2}; ranks 1..3 = 2, 1, 0 -> hits at ranks 1 and 3
    # user 1: relevant {4}; no hit in the top 3
    top = np.array([[2, 1, 0, 3, 4], [0, 1, 2, 3, 5]])
    rel = _relevant(6, {0, 2}, {4})
    m = accuracy_per_user(top, rel, ks=(3,))
    assert m["precision@3"] == pytest.approx([2 / 3, 0.0])
    assert m["recall@3"] == pytest.approx([1.0, 0.0])
    assert m["f1@3"] == pytest.approx([0.8, 0.0])  # 2 * (2/3) * 1 / (2/3 + 1)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)  # 1.5
    idcg = 1 / math.log2(2) + 1 / math.log2(3)  # min(K, #pos) = 2 ideal hits
    assert m["ndcg@3"] == pytest.approx([dcg / idcg, 0.0])
    assert m["ndcg@3"][0] == pytest.approx(0.919720, abs=1e-6)
    assert m["map@3"] == pytest.approx([(1 / 1 + 2 / 3) / 2, 0.0])  # AP / min(K, #pos)
    assert m["hit_rate@3"] == pytest.approx([1.0, 0.0])
    assert m["mrr@3"] == pytest.approx([1.0, 0.0])


def test_accuracy_known_answers_more_positives_than_k():
    # relevant {1, 3, 4}; top 2 = 0, 1 -> one hit at rank 2
    top = np.array([[0, 1, 3]])
    m = accuracy_per_user(top, _relevant(5, {1, 3, 4}), ks=(2,))
    assert m["precision@2"][0] == pytest.approx(0.5)
    assert m["recall@2"][0] == pytest.approx(1 / 3)
    assert m["f1@2"][0] == pytest.approx(0.4)  # 2 * 0.5 * (1/3) / (0.5 + 1/3)
    # DCG = 1/log2(3); IDCG over min(2, 3) = 2 positions = 1 + 1/log2(3)
    assert m["ndcg@2"][0] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert m["map@2"][0] == pytest.approx((1 / 2) / 2)
    assert m["mrr@2"][0] == pytest.approx(0.5)
    assert m["hit_rate@2"][0] == 1.0


def test_several_cutoffs_and_perfect_ranking():
    top = np.array([[0, 1, 2, 3]])
    m = accuracy_per_user(top, _relevant(4, {0, 1}), ks=(1, 4))
    assert m["ndcg@1"][0] == 1.0 and m["ndcg@4"][0] == pytest.approx(1.0)
    assert m["precision@1"][0] == 1.0 and m["precision@4"][0] == 0.5
    assert m["map@4"][0] == pytest.approx(1.0)


def test_user_without_positive_is_an_error():
    with pytest.raises(InputError):
        accuracy_per_user(np.array([[0, 1]]), np.zeros((1, 3), bool), ks=(2,))


def test_top_k_tie_break_and_exclusion():
    scores = np.array([[1.0, 1.0, 0.5, 1.0]])
    order = np.array([3, 0, 1, 2])  # among ties: item 3 first, then 0, then 1
    assert top_k(scores, 3, tie_order=order).tolist() == [[3, 0, 1]]
    exclude = np.array([[False, True, False, False]])
    assert top_k(scores, 3, exclude=exclude, tie_order=order).tolist() == [[3, 0, 2]]
    assert top_k(np.array([[np.nan, 0.0, 2.0]]), 2).tolist() == [[2, 1]]
    with pytest.raises(InputError):
        top_k(scores, 2, tie_order=np.array([0, 0, 1, 2]))


@pytest.mark.parametrize("block", [7, 64, 1 << 20])  # rows per block: 1, 5, all at once
def test_top_k_in_blocks_equals_sorting_each_row(monkeypatch, block):
    from mosaicrec.evaluation import metrics

    monkeypatch.setattr(metrics, "_BLOCK", block)
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 4, (23, 12)).astype(np.float32)  # many ties
    scores[3, 2] = np.nan
    exclude = rng.random(scores.shape) < 0.2
    order = rng.permutation(12)
    rank = np.argsort(order)  # an item's place in the tie order
    want = [sorted((j for j in range(12) if not exclude[u, j]),
                   key=lambda j, u=u: (-np.nan_to_num(scores[u, j], nan=-np.inf), rank[j]))[:5]
            for u in range(23)]
    # a row with fewer than k items left ends with excluded ones (score -inf), in tie order
    got = top_k(scores, 5, exclude=exclude, tie_order=order)
    assert [[j for j in row if not exclude[u, j]] for u, row in enumerate(got.tolist())] == want
    assert top_k(scores[:0], 5).shape == (0, 5)


def test_coverage_diversity_novelty_popularity_bias():
    assert coverage(np.array([[0, 1], [1, 2]]), 4) == pytest.approx(0.75)
    vecs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # list (0, 1): cosine 0 -> 1; list (0, 2): cosine 1/sqrt(2) -> 1 - 0.7071
    ild = intra_list_diversity(np.array([[0, 1], [0, 2]]), vecs)
    assert ild == pytest.approx((1.0 + (1 - 1 / math.sqrt(2))) / 2)
    counts = np.array([4, 2, 1, 1, 0])  # total 8; a zero count counts as 1
    # -log2 shares: 0.5 -> 1, 0.25 -> 2, 0.125 -> 3, 1/8 (count 0 -> 1) -> 3
    assert novelty(np.array([[0, 1], [3, 4]]), counts) == pytest.approx(2.25)
    # recommended mean count 3, catalogue mean 1.6
    assert popularity_bias(np.array([[0, 1]]), counts) == pytest.approx(3 / 1.6)
