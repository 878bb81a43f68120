"""One contract suite for every store backend, plus a congruence check between them.

Each test runs against Qdrant Edge (a tmp directory), qdrant-client local mode in memory and
qdrant-client local mode on disk. ``test_backends_agree_on_exact_search`` runs the same exact
queries (cosine and dot spaces, payload and has-vector filters) against all three and compares
ids and scores.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mosaicrec.errors import (
    ConfigError,
    InputError,
    RequestError,
    SchemaMismatchError,
    StoreError,
    UnknownItemError,
)
from mosaicrec.indexing.stores import (
    CollectionSchema,
    Condition,
    Filter,
    Point,
    StoreConfig,
    VectorSpace,
    VectorStore,
    open_store,
)
from mosaicrec.indexing.stores import _edge_helpers as helpers
from mosaicrec.indexing.stores.base import ID_FIELD

BACKENDS = ["edge", "qdrant-memory", "qdrant-path"]
TEXT_DIM, IMAGE_DIM, N_CLUSTERS, PER_CLUSTER = 16, 8, 6, 10
N = N_CLUSTERS * PER_CLUSTER
GENRES = ["drama", "comedy", "horror"]
SCHEMA = CollectionSchema(
    vectors={
        "text": VectorSpace(dim=TEXT_DIM, encoder="tiny-text"),
        "image": VectorSpace(dim=IMAGE_DIM, encoder="tiny-image"),
    },
    payload_indexes={"genre": "keyword", "year": "integer"},  # "lang" deliberately unindexed
)
BEH_DIM = 5
BEH = VectorSpace(dim=BEH_DIM, encoder="tiny-als", distance="dot")  # learned, norm matters


@functools.cache
def _data() -> tuple[np.ndarray, np.ndarray, tuple[dict, ...]]:
    """Tight clusters (so MMR has something to diversify); every third item has no image."""
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((N_CLUSTERS, TEXT_DIM))
    text = np.repeat(centres, PER_CLUSTER, axis=0) + 0.15 * rng.standard_normal((N, TEXT_DIM))
    image = rng.standard_normal((N, IMAGE_DIM))
    payloads = tuple(
        {
            "genre": GENRES[i % 3],
            "year": 1960 + i,
            "lang": "fr" if i % 4 == 0 else "en",
            "cluster": i // PER_CLUSTER,
        }
        for i in range(N)
    )
    return text.astype(np.float32), image.astype(np.float32), payloads


@functools.cache
def _beh() -> np.ndarray:
    """Dot-space vectors with very different norms; item 0's is all zeros (allowed for dot)."""
    rng = np.random.default_rng(11)
    vecs = rng.standard_normal((N, BEH_DIM)) * rng.uniform(0.1, 4.0, (N, 1))
    vecs[0] = 0.0
    return vecs.astype(np.float32)


def _with_beh(s: VectorStore, ids: range = range(0, N, 2)) -> list[int]:
    """Add the dot space to a live collection and give it to ``ids``; returns them."""
    assert s.add_vector_space("beh", BEH) is True
    s.update_vectors("beh", [f"item-{i}" for i in ids], _beh()[list(ids)])
    return list(ids)


def _has_image(i: int) -> bool:
    return i % 3 != 0


def _points(ids: range = range(N)) -> list[Point]:
    text, image, payloads = _data()
    return [
        Point(
            f"item-{i}",
            {"text": text[i], **({"image": image[i]} if _has_image(i) else {})},
            dict(payloads[i]),
        )
        for i in ids
    ]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _config(backend: str, tmp_path: Path, **kw: object) -> StoreConfig:
    if backend == "edge":
        return StoreConfig(backend="edge", path=str(tmp_path / "edge"), **kw)
    if backend == "qdrant-memory":
        return StoreConfig(backend="qdrant", path=":memory:", **kw)
    return StoreConfig(backend="qdrant", path=str(tmp_path / "qdrant"), **kw)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def config(backend: str, tmp_path: Path) -> StoreConfig:
    return _config(backend, tmp_path)


@pytest.fixture
def store(config: StoreConfig) -> Iterator[VectorStore]:
    s = open_store(config, SCHEMA)
    s.upsert(_points())
    yield s
    s.close()


def _on_disk(config: StoreConfig) -> None:
    if config.path == ":memory:":
        pytest.skip("an in-memory collection does not outlive its store")


def _stored_vectors(s: VectorStore) -> dict[str, dict[str, np.ndarray]]:
    return {r.id: r.vectors for r in s.iter_records(vectors=True)}


def test_warm_reads_every_payload_on_edge_and_changes_nothing(store: VectorStore,
                                                               backend: str) -> None:
    before = {r.id: (r.payload, r.vectors) for r in store.iter_records(vectors=True)}
    read = store.warm()
    # Edge reads every payload once; a server keeps its own caches
    assert read == (N if backend == "edge" else 0)
    after = {r.id: (r.payload, r.vectors) for r in store.iter_records(vectors=True)}
    assert after.keys() == before.keys()
    for item, (payload, vectors) in before.items():
        assert after[item][0] == payload
        for name, v in vectors.items():
            np.testing.assert_array_equal(after[item][1][name], v)


# ---- schema and lifecycle -------------------------------------------------------------------


def test_create_and_reopen_persists_points_and_schema(config: StoreConfig) -> None:
    _on_disk(config)
    with open_store(config, SCHEMA) as s:
        s.upsert(_points())
        before = _stored_vectors(s)
    with open_store(config) as s:  # no schema: read the recorded one
        assert s.schema == SCHEMA
        assert s.count() == N
        after = _stored_vectors(s)
    assert before.keys() == after.keys()
    for item, vecs in before.items():
        assert vecs.keys() == after[item].keys()
        for name in vecs:
            np.testing.assert_allclose(vecs[name], after[item][name], atol=1e-6)


