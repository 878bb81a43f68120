"""Known-answer tests for the recommendation pipeline on clustered synthetic catalogues."""

from __future__ import annotations

import numpy as np
import pytest

from mosaicrec.encoders.fusion import Fuser
from mosaicrec.engine import (
    Interaction,
    Recommender,
    RecommenderConfig,
    SQLiteEventStore,
    UserModelConfig,
    cross_catalogue_recommend,
)
from mosaicrec.engine.stages import HistoryConfig, RankConfig, RerankConfig, ScoreConfig
from mosaicrec.engine.synthetic import clustered_catalogue
from mosaicrec.errors import ConfigError, RequestError, UnknownItemError
from mosaicrec.indexing.stores import (
    CollectionSchema,
    Condition,
    Filter,
    Point,
    StoreConfig,
    VectorSpace,
    open_store,
)

DIM = 16
GENRES = ["drama", "comedy", "horror", "scifi"]
DAY = 86400.0


def _store(cat, space="fused", collection="items"):
    schema = CollectionSchema(vectors={space: VectorSpace(dim=cat.vectors.shape[1], encoder="syn")},
                              payload_indexes={"genre": "keyword", "year": "integer"})
    store = open_store(StoreConfig(backend="qdrant", path=":memory:", collection=collection),
                       schema)
    store.upsert([Point(i, {space: v}, {"genre": GENRES[lab % 4], "year": 1990 + k % 20,
                                        "title": f"Title {i}"})
                  for k, (i, v, lab) in enumerate(zip(cat.ids, cat.vectors, cat.labels,
                                                      strict=True))])
    return store


@pytest.fixture(scope="module")
def cat():
    return clustered_catalogue(4, 25, DIM, spread=0.3, seed=3)


@pytest.fixture(scope="module")
def store(cat):
    s = _store(cat)
    yield s
    s.close()


@pytest.fixture()
def events():
    with SQLiteEventStore(":memory:") as e:
        yield e


def likes(user, items, start=0.0, type_="like"):
    return [Interaction(user, i, type_, start + k * DAY) for k, i in enumerate(items)]


def clusters_of(recs):
    return [int(i.split("-")[0][1:]) for i in recs.ids]


def _rec(store, events, **cfg):
    return Recommender(store, events, config=RecommenderConfig(**cfg))


def test_recommends_the_liked_cluster_and_excludes_seen(store, events, cat):
    seen = cat.cluster(0)[:5]
    events.append(likes("u", seen))
    recs = _rec(store, events).recommend("u", n=10)
    assert recs.reason == "history" and len(recs.items) == 10
    assert clusters_of(recs) == [0] * 10
    assert not set(recs.ids) & set(seen)
    assert list(recs.scores) == sorted(recs.scores, reverse=True)
    with_seen = _rec(store, events).recommend("u", n=10, exclude_seen=False)
    assert set(seen) & set(with_seen.ids)
    # the profile reads the newest 2 events only; every older item is still excluded
    short = _rec(store, events, history=HistoryConfig(limit=2)).recommend("u", n=20)
    assert not set(short.ids) & set(seen)


def test_recency_decay_moves_the_result_when_interests_drift(store, events, cat):
    events.append(likes("u", cat.cluster(0)[:6]) + likes("u", cat.cluster(1)[:4], 100 * DAY))
    um = dict(max_interests=1)
    flat = _rec(store, events, user_model=UserModelConfig(**um)).recommend("u", n=10)
    decayed = _rec(store, events, user_model=UserModelConfig(**um, half_life_events=2)
                   ).recommend("u", n=10)
    assert clusters_of(flat).count(0) == 10
    assert clusters_of(decayed).count(1) == 10


def test_a_dislike_removes_a_cluster(store, events, cat):
    events.append(likes("u", cat.cluster(0)[:5] + cat.cluster(1)[:5]))
    rec = _rec(store, events)
    assert set(clusters_of(rec.recommend("u", n=10))) == {0, 1}
    events.append(likes("u", cat.cluster(1)[:5] * 2, 50 * DAY, "dislike"))
    after = rec.recommend("u", n=20)  # the append invalidated the cached profile
    assert 1 not in clusters_of(after)
    assert clusters_of(after)[:10] == [0] * 10


