"""Known-answer tests for training and serving the trained recommender.

The world: 40 items in 4 content clusters. Users who like an item of cluster 0 also like its
partner in cluster 2 (and cluster 1 goes with cluster 3): a pattern in behaviour that content
cannot see, since partners are far apart in content space.
"""

from __future__ import annotations

import numpy as np
import pytest

from mosaicrec.engine import Interaction, Recommender, RecommenderConfig, SQLiteEventStore
from mosaicrec.engine.models.artefact import load_model
from mosaicrec.engine.publish import sync_items
from mosaicrec.engine.synthetic import clustered_catalogue
from mosaicrec.engine.training import TrainingConfig, train
from mosaicrec.errors import ConfigError, ModelMismatchError
from mosaicrec.indexing.stores import (
    CollectionSchema,
    Point,
    StoreConfig,
    VectorSpace,
    open_store,
)

DIM = 16
TINY = TrainingConfig(
    ease_lams=[10.0], ease_half_lives=[None, 5.0],
    als={"factors": 8, "regularization": 0.1, "iterations": 10},
    sequence={"dim": 16, "epochs": 15, "max_len": 20, "batch_size": 16},
    blend_grid={"sequence": [0.0, 1.0], "popularity": [0.0], "new_item": [0.5],
                "ease_all": [1.0]}, ease_all_half_lives=[None, 5.0],
    content_map={"spaces": ["fused"], "ridges": [0.1], "folds": 2}, min_events=6,
    progress=False)


@pytest.fixture(scope="module")
def cat():
    return clustered_catalogue(4, 10, DIM, spread=0.2, seed=1)


def _store(cat, tmp_path, backend="qdrant"):
    schema = CollectionSchema(vectors={"fused": VectorSpace(dim=DIM, encoder="syn")},
                              payload_indexes={"cluster": "integer"})
    config = StoreConfig(backend="qdrant", path=":memory:") if backend == "qdrant" else \
        StoreConfig(path=str(tmp_path / "edge"))
    store = open_store(config, schema)
    store.upsert([Point(i, {"fused": v}, {"cluster": int(lab), "title": f"T{i}"})
                  for i, v, lab in zip(cat.ids, cat.vectors, cat.labels, strict=True)])
    return store


def _log(cat, users=60, seed=0):
    rng = np.random.default_rng(seed)
    events = []
    for u in range(users):
        a, b = (0, 2) if u % 2 == 0 else (1, 3)
        for t, k in enumerate(rng.choice(10, 6, replace=False)):
            events.append(Interaction(f"u{u}", f"c{a}-{k}", "like", 100.0 * t))
            events.append(Interaction(f"u{u}", f"c{b}-{k}", "like", 100.0 * t + 50))
    return events


@pytest.fixture()
def world(cat, tmp_path):
    store = _store(cat, tmp_path)
    events = SQLiteEventStore(":memory:")
    events.append(_log(cat))
    report = train(store, events, TINY, models_dir=tmp_path / "models", collection="items")
    yield store, events, report, tmp_path
    store.close()
    events.close()


def clusters(ids):
    return [int(i.split("-")[0][1:]) for i in ids]


def test_behaviour_finds_what_content_cannot(world):
    store, events, report, _ = world
    events.append([Interaction("ana", f"c0-{k}", "like", 1e6 + k) for k in (1, 2, 3)])
    trained = Recommender(store, events, model=report.model).recommend("ana", n=5)
    untrained = Recommender(store, events).recommend("ana", n=5)
    assert clusters(untrained.ids).count(0) == 5  # content: more of the same cluster
    assert clusters(trained.ids).count(2) >= 3  # behaviour: the partners in cluster 2
    assert {"c2-1", "c2-2", "c2-3"} & set(trained.ids)
    e = trained.items[0].explanation
    assert e.contributions and e.contributions[0].item_id in {"c0-1", "c0-2", "c0-3"}
    assert e.shares and "behaviour" in e.shares and e.sentence.startswith("Because you liked")