def _changed(kind: str) -> CollectionSchema:
    vectors = dict(SCHEMA.vectors)
    if kind == "encoder":
        vectors["text"] = VectorSpace(dim=TEXT_DIM, encoder="minilm")
    elif kind == "dim":
        vectors["text"] = VectorSpace(dim=TEXT_DIM * 2, encoder="tiny-text")
    else:
        del vectors["image"]
    return SCHEMA.model_copy(update={"vectors": vectors})


@pytest.mark.parametrize("kind", ["encoder", "dim", "missing"])
def test_schema_mismatch_is_refused_on_open(config: StoreConfig, kind: str) -> None:
    _on_disk(config)
    open_store(config, SCHEMA).close()
    with pytest.raises(SchemaMismatchError) as err:
        open_store(config, _changed(kind))
    msg = str(err.value)
    if kind == "missing":
        assert "image" in msg and "tiny-image" in msg and "no such vector" in msg
    else:
        assert "text" in msg and "tiny-text" in msg
        assert ("minilm" in msg) if kind == "encoder" else (f"dim {TEXT_DIM * 2}" in msg)
    with open_store(config, SCHEMA) as s:  # the refusal left the collection usable
        assert s.schema == SCHEMA


def test_payload_index_type_clash_is_refused(config: StoreConfig) -> None:
    _on_disk(config)
    open_store(config, SCHEMA).close()
    clash = SCHEMA.model_copy(update={"payload_indexes": {"genre": "integer"}})
    with pytest.raises(SchemaMismatchError, match="genre"):
        open_store(config, clash)


def test_missing_collection(config: StoreConfig) -> None:
    with pytest.raises(StoreError, match="'items'.*does not exist"):
        open_store(config, SCHEMA, create=False)
    with pytest.raises(StoreError, match="needs a schema"):
        open_store(config)


def test_closed_store_raises_store_error(config: StoreConfig) -> None:
    s = open_store(config, SCHEMA)
    s.close()
    s.close()  # closing twice is harmless
    with pytest.raises(StoreError, match="closed"):
        s.count()


# ---- writing --------------------------------------------------------------------------------


def test_upsert_is_idempotent(store: VectorStore) -> None:
    before = _stored_vectors(store)
    store.upsert(_points())
    assert store.count() == N
    after = _stored_vectors(store)
    for item, vecs in before.items():
        for name in vecs:
            np.testing.assert_allclose(vecs[name], after[item][name], atol=1e-6)


def test_upsert_replaces_payload_and_vectors(store: VectorStore) -> None:
    new = np.ones(TEXT_DIM, dtype=np.float32)
    store.upsert([Point("item-1", {"text": new}, {"genre": "scifi"})])
    (rec,) = store.retrieve(["item-1"], vectors=True)
    assert rec.payload == {"genre": "scifi"}
    assert set(rec.vectors) == {"text"}  # a point is replaced whole, like Qdrant's upsert
    np.testing.assert_allclose(rec.vectors["text"], _unit(new), atol=1e-6)


@pytest.mark.parametrize(
    "bad, reason",
    [
        ({"text": np.ones(TEXT_DIM + 1)}, "shape"),
        ({"audio": np.ones(4)}, "unknown vector 'audio'"),
        ({"text": np.full(TEXT_DIM, np.nan)}, "NaN"),
        ({"text": np.zeros(TEXT_DIM)}, "zeros"),
        ({}, "no vectors"),
    ],
)
def test_bad_point_rejects_whole_batch(store: VectorStore, bad: dict, reason: str) -> None:
    before = _stored_vectors(store)
    fresh = Point("new-ok", {"text": np.ones(TEXT_DIM)})
    changed = Point("item-2", {"text": -np.ones(TEXT_DIM)})
    with pytest.raises(InputError, match=reason) as err:
        store.upsert([fresh, changed, Point("broken-7", bad)])
    assert err.value.item == "broken-7" and "broken-7" in str(err.value)
    assert store.count() == N
    assert store.retrieve(["new-ok"]) == []
    np.testing.assert_allclose(
        store.retrieve(["item-2"], vectors=["text"])[0].vectors["text"],
        before["item-2"]["text"],
        atol=1e-6,
    )


def test_reserved_id_field_in_payload_is_refused(store: VectorStore) -> None:
    with pytest.raises(InputError, match="item_id"):
        store.upsert([Point("x", {"text": np.ones(TEXT_DIM)}, {"item_id": "y"})])


def test_delete(store: VectorStore) -> None:
    store.delete(["item-0", "item-1", "no-such-item"])
    assert store.count() == N - 2
    assert store.retrieve(["item-0", "item-1", "item-2"]) != []
    assert [r.id for r in store.retrieve(["item-0", "item-1", "item-2"])] == ["item-2"]
    hits = store.query(_data()[0][0], using="text", limit=N, exact=True)
    assert {"item-0", "item-1"}.isdisjoint(h.id for h in hits)


# ---- reading --------------------------------------------------------------------------------


def test_retrieve_keeps_order_and_skips_unknown(store: VectorStore) -> None:
    recs = store.retrieve(["item-5", "nope", "item-3", "item-4"], vectors=True)
    assert [r.id for r in recs] == ["item-5", "item-3", "item-4"]
    text, image, payloads = _data()
    assert recs[0].payload == payloads[5]
    np.testing.assert_allclose(recs[0].vectors["text"], _unit(text[5]), atol=1e-6)
    np.testing.assert_allclose(recs[0].vectors["image"], _unit(image[5]), atol=1e-6)
    assert set(recs[1].vectors) == {"text"}  # item-3 has no image
    assert store.retrieve(["item-5"])[0].vectors == {}
    bare = store.retrieve(["item-4", "nope", "item-5", "item-4"], vectors=["text"],
                          payload=False)
    assert [(r.id, r.payload) for r in bare] == [("item-4", {}), ("item-5", {})]
    np.testing.assert_allclose(bare[1].vectors["text"], _unit(text[5]), atol=1e-6)
    only = store.retrieve(["item-5", "item-4"], payload=["genre", "no-such-field"])
    assert [(r.id, r.payload) for r in only] == [
        ("item-5", {"genre": payloads[5]["genre"]}), ("item-4", {"genre": payloads[4]["genre"]})]
    for wrong in ([3], "genre", [""]):
        with pytest.raises(RequestError, match="payload fields"):
            store.retrieve(["item-5"], payload=wrong)
        with pytest.raises(RequestError, match="payload fields"):
            store.query(text[5], using="text", limit=1, payload=wrong)


