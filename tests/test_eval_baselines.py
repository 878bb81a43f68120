"""Baselines on tiny logs where the right answer is obvious, and the
reference MovieLens baseline figures (fast ones)."""

from __future__ import annotations

import numpy as np
import pytest

from mosaicrec.errors import ConfigError
from mosaicrec.evaluation import baselines as bl
from mosaicrec.evaluation.history import Catalogue, History

N_ITEMS = 10


def _history(pairs: list[tuple[int, int]], ratings: list[float] | None = None,
             n_users: int | None = None) -> History:
    users = np.array([u for u, _ in pairs])
    n_users = n_users or int(users.max()) + 1
    rating = np.array(ratings if ratings is not None else [5.0] * len(pairs))
    return History(
        catalogue=Catalogue(np.arange(n_users), np.arange(N_ITEMS)),
        user=users, item=np.array([i for _, i in pairs]), rating=rating,
        timestamp=np.arange(len(pairs), dtype=float), positive=rating >= 4,
    )


def _two_blocks() -> History:
    """Users 0-5 like items 0-4, users 6-11 like items 5-9 (each misses a different one);
    user 12 has only items 0 and 1."""
    pairs = []
    for u in range(12):
        start = 0 if u < 6 else 5
        missing = start + u % 6  # users 5 and 11 miss nothing (start + 5 is out of block)
        pairs += [(u, i) for i in range(start, start + 5) if i != missing]
    pairs += [(12, 0), (12, 1)]
    return _history(pairs)


def _rank(scores: np.ndarray, history: History, user: int) -> list[int]:
    s = np.where(history.seen[user], -np.inf, scores)
    return np.argsort(-s, kind="stable").tolist()


def test_popular_beats_random_on_popular_heldout():
    # item 0 is liked by users 0-7, item 1 by 0-3; user 8 has seen neither
    pairs = [(u, 0) for u in range(8)] + [(u, 1) for u in range(4)] + [(8, 5)]
    h = _history(pairs)
    pop = bl.MostPopular().fit(h).score(np.array([8]))[0]
    assert _rank(pop, h, 8)[:2] == [0, 1]
    rnd = bl.RandomScores(seed=3).fit(h)
    assert np.array_equal(rnd.score(np.array([8])), bl.RandomScores(seed=3).fit(h).score([8]))
    assert not np.array_equal(rnd.score([8]), bl.RandomScores(seed=4).fit(h).score([8]))
    with pytest.raises(ConfigError, match="before fit"):
        bl.MostPopular().score(np.array([0]))


@pytest.mark.parametrize("method", [
    bl.ItemKNN(bl.ItemKNNConfig(k=3)),
    bl.EASE(bl.EASEConfig(lam=1.0)),
    bl.ALS(bl.ALSConfig(factors=4, regularization=0.1, iterations=20)),
    bl.BPR(bl.BPRConfig(factors=8, learning_rate=0.05, iterations=200)),
], ids=lambda m: m.name)
def test_collaborative_methods_recommend_the_co_occurring_block(method):
    h = _two_blocks()
    scores = method.fit(h).score(np.arange(13))
    assert scores.shape == (13, N_ITEMS)
    # user 12 liked items 0 and 1: its best unseen items are the rest of block one
    assert set(_rank(scores[12], h, 12)[:3]) == {2, 3, 4}
    # user 0 misses item 0 of block one; user 6 misses item 5 of block two
    assert _rank(scores[0], h, 0)[0] == 0
    assert _rank(scores[6], h, 6)[0] == 5


def test_implicit_models_are_deterministic_with_a_seed():
    h = _two_blocks()
    for make in (lambda: bl.ALS(bl.ALSConfig(factors=4, seed=7)),
                 lambda: bl.BPR(bl.BPRConfig(factors=4, iterations=20, seed=7))):
        a, b = make().fit(h).score(np.arange(13)), make().fit(h).score(np.arange(13))
        assert np.array_equal(a, b)


def test_recency_weighted_ease_prefers_the_recent_taste():
    # user 12 first liked block two (items 5, 6), then block one (items 0, 1)
    h = _two_blocks()
    pairs = [(u, i) for u, i in zip(h.user.tolist(), h.item.tolist(), strict=True) if u != 12]
    h = _history(pairs + [(12, 5), (12, 6), (12, 0), (12, 1)])
    recent = bl.EASE(bl.EASEConfig(lam=1.0, half_life=0.5)).fit(h).score(np.array([12]))[0]
    assert _rank(recent, h, 12)[0] in {2, 3, 4}


def _content_vectors() -> np.ndarray:
    """Items 0-4 point along x, items 5-9 along y (with a small item-specific tilt)."""
    v = np.zeros((N_ITEMS, 3))
    v[:5, 0], v[5:, 1] = 1.0, 1.0
    v[:, 2] = np.linspace(0, 0.1, N_ITEMS)
    return v


def test_content_knn_recommends_similar_items():
    h = _history([(0, 0), (0, 5)], ratings=[5.0, 1.0], n_users=1)
    knn = bl.ContentKNN(_content_vectors()).fit(h).score(np.array([0]))[0]
    assert set(_rank(knn, h, 0)[:4]) == {1, 2, 3, 4}
    with pytest.raises(ConfigError, match="item vectors"):
        bl.ContentKNN(np.zeros((3, 2))).fit(h)


@pytest.mark.realdata
def test_baseline_figures_match_the_reference(movielens_dir):
    """Popularity, EASE and ALS on the reference protocol: within noise of the reference."""
    from mosaicrec.evaluation.evaluator import evaluate_method, make_stage
    from mosaicrec.evaluation.interactions import load_interactions
    from mosaicrec.evaluation.split import split_interactions

    split = split_interactions(load_interactions(movielens_dir / "u.data"))
    test = make_stage(split, Catalogue.from_frame(split.frame), "test")
    assert len(test.users) == 812
    pop = evaluate_method(bl.MostPopular(), test)
    # reference: NDCG@10 0.0613, Recall@10 0.0866, P@10 0.0272, HR@10 0.240, coverage 0.054,
    # novelty 7.8 (our tie-break permutation differs, so equality is not expected)
    assert pop.metrics["ndcg@10"] == pytest.approx(0.0613, abs=0.003)
    assert pop.metrics["recall@10"] == pytest.approx(0.0866, abs=0.004)
    assert pop.metrics["precision@10"] == pytest.approx(0.0272, abs=0.0015)
    assert pop.metrics["hit_rate@10"] == pytest.approx(0.240, abs=0.01)
    assert pop.beyond["coverage@10"] == pytest.approx(0.054, abs=0.005)
    assert pop.beyond["novelty@10"] == pytest.approx(7.8, abs=0.1)
    ease = evaluate_method(bl.EASE(bl.EASEConfig(lam=1000.0)), test)
    assert ease.metrics["ndcg@10"] == pytest.approx(0.1069, abs=0.003)
    als = evaluate_method(bl.ALS(bl.ALSConfig(factors=32, regularization=10.0, alpha=1.0)), test)
    assert als.metrics["ndcg@10"] == pytest.approx(0.1107, abs=0.005)