def test_trained_explanations_split_each_history_item_by_modality(world):
    from mosaicrec.encoders.fusion import Fuser

    store, events, report, _ = world
    events.append([Interaction("cy", f"c0-{k}", "like", 1e6 + k) for k in (1, 2, 3)])
    fuser = Fuser({"text": 6, "image": 10})  # the 16 dims read as two modality blocks
    recs = Recommender(store, events, fuser, model=report.model).recommend("cy", n=5)
    checked = 0
    for item in recs:
        for c in item.explanation.contributions:
            a, b = (store.retrieve([i], vectors=["fused"])[0].vectors["fused"]
                    for i in (c.item_id, item.id))
            parts = {m: max(float(a[s] @ b[s]), 0.0) for m, s in fuser.slices.items()}
            total = sum(parts.values())
            want = {m: v / total for m, v in parts.items()} if total > 0 else {}
            assert c.modalities.keys() == want.keys()
            for m, v in want.items():
                assert c.modalities[m] == pytest.approx(v, abs=1e-5)
            checked += 1
    assert checked >= 5


def test_one_new_event_changes_the_next_list(world):
    store, events, report, _ = world
    rec = Recommender(store, events, model=report.model)
    events.append([Interaction("bo", f"c0-{k}", "like", 1e6 + k) for k in (1, 2)])
    before = rec.recommend("bo", n=5).ids
    events.append([Interaction("bo", f"c1-{k}", "like", 2e6 + k) for k in (4, 5, 6, 7)])
    after = rec.recommend("bo", n=5).ids
    assert before != after
    assert clusters(after).count(3) >= 2  # the new taste's behaviour partners appear


def test_an_item_indexed_after_training_is_recommended_from_content(world, cat):
    store, events, report, _ = world
    centre = cat.centers[2]
    store.upsert([Point("fresh", {"fused": centre}, {"cluster": 2, "title": "Fresh"})])
    sync_items(store, report.model, ["fresh"])
    rec = Recommender(store, events, model=report.model)
    events.append([Interaction("cy", f"c2-{k}", "like", 1e6 + k) for k in range(6)]
                  + [Interaction("cy", f"c0-{k}", "like", 1e6 + 10 + k) for k in range(6)])
    recs = rec.recommend("cy", n=10)
    assert "fresh" in recs.ids
    item = recs.items[recs.ids.index("fresh")]
    assert np.isfinite(item.signals["new_item"]) and item.signals["new_item"] > 0
    # the new-items search's hit score is that signal: the content map's prediction for the
    # item times the user's ALS factor (no vector read for it)
    ids, signals, state, sources = rec.candidate_signals(events.history("cy"))
    j = ids.index("fresh")
    assert "new_items" in sources[j]
    space = report.model.content_map.space
    content = store.retrieve(["fresh"], vectors=[space])[0].vectors[space]
    expected = float(report.model.content_map.predict(content[None])[0] @ state.als)
    assert signals["new_item"][j] == pytest.approx(expected, rel=1e-4)
    only_new = rec.recommend("cy", n=3, filters={"must": [{"field": "behaviour",
                                                           "match": "mapped"}]})
    assert only_new.ids == ["fresh"]
    # once the user has it, the new-items search leaves it out like any seen item
    events.append([Interaction("cy", "fresh", "like", 1e6 + 20)])
    assert "fresh" not in rec.recommend("cy", n=10).ids
    assert not rec.recommend("cy", n=3, filters={"must": [{"field": "behaviour",
                                                           "match": "mapped"}]}).ids


def test_saved_model_loads_with_identical_scores(world):
    store, events, report, tmp_path = world
    loaded = load_model(tmp_path / "models", collection="items", schema=store.schema)
    history = events.history("u0")
    a, b = report.model.state(history), loaded.state(history)
    ids = [f"c{c}-{k}" for c in range(4) for k in range(10)]
    sa, sb = report.model.signals(a, ids), loaded.signals(b, ids)
    assert set(sa) == set(sb) and {"ease", "ease_all", "als", "sequence"} <= set(sa)
    for name in sa:
        np.testing.assert_array_equal(sa[name], sb[name])
    assert loaded.blend.weights == report.model.blend.weights
    r1 = Recommender(store, events, model=report.model).recommend("u0", n=8)
    r2 = Recommender(store, events, model=loaded).recommend("u0", n=8)
    assert r1.ids == r2.ids and np.allclose(r1.scores, r2.scores)
    manifest = loaded.manifest
    assert manifest.ease_all is not None and manifest.ease_all.events == "all"
    assert manifest.ease_all.half_life in (None, 5.0)
    assert manifest.counts["events"] == events.count() and manifest.validation["users"] > 0
    assert {"fit on train", "blend", "refit"} <= set(manifest.timings_s)