def test_points_without_an_image_are_searchable_by_text_only(store: VectorStore) -> None:
    text, image, _ = _data()
    by_text = store.query(text[3], using="text", limit=1, exact=True)
    assert by_text[0].id == "item-3"
    by_image = store.query(image[4], using="image", limit=N, exact=True)
    assert by_image[0].id == "item-4"
    assert {h.id for h in by_image} == {f"item-{i}" for i in range(N) if _has_image(i)}


def test_query_scores_are_cosine_best_first(store: VectorStore) -> None:
    text = _data()[0]
    q = text[10] + 0.3
    hits = store.query(q, using="text", limit=10, exact=True)
    want = _unit(text) @ _unit(q)
    order = np.argsort(-want)[:10]
    assert [h.id for h in hits] == [f"item-{i}" for i in order]
    np.testing.assert_allclose([h.score for h in hits], want[order], atol=1e-5)



def test_query_hits_carry_the_vectors_asked_for(store: VectorStore) -> None:
    text, image = _data()[:2]
    hits = store.query(text[4], using="text", limit=5, exact=True, with_vectors=["image"])
    assert hits[0].id == "item-4" and all(h.vectors.keys() <= {"image"} for h in hits)
    np.testing.assert_allclose(hits[0].vectors["image"], _unit(image[4]), atol=1e-5)
    assert store.query(text[3], using="text", limit=2, exact=True)[0].vectors == {}
    bare = store.query(text[4], using="text", limit=5, exact=True, payload=False)
    assert [h.id for h in bare] == [h.id for h in hits] and all(h.payload == {} for h in bare)
    only = store.query(text[4], using="text", limit=1, exact=True, payload=["year"])
    assert only[0].payload == {"year": _data()[2][4]["year"]}
    with pytest.raises(RequestError, match="unknown vectors"):
        store.query(text[3], using="text", limit=2, with_vectors=["nope"])

