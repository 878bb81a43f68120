"""Known-answer tests for the fusion user model on clustered synthetic vectors."""

from __future__ import annotations

import numpy as np
import pytest

from mosaicrec.engine.profile_cache import ProfileCache
from mosaicrec.engine.synthetic import clustered_catalogue
from mosaicrec.engine.user_model import (
    FusionUserModel,
    Interaction,
    UserModelConfig,
)
from mosaicrec.errors import ConfigError, RequestError

DAY = 86400.0


@pytest.fixture(scope="module")
def cat():
    return clustered_catalogue(4, 20, 32, seed=1)


def _events(items, type_="like", start=0.0, step=DAY, user="u"):
    return [Interaction(user, i, type_, start + k * step) for k, i in enumerate(items)]


def _top_cluster(profile, cat, n=10):
    top = np.argsort(-profile.score(cat.vectors))[:n]
    return np.bincount(cat.labels[top], minlength=4)


def test_single_taste_profile_points_at_its_cluster(cat):
    p = FusionUserModel().profile(_events(cat.cluster(0)[:5]), cat.by_id())
    assert len(p.interests) == 1
    assert _top_cluster(p, cat)[0] == 10
    assert np.isclose(np.linalg.norm(p.interests[0].vector), 1.0, atol=1e-5)


def test_multi_interest_finds_both_clusters(cat):
    items = cat.cluster(0)[:5] + cat.cluster(2)[:5]
    p = FusionUserModel(UserModelConfig(max_interests=3)).profile(_events(items), cat.by_id())
    assert len(p.interests) == 2
    assert {frozenset(i.item_ids) for i in p.interests} == {
        frozenset(cat.cluster(0)[:5]), frozenset(cat.cluster(2)[:5])}
    # the max over interests ranks both clusters above the unrelated ones
    counts = _top_cluster(p, cat, n=40)
    assert counts[0] == 20 and counts[2] == 20
    # a single mean vector is not a unit vector near either cluster: this is why we split
    single = FusionUserModel(UserModelConfig(max_interests=1)).profile(_events(items), cat.by_id())
    assert len(single.interests) == 1


def test_small_interest_is_merged(cat):
    items = cat.cluster(0)[:9] + cat.cluster(2)[:1]
    p = FusionUserModel(UserModelConfig(min_interest_share=0.15)).profile(
        _events(items), cat.by_id())
    assert len(p.interests) == 1


def test_recency_half_life_moves_the_profile_when_interests_drift(cat):
    # old taste: cluster 0 (6 items), new taste: cluster 1 (4 items, the most recent)
    events = _events(cat.cluster(0)[:6]) + _events(cat.cluster(1)[:4], start=100 * DAY)
    flat = FusionUserModel(UserModelConfig(max_interests=1)).profile(events, cat.by_id())
    decayed = FusionUserModel(UserModelConfig(max_interests=1, half_life_days=7)).profile(
        events, cat.by_id())
    by_rank = FusionUserModel(UserModelConfig(max_interests=1, half_life_events=2)).profile(
        events, cat.by_id())
    assert _top_cluster(flat, cat)[0] == 10  # without decay the larger, older taste wins
    assert _top_cluster(decayed, cat)[1] == 10
    assert _top_cluster(by_rank, cat)[1] == 10


def test_half_life_days_relative_to_now(cat):
    model = FusionUserModel(UserModelConfig(half_life_days=10))
    e = [Interaction("u", cat.ids[0], "like", 0.0)]
    w_newest = model.event_weights(e)[0]
    w_later = model.event_weights(e, now=10 * DAY)[0]
    assert w_newest == pytest.approx(2.0) and w_later == pytest.approx(1.0)