def test_multi_interest_returns_items_from_both_clusters(store, events, cat):
    events.append(likes("u", cat.cluster(0)[:8] + cat.cluster(2)[:4]))
    recs = _rec(store, events).recommend("u", n=9)
    counts = np.bincount(clusters_of(recs), minlength=4)
    # interleaved by interest weight (2/3, 1/3): 6 and 3
    assert counts[0] == 6 and counts[2] == 3
    # one global sort by score lets whichever taste scores higher take more of the list
    one = _rec(store, events, user_model=UserModelConfig(max_interests=1)).recommend("u", n=9)
    assert len(set(clusters_of(one))) <= 2


def test_mmr_raises_diversity_at_a_bounded_similarity_cost(events):
    # one wide cluster made of tight sub-groups: the plain top-10 is one near-duplicate group
    sub = clustered_catalogue(5, 12, DIM, spread=0.05, seed=11)
    center = sub.centers.mean(axis=0)
    vecs = 0.6 * center / np.linalg.norm(center) + 0.4 * sub.vectors
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    sub.vectors = vecs.astype(np.float32)
    store = _store(sub, collection="mmr")
    events.append(likes("u", [sub.cluster(0)[0], sub.cluster(0)[1], sub.cluster(1)[0]]))

    def ild(recs):
        v = np.stack([sub.vectors[sub.ids.index(i)] for i in recs.ids])
        s = v @ v.T
        return 1 - (s.sum() - len(v)) / (len(v) * (len(v) - 1))

    rec = _rec(store, events, score=ScoreConfig(popularity_weight=0))
    plain, diverse = rec.recommend("u", n=10), rec.recommend("u", n=10, diversity=0.6)
    gain = ild(diverse) - ild(plain)
    cost = plain.items[0].signals["similarity"] - np.mean(
        [r.signals["similarity"] for r in diverse.items])
    plain_mean = np.mean([r.signals["similarity"] for r in plain.items])
    assert gain > 0.05, (ild(plain), ild(diverse))
    assert np.mean([r.signals["similarity"] for r in diverse.items]) >= plain_mean - 0.15
    assert cost < 0.3
    assert len(set(np.array(sub.labels)[[sub.ids.index(i) for i in diverse.ids]])) > len(
        set(np.array(sub.labels)[[sub.ids.index(i) for i in plain.ids]]))


def test_filters_hold_and_missing_fields_are_well_defined(store, events, cat):
    events.append(likes("u", cat.cluster(0)[:5]))
    rec = _rec(store, events)
    comedy = rec.recommend("u", n=10, filters=Filter(must=[Condition(field="genre",
                                                                     match="comedy")]))
    assert comedy.ids and all(r.payload["genre"] == "comedy" for r in comedy.items)
    years = rec.recommend("u", n=10, filters={"must": [{"field": "year", "gte": 2000}]})
    assert all(r.payload["year"] >= 2000 for r in years.items)
    missing = Condition(field="no_such_field", match="x")
    assert rec.recommend("u", n=5, filters=Filter(must=[missing])).items == []
    assert len(rec.recommend("u", n=5, filters=Filter(must_not=[missing])).items) == 5
    with pytest.raises(RequestError):
        rec.recommend("u", n=5, filters={"must": [{"feld": "genre"}]})


def test_explanations_name_the_contributing_items(store, events, cat):
    events.append(likes("u", cat.cluster(0)[:3] + cat.cluster(2)[:3]))
    recs = _rec(store, events).recommend("u", n=6)
    for r in recs.items:
        e = r.explanation
        assert e is not None and e.reason == "history"
        cluster = r.id.split("-")[0]
        assert e.contributions and e.contributions[0].item_id.startswith(cluster)
        assert e.contributions[0].label in e.sentence and e.sentence.startswith("Because you")
        assert 0 < sum(c.share for c in e.contributions) <= 1 + 1e-6


def test_a_request_without_explanations_gets_the_same_list_and_builds_none(store, events, cat):
    events.append(likes("u", cat.cluster(0)[:3] + cat.cluster(2)[:3]))
    rec = _rec(store, events)
    bare = rec.recommend("u", n=6, explain=False)
    assert all(r.explanation is None for r in bare.items)
    # a cached list without explanations never answers a request that asks for them
    full = rec.recommend("u", n=6)
    assert full.ids == bare.ids and full.timings_ms != {"cached": 0.0}
    assert all(r.explanation is not None for r in full.items)
    assert rec.cached("u", 6, explain=False) is not None and rec.cached("u", 6) is not None
    quiet = _rec(store, events, explain=False)
    assert all(r.explanation is None for r in quiet.recommend("u", n=6).items)
    assert quiet.recommend("u", n=6, explain=True).items[0].explanation is not None