FILTERS: dict[str, tuple[Filter, Callable[[dict], bool]]] = {
    "keyword": (Filter(must=[Condition(field="genre", match="drama")]),
                lambda p: p["genre"] == "drama"),
    "int": (Filter(must=[Condition(field="year", match=1970)]), lambda p: p["year"] == 1970),
    "any": (Filter(must=[Condition(field="genre", any=["comedy", "horror"])]),
            lambda p: p["genre"] in ("comedy", "horror")),
    "range": (Filter(must=[Condition(field="year", gte=1970, lt=1990)]),
              lambda p: 1970 <= p["year"] < 1990),
    "must_not": (Filter(must_not=[Condition(field="genre", match="drama")]),
                 lambda p: p["genre"] != "drama"),
    "should": (Filter(should=[Condition(field="year", lt=1965), Condition(field="year", gt=2015)]),
               lambda p: p["year"] < 1965 or p["year"] > 2015),
    "combined": (Filter(must=[Condition(field="year", gte=1965)],
                        must_not=[Condition(field="genre", match="horror")],
                        should=[Condition(field="genre", match="drama"),
                                Condition(field="year", gte=2000)]),
                 lambda p: p["year"] >= 1965 and p["genre"] != "horror"
                 and (p["genre"] == "drama" or p["year"] >= 2000)),
    "unindexed": (Filter(must=[Condition(field="lang", match="fr")]), lambda p: p["lang"] == "fr"),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filters_match_a_python_predicate(store: VectorStore, name: str) -> None:
    flt, predicate = FILTERS[name]
    text, _, payloads = _data()
    want = {f"item-{i}" for i, p in enumerate(payloads) if predicate(p)}
    assert want and len(want) < N  # the case really filters
    assert store.count(flt) == len(want)
    hits = store.query(text[0], using="text", limit=N, filter=flt, exact=True)
    assert {h.id for h in hits} == want
    approx = store.query(text[0], using="text", limit=5, filter=flt)  # index path, tiny data
    assert {h.id for h in approx} <= want and len(approx) == min(5, len(want))


def test_malformed_condition_is_a_request_error(store: VectorStore) -> None:
    with pytest.raises(RequestError, match="exactly one"):
        store.count(Filter(must=[Condition(field="year", match=1970, gte=1960)]))


def test_exclude_ids(store: VectorStore) -> None:
    text = _data()[0]
    top = [h.id for h in store.query(text[0], using="text", limit=3, exact=True)]
    hits = store.query(text[0], using="text", limit=3, exact=True, exclude_ids=top[:2])
    assert hits[0].id == top[2] and not set(top[:2]) & {h.id for h in hits}


def test_bad_queries_are_request_errors(store: VectorStore) -> None:
    with pytest.raises(RequestError, match="unknown vector 'audio'"):
        store.query(np.ones(4), using="audio", limit=3)
    with pytest.raises(RequestError, match="shape"):
        store.query(np.ones(3), using="text", limit=3)
    with pytest.raises(RequestError, match="limit"):
        store.query(np.ones(TEXT_DIM), using="text", limit=0)
    with pytest.raises(RequestError, match="positive"):
        store.recommend([], using="text", limit=3)


def test_recommend_sum_scores_matches_numpy(store: VectorStore) -> None:
    text = _data()[0]
    pos, neg = [text[0], text[25]], [text[50]]
    hits = store.recommend(pos, neg, using="text", limit=10, strategy="sum_scores")
    sims = _unit(text) @ _unit(np.stack(pos + neg)).T
    want = sims[:, 0] + sims[:, 1] - sims[:, 2]
    order = np.argsort(-want)[:10]
    assert [h.id for h in hits] == [f"item-{i}" for i in order]
    np.testing.assert_allclose([h.score for h in hits], want[order], atol=1e-5)


def test_recommend_best_score_prefers_positives_and_avoids_negatives(store: VectorStore) -> None:
    text = _data()[0]
    hits = store.recommend([text[0]], [text[PER_CLUSTER]], using="text", limit=N)
    assert hits[0].id == "item-0"
    ranks = {h.id: r for r, h in enumerate(hits)}
    first_cluster = [ranks[f"item-{i}"] for i in range(PER_CLUSTER)]
    negative_cluster = [ranks[f"item-{i}"] for i in range(PER_CLUSTER, 2 * PER_CLUSTER)]
    assert max(first_cluster) < min(negative_cluster)
    assert max(negative_cluster) >= N - PER_CLUSTER  # the negative's cluster sinks to the bottom


def test_mmr_diversifies_a_clustered_set(store: VectorStore) -> None:
    text = _data()[0]
    plain = store.query(text[0], using="text", limit=5, exact=True)
    diverse = store.mmr(text[0], using="text", limit=5, diversity=0.9, candidates_limit=N)
    assert len({h.id for h in diverse}) == 5 and diverse[0].id == "item-0"
    assert [h.id for h in diverse] != [h.id for h in plain]
    clusters = [{h.payload["cluster"] for h in hs} for hs in (plain, diverse)]
    assert len(clusters[0]) == 1 and len(clusters[1]) > 1
    relevant = store.mmr(text[0], using="text", limit=5, diversity=0.0, candidates_limit=N)
    assert [h.id for h in relevant] == [h.id for h in plain]


def test_iter_records_pages_through_everything(store: VectorStore) -> None:
    recs = list(store.iter_records(vectors=["image"], batch_size=7))
    assert sorted(r.id for r in recs) == sorted(f"item-{i}" for i in range(N))
    assert sum("image" in r.vectors for r in recs) == sum(_has_image(i) for i in range(N))
    assert all(set(r.vectors) <= {"image"} for r in recs)


def test_info_reports_counts_and_schema(store: VectorStore) -> None:
    info = store.info()
    assert info["points"] == N
    assert CollectionSchema.model_validate(info["schema"]) == SCHEMA


# ---- dot spaces and changes to a live collection ---------------------------------------------


def test_dot_space_ranks_by_inner_product_and_keeps_raw_vectors(config: StoreConfig) -> None:
    schema = SCHEMA.model_copy(update={"vectors": {**SCHEMA.vectors, "beh": BEH}})
    beh = _beh()
    points = _points()
    for i, p in enumerate(points):
        p.vectors["beh"] = beh[i]
    with open_store(config, schema) as s:
        s.upsert(points)
        q = beh[7] + 0.5
        hits = s.query(q, using="beh", limit=10, exact=True)
        want = beh @ q  # raw inner product: long vectors win, the query is used as given
        order = np.argsort(-want)[:10]
        assert [h.id for h in hits] == [f"item-{i}" for i in order]
        np.testing.assert_allclose([h.score for h in hits], want[order], rtol=1e-5, atol=1e-5)
        recs = s.retrieve(["item-0", "item-3"], vectors=["beh"])
        np.testing.assert_array_equal(recs[0].vectors["beh"], np.zeros(BEH_DIM))
        np.testing.assert_allclose(recs[1].vectors["beh"], beh[3], rtol=1e-6)
        with pytest.raises(InputError, match="NaN") as err:
            s.upsert([Point("bad", {"beh": np.full(BEH_DIM, np.inf)})])
        assert err.value.item == "bad"
    if config.path != ":memory:":
        with open_store(config) as s:  # raw before and after a reopen (local mode included)
            assert s.schema.vectors["beh"].distance == "dot"
            stored = {r.id: r.vectors["beh"] for r in s.iter_records(vectors=["beh"])}
            np.testing.assert_allclose(
                np.stack([stored[f"item-{i}"] for i in range(N)]), beh, rtol=1e-6
            )


def test_add_vector_space_then_update_vectors_then_query(store: VectorStore) -> None:
    before = {r.id: r for r in store.retrieve([f"item-{i}" for i in range(N)], vectors=True)}
    assert "beh" not in store.schema.vectors
    ids = _with_beh(store)
    assert store.add_vector_space("beh", BEH) is False  # same definition: a no-op
    assert store.schema.vectors["beh"] == BEH and store.schema.added_vectors == ["beh"]
    q = _beh()[4]
    hits = store.query(q, using="beh", limit=N, exact=True)
    want = _beh()[ids] @ q
    assert [h.id for h in hits] == [f"item-{ids[k]}" for k in np.argsort(-want)]
    after = store.retrieve([f"item-{i}" for i in range(N)], vectors=True)
    for rec in after:  # other vectors and payload untouched
        old = before[rec.id]
        assert rec.payload == old.payload
        gained = {"beh"} if int(rec.id[5:]) in ids else set()
        assert set(rec.vectors) == set(old.vectors) | gained
        for name, vec in old.vectors.items():
            np.testing.assert_allclose(rec.vectors[name], vec, atol=1e-6)
        if "beh" in rec.vectors:
            np.testing.assert_allclose(rec.vectors["beh"], _beh()[int(rec.id[5:])], rtol=1e-6)


def test_added_space_survives_reopen_and_the_original_schema_still_opens(
    config: StoreConfig,
) -> None:
    _on_disk(config)
    with open_store(config, SCHEMA) as s:
        s.upsert(_points())
        ids = _with_beh(s, range(10))
        assert s.add_payload_index("behaviour", "keyword") is True
    with open_store(config) as s:
        assert s.schema.vectors["beh"] == BEH and s.schema.payload_indexes["behaviour"] == "keyword"
        recs = s.retrieve([f"item-{i}" for i in ids], vectors=["beh"])
        got = np.stack([r.vectors["beh"] for r in recs])
        np.testing.assert_allclose(got, _beh()[ids], rtol=1e-6)
    with open_store(config, SCHEMA) as s:  # the indexer's schema: added spaces are tolerated
        assert s.schema.vectors["beh"] == BEH
        assert s.count(Filter(must=[Condition(has_vector="beh")])) == len(ids)
    with pytest.raises(SchemaMismatchError, match="beh"):  # but not a different definition
        open_store(config, SCHEMA.model_copy(update={"vectors": {
            **SCHEMA.vectors, "beh": VectorSpace(dim=3, encoder="tiny-als", distance="dot")}}))


def test_re_adding_a_space_with_another_dim_replaces_it(store: VectorStore) -> None:
    ids = _with_beh(store)
    smaller = VectorSpace(dim=3, encoder="tiny-als-v2", distance="dot")
    assert store.add_vector_space("beh", smaller) is True
    assert store.schema.vectors["beh"] == smaller
    has_beh = Filter(must=[Condition(has_vector="beh")])
    assert store.count(has_beh) == 0  # the old vectors went with the old definition
    assert store.retrieve([f"item-{ids[0]}"], vectors=True)[0].vectors.keys() == {"text"}
    with pytest.raises(InputError, match="shape"):
        store.update_vectors("beh", ["item-1"], _beh()[[1]])
    store.update_vectors("beh", ["item-1", "item-2"], np.eye(3, dtype=np.float32)[:2] * 5)
    assert store.count(has_beh) == 2
    assert store.query(np.array([1.0, 0, 0]), using="beh", limit=1)[0].id == "item-1"


def test_drop_vector_space(store: VectorStore, backend: str, tmp_path: Path) -> None:
    _with_beh(store)
    assert store.drop_vector_space("beh") is True
    assert store.drop_vector_space("beh") is False
    assert "beh" not in store.schema.vectors and store.schema.added_vectors == []
    with pytest.raises(RequestError, match="unknown vector 'beh'"):
        store.query(_beh()[1], using="beh", limit=3)
    with pytest.raises(RequestError, match="has_vector 'beh'"):
        store.count(Filter(must=[Condition(has_vector="beh")]))
    assert store.add_vector_space("beh", BEH) is True  # and back, empty
    assert store.count(Filter(must=[Condition(has_vector="beh")])) == 0
    for bad in ("", "bad name", "a/b", "x\n"):
        with pytest.raises(RequestError, match="must match"):
            store.add_vector_space(bad, BEH)
    single = CollectionSchema(vectors={"text": SCHEMA.vectors["text"]})
    with (
        open_store(_config(backend, tmp_path / "single"), single) as s,
        pytest.raises(RequestError, match="only vector space"),
    ):
        s.drop_vector_space("text")


def test_update_vectors_with_an_unknown_id_writes_nothing(config: StoreConfig) -> None:
    # batches of 3, the missing id in the third: the check must come before the first write
    with open_store(config.model_copy(update={"upsert_batch": 3}), SCHEMA) as s:
        s.upsert(_points())
        assert s.add_vector_space("beh", BEH)
        ids = [f"item-{i}" for i in range(7)] + ["no-such-item", "item-9"]
        with pytest.raises(UnknownItemError, match="no-such-item") as err:
            s.update_vectors("beh", ids, np.ones((len(ids), BEH_DIM)))
        assert err.value.item == "no-such-item"
        assert s.count(Filter(must=[Condition(has_vector="beh")])) == 0
        with pytest.raises(UnknownItemError, match="ghost"):
            s.set_payload(["item-1", "ghost"], {"flag": 1})
        assert "flag" not in s.retrieve(["item-1"])[0].payload


@pytest.mark.parametrize(
    "name, rows, error, reason",
    [
        ("beh", np.ones((3, BEH_DIM + 1)), InputError, "shape"),
        ("beh", np.where(np.arange(3)[:, None] == 2, np.nan, np.ones((3, BEH_DIM))), InputError,
         "NaN"),
        ("beh", np.ones((2, BEH_DIM)), RequestError, "one row per id"),
        ("audio", np.ones((3, BEH_DIM)), RequestError, "unknown vector 'audio'"),
    ],
)
def test_update_vectors_checks_the_whole_batch_first(
    store: VectorStore, name: str, rows: np.ndarray, error: type, reason: str
) -> None:
    assert store.add_vector_space("beh", BEH)
    with pytest.raises(error, match=reason) as err:
        store.update_vectors(name, ["item-1", "item-2", "item-3"], rows)
    if error is InputError:
        assert err.value.item == ("item-3" if reason == "NaN" else "item-1")
    assert store.count(Filter(must=[Condition(has_vector="beh")])) == 0


def test_cosine_update_vectors_are_stored_unit_length(store: VectorStore) -> None:
    store.update_vectors("text", ["item-1"], np.full((1, TEXT_DIM), 3.0))
    (rec,) = store.retrieve(["item-1"], vectors=True)
    np.testing.assert_allclose(rec.vectors["text"], np.full(TEXT_DIM, TEXT_DIM ** -0.5), atol=1e-6)
    assert "image" in rec.vectors and rec.payload == _data()[2][1]
    with pytest.raises(InputError, match="zeros"):
        store.update_vectors("text", ["item-1"], np.zeros((1, TEXT_DIM)))


def test_set_payload_merges_and_is_filterable_after_add_payload_index(store: VectorStore) -> None:
    flagged = [f"item-{i}" for i in range(0, N, 5)]
    store.set_payload(flagged, {"behaviour": "trained", "score": np.float32(0.5)})
    rec = store.retrieve(["item-5"])[0]
    assert rec.payload == {**_data()[2][5], "behaviour": "trained", "score": 0.5}
    assert store.add_payload_index("behaviour", "keyword") is True
    assert store.add_payload_index("behaviour", "keyword") is False
    assert store.schema.payload_indexes["behaviour"] == "keyword"
    trained = Filter(must=[Condition(field="behaviour", match="trained")])
    assert store.count(trained) == len(flagged)
    hits = store.query(_data()[0][3], using="text", limit=N, filter=trained)
    assert {h.id for h in hits} == set(flagged)
    with pytest.raises(SchemaMismatchError, match="behaviour"):
        store.add_payload_index("behaviour", "integer")
    with pytest.raises(RequestError, match="not one of"):
        store.add_payload_index("year2", "date")  # type: ignore[arg-type]
    with pytest.raises(RequestError, match="item_id"):
        store.set_payload(["item-1"], {"item_id": "other"})


@pytest.mark.parametrize("clause", ["must", "must_not"])
def test_has_vector_condition(store: VectorStore, clause: str) -> None:
    flt = Filter(**{clause: [Condition(has_vector="image")]})
    with_image = {f"item-{i}" for i in range(N) if _has_image(i)}
    want = with_image if clause == "must" else {f"item-{i}" for i in range(N)} - with_image
    assert store.count(flt) == len(want)
    assert {h.id for h in store.query(_data()[0][0], using="text", limit=N, filter=flt)} == want
    both = Filter(**{clause: [Condition(has_vector="image")]},
                  should=[Condition(field="genre", match="drama")])
    drama = {f"item-{i}" for i in range(N) if i % 3 == 0}
    assert store.count(both) == len(want & drama)


@pytest.mark.parametrize("clause", ["must", "must_not"])
def test_id_field_conditions_match_exactly_those_items(store: VectorStore, clause: str) -> None:
    # answered from the id index (has-id), with the semantics of a payload condition
    chosen = ["item-3", "item-7", "item-11", "no-such-item"]
    for cond in (Condition(field=ID_FIELD, any=chosen), Condition(field=ID_FIELD, match="item-3")):
        flt = Filter(**{clause: [cond]})
        hit = set(chosen[:3]) if cond.any else {"item-3"}
        want = hit if clause == "must" else {f"item-{i}" for i in range(N)} - hit
        assert store.count(flt) == len(want)
        found = store.query(_data()[0][0], using="text", limit=N, filter=flt,
                            exclude_ids=["item-7"])
        assert {h.id for h in found} == want - {"item-7"}
    # a number never equals a stored id (a string): nothing matches, as for any payload field
    assert store.count(Filter(must=[Condition(field=ID_FIELD, any=[3])])) == 0


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({}, "needs a payload field or has_vector"),
        ({"field": "genre", "has_vector": "image"}, "stands alone"),
        ({"has_vector": "image", "match": "x"}, "stands alone"),
        ({"has_vector": "not a name"}, "must match"),
    ],
)
def test_malformed_conditions_are_request_errors(kwargs: dict, reason: str) -> None:
    with pytest.raises(RequestError, match=reason):
        Condition(**kwargs)
    cond = Condition(field="x", match=1)  # the payload form is exactly as before
    assert (cond.field, cond.match, cond.has_vector) == ("x", 1, None)