def test_dislike_removes_a_cluster(cat):
    liked = cat.cluster(0)[:5] + cat.cluster(1)[:5]
    events = _events(liked)
    model = FusionUserModel(UserModelConfig(max_interests=3, negative_weight=1.0))
    before = model.profile(events, cat.by_id())
    assert _top_cluster(before, cat, 40)[1] == 20
    # now the user dislikes several cluster-1 items: more than cancels the likes there
    after = model.profile(events + _events(cat.cluster(1)[:5] * 2, "dislike", start=50 * DAY),
                          cat.by_id())
    assert all(i.item_ids[0].startswith("c0") for i in after.interests)
    assert after.negative is not None
    counts = _top_cluster(after, cat, 20)
    assert counts[0] == 20 and counts[1] == 0
    # cluster 1 now ranks below the unrelated clusters
    scores = after.score(cat.vectors)
    assert scores[cat.labels == 1].max() < scores[cat.labels == 3].min()


def test_ratings_below_center_push_away(cat):
    model = FusionUserModel(UserModelConfig(negative_weight=1.0))
    e = [Interaction("u", cat.cluster(0)[0], "rating", 0.0, value=5),
         Interaction("u", cat.cluster(1)[0], "rating", 1.0, value=1)]
    p = model.profile(e, cat.by_id())
    assert p.item_weights[cat.cluster(0)[0]] == pytest.approx(2.0)
    assert p.item_weights[cat.cluster(1)[0]] == pytest.approx(-2.0)
    assert p.negative is not None


def test_unknown_items_are_skipped_and_reported(cat):
    e = _events([cat.ids[0], "deleted-item", cat.ids[1]])
    p = FusionUserModel().profile(e, cat.by_id())
    assert p.skipped == ["deleted-item"]
    assert set(p.item_weights) == {cat.ids[0], cat.ids[1]}


def test_empty_history_gives_empty_profile(cat):
    p = FusionUserModel().profile([], cat.by_id())
    assert p.is_empty and p.negative is None
    assert np.all(p.score(cat.vectors) == 0)


def test_profile_is_deterministic_for_a_seed(cat):
    items = [cat.ids[i] for i in np.random.default_rng(3).permutation(80)[:30]]
    a = FusionUserModel(UserModelConfig(seed=7)).profile(_events(items), cat.by_id())
    b = FusionUserModel(UserModelConfig(seed=7)).profile(_events(items), cat.by_id())
    assert [i.item_ids for i in a.interests] == [i.item_ids for i in b.interests]


def test_weighted_blend(cat):
    items = cat.cluster(0)[:8] + cat.cluster(2)[:4]
    p = FusionUserModel(UserModelConfig(interest_blend="weighted")).profile(
        _events(items), cat.by_id())
    s = p.score(cat.vectors)
    assert s[cat.labels == 0].mean() > s[cat.labels == 2].mean() > s[cat.labels == 1].mean()


@pytest.mark.parametrize("bad", [
    dict(type="love"), dict(user_id=""), dict(timestamp=float("nan")), dict(type="rating"),
])
def test_invalid_interaction_raises_request_error(bad):
    kw = dict(user_id="u", item_id="i", type="like", timestamp=0.0) | bad
    with pytest.raises(RequestError):
        Interaction(**kw)


def test_config_rejects_unknown_type_and_extra_fields():
    with pytest.raises(ConfigError, match="unknown interaction types"):
        UserModelConfig(type_weights={"love": 1.0})
    with pytest.raises(ConfigError, match="half_lfe_days"):
        UserModelConfig(half_lfe_days=3)


def test_profile_cache():
    cache = ProfileCache(max_users=2)
    p = FusionUserModel().profile([], {})
    cache.put("a", p)
    cache.put("b", p)
    cache.put("c", p)
    assert "a" not in cache and len(cache) == 2
    cache.invalidate("b")
    assert cache.get("b") is None and cache.get("c") is p
    cache.put("c", p, {"x": np.ones(2)})
    cache.invalidate("c", "append")
    assert cache.get("c") is None and list(cache.vectors("c")) == ["x"]
    cache.invalidate("c", "forget")
    assert cache.vectors("c") == {}