def test_explanations_give_modality_shares(events):
    rng = np.random.default_rng(0)
    fuser = Fuser({"text": 64, "image": 64})
    t, i = rng.normal(size=(6, 64)), rng.normal(size=(6, 64))
    # item 1 shares item 0's image (and not its text): its similarity comes from the image
    i[1] = i[0] + 0.05 * rng.normal(size=64)
    fused = fuser.fuse_batch({"text": t, "image": i})
    schema = CollectionSchema(vectors={"fused": VectorSpace(dim=128, encoder="f")})
    store = open_store(StoreConfig(backend="qdrant", path=":memory:"), schema)
    store.upsert([Point(f"m{k}", {"fused": v}, {"title": f"Movie {k}"})
                  for k, v in enumerate(fused)])
    events.append(likes("u", ["m0"]))
    recs = Recommender(store, events, fuser).recommend("u", n=1)
    e = recs.items[0].explanation
    assert recs.ids == ["m1"]
    assert e.contributions[0].item_id == "m0"
    assert e.modalities["image"] > 0.8 > e.modalities["text"]
    assert "Movie 0 (image" in e.sentence


def test_forget_erases_events_and_cached_profile(store, events, cat):
    events.append(likes("u", cat.cluster(0)[:5]))
    rec = _rec(store, events)
    assert rec.recommend("u", n=5).reason == "history"
    assert "u" in rec.cache
    events.forget("u")
    assert "u" not in rec.cache and events.history("u") == []
    assert rec.recommend("u", n=5).reason == "catalogue"  # nothing left: a cold start


def test_cold_start_popular_and_diverse(store, events, cat):
    # other users like items across clusters; item c3-0 is the most popular
    events.append(likes("a", [cat.cluster(3)[0], cat.cluster(3)[1], cat.cluster(1)[0]]))
    events.append(likes("b", [cat.cluster(3)[0], cat.cluster(1)[0], cat.cluster(2)[0]]))
    events.append(likes("c", [cat.cluster(3)[0]]))
    recs = _rec(store, events).recommend("newcomer", n=3)
    assert recs.reason == "popular"
    assert recs.ids[0] == cat.cluster(3)[0]
    # diverse: the three picks come from three clusters, not the two popular c3 items
    assert len(set(clusters_of(recs))) == 3
    assert recs.items[0].explanation.sentence == "Popular with other users."
    # more than the popular items asked for: filled from the catalogue, no duplicates
    many = _rec(store, events).recommend("newcomer", n=20)
    assert len(many.ids) == 20 == len(set(many.ids))


def test_cold_start_with_no_events_at_all_is_a_diverse_catalogue_pick(store, events):
    recs = _rec(store, events).recommend("nobody", n=8)
    assert recs.reason == "catalogue" and len(recs.ids) == 8
    assert len(set(clusters_of(recs))) >= 3


def test_cold_start_steered_by_prompt_or_examples(store, events, cat):
    rec = Recommender(store, events, prompt_encoder=lambda text: cat.centers[2])
    recs = rec.recommend("nobody", n=5, prompt="something like cluster two")
    assert recs.reason == "prompt" and clusters_of(recs) == [2] * 5
    assert "cluster two" in recs.items[0].explanation.sentence
    ex = rec.recommend(None, n=5, examples=cat.cluster(1)[:2])
    assert ex.reason == "examples" and clusters_of(ex) == [1] * 5
    assert not set(ex.ids) & set(cat.cluster(1)[:2])
    assert ex.items[0].explanation.sentence.startswith("Because you chose Title c1-")
    with pytest.raises(UnknownItemError, match="nope"):
        rec.recommend(None, n=5, examples=["nope"])
    with pytest.raises(ConfigError):
        Recommender(store, events).recommend(None, n=5, prompt="x")


def test_new_item_without_interactions_is_recommendable(cat, events):
    store = _store(cat, collection="new")
    events.append(likes("u", cat.cluster(0)[:5]))
    for user in "abcdefgh":  # a few items are popular, the new one has no events at all
        events.append(likes(user, cat.cluster(0)[5:9]))
    new = cat.centers[0]
    store.upsert([Point("brand-new", {"fused": new}, {"genre": "drama"})])
    recs = _rec(store, events).recommend("u", n=10)
    assert "brand-new" in recs.ids
    # among the items nobody used, the nearest by content comes first
    unused = [i for i in recs.ids if i not in cat.cluster(0)[5:9]]
    assert unused[0] == "brand-new"
    assert np.isfinite(recs.items[recs.ids.index("brand-new")].signals["popularity"])