def test_a_mismatched_model_is_refused(world, cat):
    store, _, _, tmp_path = world
    with pytest.raises(ModelMismatchError, match="collection 'items', not 'other'"):
        load_model(tmp_path / "models", collection="other", schema=store.schema)
    changed = CollectionSchema(vectors={"fused": VectorSpace(dim=DIM, encoder="another")})
    with pytest.raises(ModelMismatchError, match="encoders changed"):
        load_model(tmp_path / "models", collection="items", schema=changed)


def test_behaviour_vectors_are_named_vectors_of_the_collection(world):
    store, _, report, _ = world
    assert store.schema.vectors["als"].distance == "dot"
    assert store.schema.vectors["sequence"].dim == report.model.sequence.item_vectors.shape[1]
    state = report.model.state([Interaction("x", "c1-0", "like", 0.0)])
    hits = store.query(state.als, using="als", limit=3)
    rows = report.model.items.rows([h.id for h in hits])
    want = np.sort(report.model.als.item_vectors @ state.als)[::-1][:3]
    np.testing.assert_allclose([h.score for h in hits], want, rtol=1e-4)
    assert (rows >= 0).all()


def test_training_refuses_an_empty_log(cat, tmp_path):
    store = _store(cat, tmp_path)
    with pytest.raises(ConfigError, match="empty"):
        train(store, SQLiteEventStore(":memory:"), TINY, models_dir=tmp_path / "m",
              collection="items")


def test_training_on_edge_persists_across_reopen(cat, tmp_path):
    store = _store(cat, tmp_path, backend="edge")
    events = SQLiteEventStore(":memory:")
    events.append(_log(cat, users=30))
    train(store, events, TINY, models_dir=tmp_path / "models", collection="items")
    store.close()
    store = open_store(StoreConfig(path=str(tmp_path / "edge")))
    try:
        model = load_model(tmp_path / "models", collection="items", schema=store.schema)
        recs = Recommender(store, events, model=model).recommend("u0", n=5)
        assert len(recs.ids) == 5 and recs.model_version == model.version
    finally:
        store.close()