def test_old_schema_without_distance_loads(config: StoreConfig, backend: str) -> None:
    old = SCHEMA.model_dump(mode="json")
    del old["added_vectors"]
    for space in old["vectors"].values():
        del space["distance"]
    assert CollectionSchema.model_validate(old) == SCHEMA
    _on_disk(config)
    open_store(config, SCHEMA).close()
    if backend == "edge":
        path = Path(str(config.path)) / config.collection / "mosaicrec_schema.json"
        state = json.loads(path.read_text())
        path.write_text(json.dumps({**state, "mosaicrec_schema": old}))
    else:
        from qdrant_client import QdrantClient

        client = QdrantClient(path=config.path)
        client.update_collection(config.collection, metadata={"mosaicrec_schema": old})
        client.close()
    with open_store(config) as s:
        assert s.schema == SCHEMA and s.schema.vectors["text"].distance == "cosine"
    with open_store(config, SCHEMA) as s:
        s.upsert(_points(range(3)))
        assert s.count() == 3


class _DeadBackend:
    """Stands in for a shard or client whose every call fails, like a server that went away."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        def fail(*args: object, **kwargs: object) -> None:
            raise RuntimeError("connection refused (simulated)")

        return fail


def test_backend_failures_are_store_errors_naming_action_and_collection(
    store: VectorStore,
) -> None:
    attr = "_shard" if hasattr(store, "_shard") else "_client"
    real = getattr(store, attr)
    setattr(store, attr, _DeadBackend())
    try:
        calls = {
            "count": lambda: store.count(),
            "query": lambda: store.query(_data()[0][0], using="text", limit=3),
            "upsert": lambda: store.upsert(_points(range(2))),
            "retrieve": lambda: store.retrieve(["item-1"]),
            "look up ids": lambda: store.set_payload(["item-1"], {"x": 1}),
            "add vector 'beh'": lambda: store.add_vector_space("beh", BEH),
        }
        for action, call in calls.items():
            with pytest.raises(StoreError, match=f"cannot {action} in collection 'items'") as err:
                call()
            assert "simulated" in str(err.value)
        assert "beh" not in store.schema.vectors
        with pytest.raises(RequestError):  # the caller's mistakes keep their own class
            store.query(np.ones(3), using="text", limit=3)
    finally:
        setattr(store, attr, real)


# ---- congruence -----------------------------------------------------------------------------


def _ranked(hits: list) -> list[tuple[float, str]]:
    # rounding then sorting by (-score, id) makes ties order-independent
    return sorted((-round(h.score, 5), h.id) for h in hits)


def test_backends_agree_on_exact_search(tmp_path: Path) -> None:
    text, image, _ = _data()
    stores = [open_store(_config(b, tmp_path), SCHEMA) for b in BACKENDS]
    try:
        for s in stores:
            s.upsert(_points())
            _with_beh(s)
        beh = _beh()
        rng = np.random.default_rng(3)
        calls = []
        for k in range(5):
            q = text[k * 11] + 0.5 * rng.standard_normal(TEXT_DIM).astype(np.float32)
            calls.append(lambda s, q=q: s.query(q, using="text", limit=12, exact=True))
            calls.append(
                lambda s, q=q: s.query(q, using="text", limit=12, exact=True,
                                       filter=FILTERS["combined"][0], exclude_ids=["item-12"])
            )
        calls.append(lambda s: s.query(image[1], using="image", limit=N, exact=True))
        calls.append(lambda s: s.recommend([text[0], text[30]], [text[45]], using="text",
                                           limit=15, strategy="sum_scores"))
        calls.append(lambda s: s.recommend([text[0]], [text[30]], using="text", limit=15))
        calls.append(lambda s: s.mmr(text[0], using="text", limit=8, diversity=0.6,
                                     candidates_limit=N))
        has_image = Filter(must=[Condition(has_vector="image")],
                           must_not=[Condition(field="genre", match="drama")])
        no_beh = Filter(must_not=[Condition(has_vector="beh")])
        calls.append(lambda s: s.query(beh[2] - 0.3, using="beh", limit=N, exact=True))
        calls.append(lambda s: s.query(beh[4], using="beh", limit=10, exact=True,
                                       filter=has_image, exclude_ids=["item-8"]))
        calls.append(lambda s: s.query(text[1], using="text", limit=12, exact=True, filter=no_beh))
        calls.append(lambda s: s.recommend([beh[2], beh[10]], [beh[20]], using="beh", limit=10,
                                           strategy="sum_scores"))
        for call in calls:
            results = [call(s) for s in stores]
            ref = results[0]
            for other in results[1:]:
                assert [h.id for h in other] == [h.id for h in ref] or (
                    [i for _, i in _ranked(other)] == [i for _, i in _ranked(ref)]
                )
                np.testing.assert_allclose(
                    [h.score for h in other], [h.score for h in ref], rtol=1e-5, atol=1e-5
                )
                assert [h.payload for h in other] == [h.payload for h in ref] or (
                    sorted(map(str, (h.payload for h in other)))
                    == sorted(map(str, (h.payload for h in ref)))
                )
    finally:
        for s in stores:
            s.close()


# ---- Edge specifics -------------------------------------------------------------------------


def test_edge_reopen_after_close_and_second_handle_refused(tmp_path: Path) -> None:
    config = _config("edge", tmp_path)
    s = open_store(config, SCHEMA)
    s.upsert(_points(range(10)))
    with pytest.raises(StoreError, match="already open") as err:
        open_store(config, SCHEMA)
    assert "WouldBlock" not in str(err.value)
    s.close()
    with open_store(config, SCHEMA) as again:
        assert again.count() == 10
    assert (tmp_path / "edge" / "items" / "mosaicrec_schema.json").is_file()


def test_qdrant_local_path_second_handle_refused(tmp_path: Path) -> None:
    config = _config("qdrant-path", tmp_path)
    with open_store(config, SCHEMA), pytest.raises(StoreError, match="already accessed"):
        open_store(config, SCHEMA)


def _recall(s: VectorStore, queries: np.ndarray, flt: Filter | None) -> float:
    found = []
    for q in queries:
        exact = {h.id for h in s.query(q, using="text", limit=10, filter=flt, exact=True)}
        approx = {h.id for h in s.query(q, using="text", limit=10, filter=flt, ef=64)}
        found.append(len(exact & approx) / len(exact))
    return float(np.mean(found))


@pytest.fixture
def built_edge(tmp_path: Path) -> tuple[StoreConfig, np.ndarray]:
    """3,000 points with a real HNSW graph (thresholds of 1 KB) and a 5% "lang" subset."""
    config = _config("edge", tmp_path, indexing_threshold_kb=1, full_scan_threshold_kb=1)
    vecs = np.random.default_rng(0).standard_normal((3000, TEXT_DIM)).astype(np.float32)
    with open_store(config, SCHEMA) as s:
        s.upsert([
            Point(f"p{i}", {"text": v}, {"genre": GENRES[i % 3], "lang": "fr" if i % 20 else "en"})
            for i, v in enumerate(vecs)
        ])
        assert s.optimize() is True
        assert s.info()["indexed_vectors"] >= 3000
    return config, vecs


def test_edge_hnsw_filters_keep_recall(built_edge: tuple[StoreConfig, np.ndarray]) -> None:
    # "lang" has no payload index: without ACORN recall on its 5% subset falls to ~0.
    # The bound is loose because the graph build is multi-threaded, so not deterministic.
    config, vecs = built_edge
    rare = Filter(must=[Condition(field="lang", match="en")])
    with open_store(config) as s:
        for flt in (None, FILTERS["keyword"][0], rare):
            assert _recall(s, vecs[:20], flt) >= 0.8


def test_edge_payload_index_added_after_build_uses_acorn(
    built_edge: tuple[StoreConfig, np.ndarray],
) -> None:
    config, vecs = built_edge
    wider = SCHEMA.model_copy(
        update={"payload_indexes": {**SCHEMA.payload_indexes, "lang": "keyword"}}
    )
    rare = Filter(must=[Condition(field="lang", match="en")])
    with open_store(config, wider) as s:
        assert s.schema.payload_indexes["lang"] == "keyword"
        info = s.info()
        assert "lang" in info["payload_indexes"] and info["acorn_fields"] == ["lang"]
        assert _recall(s, vecs[:20], rare) >= 0.8
    with open_store(config) as s:
        assert s.info()["acorn_fields"] == ["lang"]
        assert s.schema == wider


def test_edge_vector_added_after_build_is_indexed_by_the_next_optimize(
    built_edge: tuple[StoreConfig, np.ndarray],
) -> None:
    config, vecs = built_edge
    rng = np.random.default_rng(5)
    beh = (rng.standard_normal((2000, BEH_DIM)) * rng.uniform(0.5, 2, (2000, 1))).astype(np.float32)
    ids = [f"p{i}" for i in range(2000)]
    with open_store(config) as s:
        indexed = s.info()["indexed_vectors"]
        assert s.add_vector_space("beh", BEH)
        s.update_vectors("beh", ids, beh)
        assert s.info()["indexed_vectors"] == indexed  # not yet: searched by brute force

        def top(q: np.ndarray, **kw: object) -> list[str]:
            return [h.id for h in s.query(q, using="beh", limit=10, **kw)]

        want = [[ids[i] for i in np.argsort(-(beh @ q))[:10]] for q in beh[:10]]
        assert [top(q) for q in beh[:10]] == want  # exact meanwhile
        assert s.optimize() is True
        assert s.info()["indexed_vectors"] >= indexed + 2000
        found = [len(set(top(q, ef=64)) & set(w)) / 10 for q, w in zip(beh[:10], want, strict=True)]
        assert np.mean(found) >= 0.8
        assert [top(q, exact=True) for q in beh[:10]] == want
        # A rare has_vector subset (5%) inside a built graph: no payload index gives it
        # filter-aware links, so without ACORN recall falls to ~0.
        assert s.drop_vector_space("beh") and s.add_vector_space("beh", BEH)
        s.update_vectors("beh", ids[:150], beh[:150])
        s.optimize()
        rare = Filter(must=[Condition(has_vector="beh")])
        assert _recall(s, vecs[:20], rare) >= 0.8


def _resident_kb(directory: Path) -> int:
    """Resident KB of the files this process maps from ``directory`` (/proc/self/smaps)."""
    total, inside = 0, False
    prefix = str(directory.resolve()) + os.sep
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0]:  # a mapping's first line
            inside = len(head) >= 6 and head[5].startswith(prefix)
        elif inside and head[:1] == ["Rss:"]:
            total += int(head[1])
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page release is Linux only")
def test_edge_bulk_writes_build_segments_as_they_go_and_release_pages(tmp_path: Path) -> None:
    config = _config("edge", tmp_path, indexing_threshold_kb=1, full_scan_threshold_kb=1,
                     segment_points=1000, release_pages_points=300)
    vecs = np.random.default_rng(3).standard_normal((2500, TEXT_DIM)).astype(np.float32)
    with open_store(config, SCHEMA) as s:
        for start in range(0, 2500, 250):
            s.upsert([Point(f"p{i}", {"text": vecs[i]}, {"genre": GENRES[i % 3]})
                      for i in range(start, start + 250)])
            if start == 1000:  # the first segment was built when the 1,000th point was written
                info = s.info()
                assert info["indexed_vectors"] >= 1000 and info["segments"] >= 2
        info = s.info()
        assert info["indexed_vectors"] >= 2000 and info["segments"] >= 3  # two built + open
        assert info["search_index"] == "pending"  # the last 500 points await optimize()
        # pages were handed back after the last release; the shard's mapped files take little
        shard_dir = tmp_path / "edge" / "items"
        assert s.count() == 2500
        s.query(vecs[0], using="text", limit=10, exact=True)  # touches every vector page
        touched = _resident_kb(shard_dir)
        assert helpers.release_file_pages(shard_dir) > 0
        assert _resident_kb(shard_dir) < touched
        # nothing was lost: exact search over every segment matches numpy
        for q in vecs[:5]:
            hits = s.query(q, using="text", limit=10, exact=True)
            unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
            want = [f"p{i}" for i in np.argsort(-(unit @ (q / np.linalg.norm(q))))[:10]]
            assert [h.id for h in hits] == want
        assert _recall(s, vecs[:20], None) >= 0.8
        assert s.optimize() is True and s.info()["search_index"] == "built"


# ---- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backend": "qdrant", "url": "http://localhost:6333", "path": "x"}, "not both"),
        ({"backend": "qdrant"}, "needs url"),
        ({"backend": "qdrant", "path": ":memory:", "api_key": "k"}, "only used with url"),
        ({"backend": "edge", "url": "http://localhost:6333"}, "give path"),
        ({"backend": "edge", "path": ":memory:"}, "directory on disk"),
        ({"backend": "edge", "path": "x", "hnsw_m": 0}, "hnsw_m"),
        ({"backend": "edge", "path": "x", "nonsense": 1}, "nonsense"),
    ],
)
def test_store_config_conflicts_are_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        StoreConfig(**kwargs)


def test_store_config_never_shows_the_api_key() -> None:
    cfg = StoreConfig(backend="qdrant", url="https://example.invalid", api_key="s3cret")
    assert "s3cret" not in repr(cfg)
    with pytest.raises(ConfigError) as err:
        StoreConfig(backend="qdrant", url="https://x.invalid", path="p", api_key="s3cret")
    assert "s3cret" not in str(err.value)


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_unreachable_server_is_a_store_error() -> None:
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = StoreConfig(backend="qdrant", url=f"http://127.0.0.1:{port}", timeout_s=2)
    with pytest.raises(StoreError, match=f"127.0.0.1:{port}"):
        open_store(config, SCHEMA)