def test_bad_input(store, events, cat):
    rec = _rec(store, events)
    for n in (0, -1, 1001, 2.5, True):
        with pytest.raises(RequestError):
            rec.recommend("u", n=n)
    with pytest.raises(RequestError):
        rec.recommend("u", n=5, diversity=1.5)
    with pytest.raises(RequestError):
        rec.recommend("", n=5)
    with pytest.raises(ConfigError, match="unknown stage"):
        Recommender(store, events, stages={"ranking": None})
    with pytest.raises(ConfigError, match="space"):
        Recommender(store, events, config=RecommenderConfig(space="image"))
    assert rec.recommend("stranger", n=5).reason == "catalogue"


def test_event_for_a_deleted_item_is_skipped(cat, events):
    store = _store(cat, collection="deleted")
    liked = cat.cluster(0)[:4]
    events.append(likes("u", liked + ["never-existed"]))
    store.delete([liked[0]])
    recs = _rec(store, events).recommend("u", n=5)
    assert set(recs.skipped_history) == {liked[0], "never-existed"}
    assert clusters_of(recs) == [0] * 5
    assert store.count() == len(cat.ids) - 1  # nothing else touched


def test_business_rules_boost_and_cap(store, events, cat):
    events.append(likes("u", cat.cluster(0)[:3] + cat.cluster(1)[:3]))
    boosted = _rec(store, events, score=ScoreConfig(boosts=[
        {"field": "genre", "match": "comedy", "weight": 5.0}]), rank=RankConfig(merge="score"))
    assert clusters_of(boosted.recommend("u", n=5)) == [1] * 5
    capped = _rec(store, events, rerank=RerankConfig(max_per_value={"genre": 2}))
    genres = [r.payload["genre"] for r in capped.recommend("u", n=10).items]
    assert max(genres.count(g) for g in set(genres)) == 2 and len(set(genres)) >= 3


def test_a_stage_can_be_replaced_by_name(store, events, cat):
    class Reverse:
        name = "rank"

        def run(self, ctx):
            ctx.candidates = sorted(ctx.candidates, key=lambda c: c.score)

    events.append(likes("u", cat.cluster(0)[:5]))
    recs = Recommender(store, events, stages={"rank": Reverse()}).recommend("u", n=5)
    assert list(recs.scores) == sorted(recs.scores)
    assert set(recs.timings_ms) >= {"history", "candidates", "score", "rank", "rerank"}


def test_cross_catalogue_through_a_shared_space(cat):
    movies = _store(cat, space="image", collection="movies")
    photos_cat = clustered_catalogue(4, 25, DIM, spread=0.3, seed=3, prefix="p")
    photos = _store(photos_cat, space="image", collection="photos")
    recs = cross_catalogue_recommend(movies, photos, cat.cluster(2)[:4], space="image", n=5)
    assert all(i.startswith("pc2-") for i in recs.ids)
    assert recs.items[0].explanation.contributions[0].item_id.startswith("c2-")
    with pytest.raises(ConfigError):
        cross_catalogue_recommend(movies, photos, cat.cluster(2)[:4], space="text")


def test_item_vectors_and_payloads_are_read_once_until_the_catalogue_changes(cat, events,
                                                                             monkeypatch):
    store = _store(cat, collection="vector-cache")
    events.append(likes("u", cat.cluster(0)[:3]))
    rec = _rec(store, events, result_cache_size=0)
    first = rec.recommend("u", n=5, diversity=0.3)  # MMR and explanations read vectors
    read = []
    retrieve = store.retrieve

    def spy(ids, **kw):
        read.append((list(ids), kw))
        return retrieve(ids, **kw)

    monkeypatch.setattr(store, "retrieve", spy)
    again = rec.recommend("u", n=5, diversity=0.3)
    assert again.ids == first.ids and read == []
    assert [r.payload for r in again.items] == [r.payload for r in first.items]
    assert rec.vector_cache.hits > 0 and rec.vector_cache.nbytes > 0
    assert rec.payload_cache.hits > 0 and rec.payload_cache.nbytes > 0
    again.items[0].payload["title"] = "changed by a caller"  # a copy: the cache keeps its own
    assert rec.recommend("u", n=5, diversity=0.3).items[0].payload == first.items[0].payload
    # an item moved into another cluster: the next list reads the new vector
    moved = first.ids[0]
    store.upsert([Point(moved, {"fused": cat.vectors[cat.ids.index(cat.cluster(3)[0])]},
                        {"genre": "drama", "title": f"Title {moved}"})])
    rec.catalogue_changed()
    assert rec.vector_cache.nbytes == 0 and rec.payload_cache.nbytes == 0
    after = rec.recommend("u", n=5, diversity=0.3)
    assert any(kw.get("vectors") for _, kw in read) and moved not in after.ids
    # and a retitled item shows its new title
    kept = after.ids[0]
    store.set_payload([kept], {"title": "Retitled"})
    rec.catalogue_changed()
    assert rec.recommend("u", n=5, diversity=0.3).items[0].payload["title"] == "Retitled"