def test_large_catalogues_fit_ease_once() -> None:
    from mosaicrec.engine.training import _ease_lams

    cfg = TrainingConfig(ease_lams=[300.0, 3000.0, 1000.0], ease_tune_max_items=100)
    assert _ease_lams(cfg, 100) == [300.0, 3000.0, 1000.0]
    assert _ease_lams(cfg, 101) == [1000.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spd_inverse_matches_a_general_inverse(dtype) -> None:
    from mosaicrec.engine.models.ease import spd_inverse

    rng = np.random.default_rng(0)
    x = rng.random((60, 50))
    gram = (x.T @ x + 5 * np.eye(50)).astype(dtype)
    expected = np.linalg.inv(gram.astype(np.float64))
    got = spd_inverse(gram.copy(), block=16)  # blocks smaller than the matrix: mirror checked
    np.testing.assert_allclose(got, expected, rtol=1e-4 if dtype == np.float32 else 1e-10,
                               atol=1e-6)
    with pytest.raises(ConfigError, match="positive definite"):
        spd_inverse(-np.eye(3, dtype=dtype))


def test_an_item_deleted_after_training_is_never_served(world):
    store, events, report, _ = world
    rec = Recommender(store, events, model=report.model)
    events.append([Interaction("di", f"c0-{k}", "like", 1e6 + k) for k in (1, 2, 3)])
    first = rec.recommend("di", n=5).ids
    store.delete([first[0]])  # the model and the event counts still know it
    rec.catalogue_changed()
    again = rec.recommend("di", n=5)
    assert first[0] not in again.ids and len(again) == 5
    assert again.ids[:4] == first[1:]
    assert all(r.payload.get("title") for r in again)


def test_behaviour_spaces_are_searched_in_memory_unless_filtered(world):
    from mosaicrec.engine.retrieval import LayeredRetriever

    store, events, report, _ = world
    rec = Recommender(store, events, model=report.model)
    assert isinstance(rec.retriever, LayeredRetriever)
    state = report.model.state(events.history("u0"))
    for space in ("als", "sequence"):
        query = state.query(space)
        memory = rec.retriever.search(space, query, 8, filter=None, exclude={"c0-1"})
        stored = store.query(query, using=space, limit=8, exact=True, exclude_ids=["c0-1"])
        assert [h.id for h in memory] == [h.id for h in stored]
        np.testing.assert_allclose([h.score for h in memory], [h.score for h in stored],
                                   rtol=1e-4)
        # the ids-only search the behaviour sources use: the same order, memory or store
        assert rec.retriever.nearest_ids(space, query, 8, exclude={"c0-1"}) == \
            [h.id for h in memory]
        assert rec.retriever.store_retriever.nearest_ids(space, query, 8, exclude={"c0-1"}) \
            == [h.id for h in store.query(query, using=space, limit=8, exclude_ids=["c0-1"])]
    only = {"must": [{"field": "cluster", "match": 3}]}
    events.append([Interaction("fi", f"c1-{k}", "like", 1e6 + k) for k in (1, 2)])
    assert set(clusters(rec.recommend("fi", n=5, filters=only).ids)) == {3}
    off = Recommender(store, events, model=report.model,
                      config=RecommenderConfig(candidates={"memory_search_max_floats": 0}))
    assert not isinstance(off.retriever, LayeredRetriever)
    assert off.recommend("fi", n=5).ids == rec.recommend("fi", n=5).ids


def test_content_neighbours_are_searched_only_when_the_blend_or_a_steer_uses_them(world):
    store, events, report, _ = world
    assert not report.model.blend.weights.get("content")
    rec = Recommender(store, events, model=report.model)
    content = next(s for s in rec.stages["candidates"].sources if s.name == "content")
    proposed: list[list] = []
    search = content.propose
    content.propose = lambda ctx: proposed.append(search(ctx)) or proposed[-1]
    rec.recommend("u0", n=5)
    assert proposed[-1] == []  # behaviour sources cover what the blend scores
    rec.recommend("u0", n=5, examples=["c1-0"])
    assert proposed[-1]  # a steered list searches content
    tuning = Recommender(store, events, model=report.model, config=RecommenderConfig(
        sources={"content_only_when_weighted": False}))  # as tuning runs it
    content = next(s for s in tuning.stages["candidates"].sources if s.name == "content")
    search = content.propose
    content.propose = lambda ctx: proposed.append(search(ctx)) or proposed[-1]
    ids, *_ = tuning.candidate_signals(events.history("u0"))
    assert proposed[-1] and {c.id for c in proposed[-1]} <= set(ids)


def test_a_sequence_model_validation_does_not_need_is_not_refitted(cat, tmp_path):
    store = _store(cat, tmp_path)
    events = SQLiteEventStore(":memory:")
    events.append(_log(cat))
    unweighted = TINY.blend_grid | {"sequence": [0.0]}
    kept = train(store, events, TINY.model_copy(update={"blend_grid": unweighted,
                                                        "drop_tolerance": -1.0}),
                 models_dir=tmp_path / "b", collection="items")
    assert kept.model.sequence is not None and kept.manifest.sequence is not None
    assert "sequence" in store.schema.vectors
    report = train(store, events, TINY.model_copy(update={"blend_grid": unweighted}),
                   models_dir=tmp_path / "a", collection="items")
    validation = report.manifest.validation
    # EASE proposes every item of this small catalogue: nothing is left to the sequence model
    assert validation["ndcg@10 without the sequence model's candidates"] == \
        pytest.approx(validation["ndcg@10"])
    assert report.model.sequence is None and report.manifest.sequence is None
    assert "fit on train / sequence" in report.timings and "refit / sequence" not in \
        report.timings
    assert load_model(tmp_path / "a", collection="items", schema=store.schema).sequence is None
    # the earlier model's sequence vectors are gone from the collection, not left stale
    assert "sequence" not in store.schema.vectors and "als" in store.schema.vectors
    store.close()
    events.close()


def test_spd_inverse_threads_leave_the_process_setting_alone():
    from threadpoolctl import threadpool_info, threadpool_limits

    from mosaicrec.engine.models.ease import spd_inverse

    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 60)).astype(np.float32)
    gram = x.T @ x + 10 * np.eye(60, dtype=np.float32)
    expected = np.linalg.inv(gram.astype(np.float64))

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    with threadpool_limits(1, "blas"):
        for threads in (None, 1, 0):
            np.testing.assert_allclose(spd_inverse(gram.copy(), threads=threads), expected,
                                       rtol=1e-4, atol=1e-6)
            assert blas_threads() and set(blas_threads()) == {1}  # restored afterwards