def test_vector_cache_keeps_the_most_recently_used_within_its_budget():
    from mosaicrec.engine.item_cache import vector_cache

    fetched = []

    def fetch(ids):
        fetched.extend(ids)
        return {i: np.full(4, float(len(i)), np.float32) for i in ids if i != "gone"}

    cache = vector_cache(max_bytes=3 * 16)  # three 4-float vectors
    assert set(cache.get_many("s", ["a", "bb", "gone"], fetch)) == {"a", "bb"}
    cache.get_many("s", ["a", "ccc", "dddd"], fetch)  # "bb" is the least recently used
    fetched.clear()
    got = cache.get_many("s", ["a", "ccc", "dddd", "bb"], fetch)
    assert fetched == ["bb"] and got["dddd"][0] == 4.0 and cache.nbytes <= 48
    with pytest.raises(ValueError):  # shared between requests: read-only
        got["a"][0] = 1.0
    assert cache.get_many("other", ["a"], fetch) and fetched[-1] == "a"  # per space
    off = vector_cache(max_bytes=0)
    off.get_many("s", ["a"], fetch)
    assert off.nbytes == 0


def test_profile_follows_each_new_event_reading_only_new_items(cat, events, monkeypatch):
    store = _store(cat, collection="incremental")
    events.append(likes("u", cat.cluster(0)[:3]))
    rec = _rec(store, events)
    rec.recommend("u", n=3)
    asked = []
    retrieve = store.retrieve

    def spy(ids, **kw):
        asked.append(list(ids))
        return retrieve(ids, **kw)

    monkeypatch.setattr(store, "retrieve", spy)
    new = cat.cluster(1)[0]
    events.append(Interaction("u", new, "like", 10 * DAY))
    profile = rec.profile("u")
    assert asked == [[new]]  # only the new item was read; the rest came from the cache
    assert new in profile.item_weights and profile.labels[new] == f"Title {new}"
    assert profile.labels[cat.cluster(0)[0]] == f"Title {cat.cluster(0)[0]}"


def test_delete_item_removes_it_everywhere(cat, events):
    store = _store(cat, collection="delete")
    events.append(likes("u", cat.cluster(0)[:4]))
    rec = _rec(store, events)
    rec.recommend("u", n=3)
    gone = cat.cluster(0)[0]
    rec.delete_item(gone)
    assert store.retrieve([gone]) == [] and gone not in {e.item_id for e in events.history("u")}
    assert gone not in rec.profile("u").item_weights


def test_candidate_scores_equal_the_user_model_scores(events):
    """Store hit scores (negative folded into the query) and per-modality extra-space
    candidates both carry exactly ``profile.score`` for a one-interest profile."""
    rng = np.random.default_rng(5)
    fuser = Fuser({"text": 8, "image": 8})
    t, i = rng.normal(size=(40, 8)), rng.normal(size=(40, 8))
    fused = fuser.fuse_batch({"text": t, "image": i})
    schema = CollectionSchema(vectors={"fused": VectorSpace(dim=16, encoder="f"),
                                       "image": VectorSpace(dim=8, encoder="i")})
    store = open_store(StoreConfig(backend="qdrant", path=":memory:"), schema)
    store.upsert([Point(f"m{k}", {"fused": fused[k], "image": i[k]}) for k in range(40)])
    events.append(likes("u", ["m0", "m1", "m2"]) + likes("u", ["m3"], 9 * DAY, "dislike"))
    seen = {}

    class Keep:
        name = "rerank"

        def run(self, ctx):
            seen.update({c.id: c.similarity for c in ctx.candidates})
            ctx.candidates = ctx.candidates[: ctx.n]

    cfg = RecommenderConfig(user_model=UserModelConfig(max_interests=1, negative_weight=0.7),
                            candidates={"pool_factor": 1, "min_pool": 1,
                                        "extra_spaces": ["image"]})
    rec = Recommender(store, events, fuser, cfg, stages={"rerank": Keep()})
    rec.recommend("u", n=3)
    profile = rec.profile("u")
    assert profile.negative is not None and len(seen) > 3  # image space added candidates
    ids = sorted(seen)
    want = profile.score(np.stack([fused[int(k[1:])] for k in ids]))
    np.testing.assert_allclose([seen[k] for k in ids], want, atol=1e-4)


def test_repeated_requests_come_from_the_cache_until_something_changes(store, events, cat):
    events.append(likes("u", cat.cluster(0)[:5]))
    rec = _rec(store, events)
    first = rec.recommend("u", n=5)
    again = rec.recommend("u", n=5)
    assert again.ids == first.ids and again.timings_ms == {"cached": 0.0}
    assert rec.recommend("u", n=4).timings_ms != {"cached": 0.0}  # other options: computed
    events.append(likes("u", cat.cluster(2)[:6], start=100 * DAY))
    fresh = rec.recommend("u", n=5)
    assert fresh.timings_ms != {"cached": 0.0} and fresh.ids != first.ids
    rec.catalogue_changed()
    assert rec.recommend("u", n=5).timings_ms != {"cached": 0.0}
    off = _rec(store, events, result_cache_size=0)
    off.recommend("u", n=5)
    assert off.recommend("u", n=5).timings_ms != {"cached": 0.0}


def test_sources_may_propose_plain_ids_beside_candidates():
    from mosaicrec.engine.context import Candidate, RecContext
    from mosaicrec.engine.stages import CandidateStage

    class Source:
        def __init__(self, name, proposals):
            self.name, self.proposals = name, proposals

        def propose(self, ctx):
            return self.proposals

    rich = Candidate("b", {"genre": "x"}, 1, 0.5, vectors={"als": np.ones(2, np.float32)})
    stage = CandidateStage([Source("ids", ["a", "b", "seen"]), Source("rich", [rich, "c"]),
                            Source("more", [np.str_("a")])], retriever=None)  # type: ignore
    ctx = RecContext(user_id="u", n=3, exclude={"seen"})
    stage.run(ctx)
    by_id = {c.id: c for c in ctx.candidates}
    assert [c.id for c in ctx.candidates] == ["a", "b", "c"]  # first proposal's order
    assert by_id["a"].sources == ["ids", "more"] and by_id["c"].sources == ["rich"]
    # an item first proposed as a plain id takes what a richer proposal knows
    assert by_id["b"].sources == ["ids", "rich"] and by_id["b"].payload == {"genre": "x"}
    assert by_id["b"].interest == 1 and "als" in by_id["b"].vectors


def test_in_memory_id_search_and_retrievers_without_it():
    from mosaicrec.engine.context import RecContext
    from mosaicrec.engine.retrieval import MemoryRetriever
    from mosaicrec.engine.stages import CandidateStage
    from mosaicrec.engine.stages.candidates import _search

    memory = MemoryRetriever({"s": (["a", "b", "c"], np.eye(3, dtype=np.float32), "dot")})
    q = np.array([0.1, 0.3, 0.2], np.float32)
    assert memory.nearest_ids("s", q, 2, exclude={"x"}) == ["b", "c"]
    assert memory.nearest_ids("s", q, 5, exclude={"a", "b", "c"}) == []
    assert memory.nearest_ids("s", q, 0, exclude=set()) == []

    class OlderRetriever:  # written before nearest_ids: searched for hits, ids kept
        def search(self, *args, **kwargs):
            return memory.search(*args, **kwargs)

    ctx = RecContext(user_id="u", n=2, exclude={"b"})
    assert _search(OlderRetriever(), "s", q, 2, ctx) == ["c", "a"]  # type: ignore[arg-type]

    class Broken:
        name = "broken"

        def propose(self, ctx):
            return [3]

    with pytest.raises(TypeError, match="broken"):
        CandidateStage([Broken()], retriever=None).run(ctx)  # type: ignore[arg-type]
