"""The gRPC API through a real channel on 127.0.0.1: every operation, authentication, tenants,
limits, malformed requests, health, reflection, metrics, and the checked-in stubs.

One server per module (``serving_support.serve``); tests that write use their own user and
item ids, so they do not depend on each other's order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from serving_support import LIMITS, SAMPLE, TRAIN_SETTINGS, Served, events, serve

from mosaicrec.serving.grpc import mosaicrec_pb2 as pb
from mosaicrec.serving.grpc.convert import plain

C = "items"
Code = grpc.StatusCode


@pytest.fixture(scope="module")
def s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("grpc")) as served:
        yield served


def ocean(field: str = "category") -> pb.Filter:
    return pb.Filter(must=[pb.Condition(field=field, match=pb.Scalar(keyword="ocean"))])


# -- stubs ------------------------------------------------------------------------------------
def test_regenerating_the_stubs_changes_nothing(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    from mosaicrec.serving.grpc.generate import HERE, STUBS, generate

    written = generate(tmp_path)
    assert [p.name for p in written] == list(STUBS)
    for name in STUBS:
        assert (tmp_path / name).read_bytes() == (HERE / name).read_bytes(), \
            f"{name} is stale: run python -m mosaicrec.serving.grpc.generate"


# -- every operation --------------------------------------------------------------------------
def test_recommend_with_filter_exclusions_prompt_and_explanations(s: Served) -> None:
    got = s.call("Recommend", pb.RecommendRequest(collection=C, user_id="ana", n=5))
    assert got.user_id == "ana" and len(got.items) == 5 and got.reason
    assert all(r.HasField("explanation") and r.explanation.sentence for r in got.items)
    assert isinstance(plain(got.items[0].payload)["year"], int)
    first = got.items[0].id
    steered = s.call("Recommend", pb.RecommendRequest(
        collection=C, user_id="ana", n=4, filter=ocean(), exclude=[first], diversity=0.3,
        prompt="waves on a beach", explain=False))
    assert len(steered.items) == 4 and first not in [r.id for r in steered.items]
    assert all(r.payload["category"] == "ocean" for r in steered.items)
    assert not any(r.HasField("explanation") for r in steered.items)


def test_a_repeated_recommend_is_answered_from_the_cache_on_the_event_loop(
        s: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cached lists skip the worker thread; the answer is the one computed the first time."""
    request = pb.RecommendRequest(collection=C, user_id="ben", n=3)
    first = s.call("Recommend", request)
    threads: list[str] = []
    original = s.service.recommend_cached

    def spy(*args: object) -> object:
        threads.append(threading.current_thread().name)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(s.service, "recommend_cached", spy)
    again = s.call("Recommend", request)
    assert dict(again.timings_ms) == {"cached": 0.0} and "history" in first.timings_ms
    assert [r.id for r in again.items] == [r.id for r in first.items]
    assert threads and all(not name.startswith("asyncio_") for name in threads)


def test_search_by_text_image_audio_and_item_in_every_space(s: Served) -> None:
    image = (SAMPLE / "images" / "ocean-01.png").read_bytes()
    audio = (SAMPLE / "audio" / "ocean-01.wav").read_bytes()
    queries = [{"text": "waves crashing on a beach"}, {"image": image}, {"audio": audio},
               {"item_id": "ocean-01"}]
    for query in queries:
        for space in ("fused", "text", "image", "audio"):
            if space != "fused" and next(iter(query)) not in ("item_id", space):
                continue  # a text query is not embedded in the image space, and so on
            got = s.call("Search", pb.SearchRequest(collection=C, space=space, limit=3,
                                                    **query))
            assert 1 <= len(got.items) <= 3, (query.keys(), space)
    recent = pb.Filter(must=[pb.Condition(field="year", gte=2020)],
                       must_not=[pb.Condition(field="category", match=pb.Scalar(keyword="city"))],
                       should=[pb.Condition(has_vector="image"),
                               pb.Condition(field="mood", any=[pb.Scalar(keyword="calm")])])
    got = s.call("Search", pb.SearchRequest(collection=C, text="night", limit=10,
                                            filter=recent, exclude=["ocean-10"]))
    assert got.items and all(plain(h.payload)["year"] >= 2020 for h in got.items)
    assert all(h.payload["category"] != "city" and h.id != "ocean-10" for h in got.items)


def test_similar_and_get_item(s: Served) -> None:
    got = s.call("Similar", pb.SimilarRequest(collection=C, item_id="ocean-01", space="text",
                                              limit=4, filter=ocean()))
    assert len(got.items) == 4 and all(h.payload["category"] == "ocean" for h in got.items)
    item = s.call("GetItem", pb.GetItemRequest(collection=C, item_id="ocean-01"))
    assert item.id == "ocean-01" and item.payload["title"] == "Morning Tide"
    err = s.refused("GetItem", pb.GetItemRequest(collection=C, item_id="nope"))
    assert err.code() == Code.NOT_FOUND and "nope" in err.details()


def test_record_events_history_and_forget(s: Served) -> None:
    batch = events(["gr-ev"], 5)
    got = s.call("RecordEvents", pb.RecordEventsRequest(collection=C, events=batch))
    assert (got.written, got.duplicates, list(got.rejected)) == (5, 0, [])
    again = pb.EventIn(user_id="gr-ev", item_id="ocean-02", type="rating", value=5.0,
                       event_id="e-1", timestamp=1.8e9)
    assert s.call("RecordEvents", pb.RecordEventsRequest(collection=C, events=[again])).written
    dup = s.call("RecordEvents", pb.RecordEventsRequest(collection=C, events=[again]))
    assert (dup.written, dup.duplicates) == (0, 1)
    history = s.call("History", pb.HistoryRequest(collection=C, user_id="gr-ev", limit=3))
    assert [e.item_id for e in history.events][0] == "ocean-02" and len(history.events) == 3
    assert history.events[0].type == "rating" and history.events[0].value == 5.0
    receipt = s.call("ForgetUser", pb.ForgetUserRequest(collection=C, user_id="gr-ev"))
    assert receipt.user_id == "gr-ev" and receipt.events_erased == 6 and receipt.trained_model
    assert not s.call("History", pb.HistoryRequest(collection=C, user_id="gr-ev")).events


def test_stream_events_in_batches_then_train(s: Served) -> None:
    users = [f"gr-train-{i}" for i in range(8)]
    stream = events(users, 8)  # 64 events: more than one batch of max_batch (40)
    stream.insert(10, pb.EventIn(user_id="gr-train-0", item_id="ocean-01", type="teleport"))
    messages = [pb.RecordEventsRequest(collection=C, events=stream[:30]),
                pb.RecordEventsRequest(events=stream[30:])]
    items, before = s.counts()
    got = s.call("StreamEvents", messages)
    assert got.written == 64 and got.duplicates == 0
    assert [(r.index, r.id) for r in got.rejected] == [(10, "ocean-01")]
    assert "type: Input should be" in got.rejected[0].reason
    assert s.counts() == (items, before + 64)
    trained = s.call("Train", pb.TrainRequest(collection=C, settings=TRAIN_SETTINGS), "admin")
    assert trained.version and trained.counts["events"] >= 64 and trained.blend
    info = s.call("CollectionInfo", pb.CollectionInfoRequest(collection=C))
    assert info.HasField("trained_model") and info.trained_model["version"] == trained.version
    rec = s.call("Recommend", pb.RecommendRequest(collection=C, user_id="gr-train-1", n=3))
    assert rec.model_version == trained.version and len(rec.items) == 3


def test_upsert_stream_with_uploads_and_rejections_then_delete(s: Served) -> None:
    image = (SAMPLE / "images" / "forest-01.png").read_bytes()
    messages = [
        pb.UpsertItemsRequest(collection=C, items=[
            pb.ItemIn(id="gr-new-1", title="Night Swell", description="Moonlit waves.",
                      tags=["ocean"], payload={"category": "ocean", "year": 2024})]),
        pb.UpsertItemsRequest(items=[
            pb.ItemIn(title="no id"),
            pb.ItemIn(id="gr-new-2", title="Pines", image_bytes=image,
                      payload={"category": "forest"}),
            pb.ItemIn(id="gr-bad", title="Bad image", image_bytes=b"not an image")]),
    ]
    items, evs = s.counts()
    got = s.call("UpsertItems", messages)
    assert list(got.upserted) == ["gr-new-1", "gr-new-2"]
    assert [r.index for r in got.rejected] == [1, 3]
    assert "id" in got.rejected[0].reason and got.rejected[1].id == "gr-bad"
    assert s.counts() == (items + 2, evs)
    item = s.call("GetItem", pb.GetItemRequest(collection=C, item_id="gr-new-2"))
    assert "image" in plain(item.payload)["modalities"]
    assert plain(s.call("GetItem", pb.GetItemRequest(collection=C, item_id="gr-new-1"))
                 .payload)["year"] == 2024
    gone = s.call("DeleteItems", pb.DeleteItemsRequest(collection=C,
                                                       ids=["gr-new-1", "gr-new-2", "gr-x"]))
    assert sorted(gone.deleted) == ["gr-new-1", "gr-new-2"] and list(gone.missing) == ["gr-x"]
    assert s.counts() == (items, evs)


def test_a_stream_refused_midway_says_how_far_it_got(s: Served) -> None:
    first = events(["gr-mid"], LIMITS["max_batch"])  # exactly one batch: applied at once
    messages = [pb.RecordEventsRequest(collection=C, events=first),
                pb.RecordEventsRequest(collection="shop", events=events(["gr-mid"], 2, 99))]
    items, evs = s.counts()
    err = s.refused("StreamEvents", messages)
    assert err.code() == Code.INVALID_ARGUMENT and "one collection" in err.details()
    assert "before this error, 40 events were recorded" in err.details()
    assert s.counts() == (items, evs + 40)
    again = s.call("StreamEvents", [pb.RecordEventsRequest(collection=C, events=first)])
    assert (again.written, again.duplicates) == (0, 40)  # re-sending the stream is safe


def test_collections_info_and_health(s: Served) -> None:
    assert list(s.call("ListCollections", pb.ListCollectionsRequest()).collections) == [C]
    acme = s.call("ListCollections", pb.ListCollectionsRequest(), "acme")
    assert list(acme.collections) == ["shop"]
    info = s.call("CollectionInfo", pb.CollectionInfoRequest(collection=C), "reader")
    assert info.tenant == "default" and info.points >= 40 and info.vectors["text"].dim > 0
    assert info.payload_indexes["year"] == "integer"
    health = s.call("Health", pb.HealthRequest(), key=None)
    assert health.ready and health.status == "ok"


# -- authentication, scopes, tenants ----------------------------------------------------------
REQUESTS = {  # one valid request per method, for the refusal tests
    "Recommend": pb.RecommendRequest(collection=C, user_id="ana"),
    "RecordEvents": pb.RecordEventsRequest(collection=C, events=events(["gr-auth"], 1)),
    "StreamEvents": [pb.RecordEventsRequest(collection=C, events=events(["gr-auth"], 1))],
    "Search": pb.SearchRequest(collection=C, text="waves"),
    "Similar": pb.SimilarRequest(collection=C, item_id="ocean-01"),
    "GetItem": pb.GetItemRequest(collection=C, item_id="ocean-01"),
    "UpsertItems": [pb.UpsertItemsRequest(collection=C, items=[
        pb.ItemIn(id="ocean-01", title="Overwritten")])],
    "DeleteItems": pb.DeleteItemsRequest(collection=C, ids=["ocean-01"]),
    "ForgetUser": pb.ForgetUserRequest(collection=C, user_id="ana"),
    "History": pb.HistoryRequest(collection=C, user_id="ana"),
    "ListCollections": pb.ListCollectionsRequest(),
    "CollectionInfo": pb.CollectionInfoRequest(collection=C),
    "Train": pb.TrainRequest(collection=C, settings=TRAIN_SETTINGS),
}
WRITES = ["RecordEvents", "StreamEvents", "UpsertItems", "DeleteItems", "ForgetUser", "Train"]


def test_every_method_is_in_the_tables() -> None:
    names = {m.name for m in pb.DESCRIPTOR.services_by_name["Recommendations"].methods}
    assert names == set(REQUESTS) | {"Health"}


@pytest.mark.parametrize("method", sorted(REQUESTS))
def test_no_key_or_a_wrong_key_is_unauthenticated(s: Served, method: str) -> None:
    for key in (None, "mrk_not-a-key"):
        err = s.refused(method, REQUESTS[method], key)
        assert err.code() == Code.UNAUTHENTICATED, (method, key, err.details())
        assert "mrk_" not in err.details()  # the presented key is never echoed


def test_bearer_token_authenticates(s: Served) -> None:
    got = s.stub.ListCollections(pb.ListCollectionsRequest(), metadata=(
        ("authorization", f"Bearer {s.keys['reader']}"),))
    assert list(got.collections) == [C]


def test_missing_scope_is_permission_denied_on_both_protocols(s: Served) -> None:
    before = s.counts()
    for method in WRITES:
        key = "writer" if method == "Train" else "reader"
        err = s.refused(method, REQUESTS[method], key)
        assert err.code() == Code.PERMISSION_DENIED, (method, err.details())
    assert s.rest("POST", f"/v1/collections/{C}/events", "reader", json={
        "events": [{"user_id": "x", "item_id": "ocean-01", "type": "like"}]}).status_code == 403
    assert s.rest("POST", f"/v1/collections/{C}/train", "writer").status_code == 403
    assert s.counts() == before


def test_another_tenant_can_neither_read_nor_change_this_tenants_data(s: Served) -> None:
    before = s.counts()
    history = s.call("History", pb.HistoryRequest(collection=C, user_id="ana"))
    for method, request in REQUESTS.items():
        if method == "ListCollections":
            continue
        err = s.refused(method, request, "acme")
        assert err.code() == Code.NOT_FOUND and "'items' not found" in err.details(), method
    rest = [("POST", "/recommend", {"json": {"user_id": "ana"}}),
            ("GET", "/items/ocean-01", {}), ("GET", "/users/ana/history", {}),
            ("DELETE", "/users/ana", {}), ("POST", "/items/delete", {"json": {"ids": ["x"]}}),
            ("POST", "/events", {"json": {"events": [
                {"user_id": "ana", "item_id": "ocean-01", "type": "like"}]}}),
            ("GET", "", {})]
    for verb, path, kwargs in rest:
        assert s.rest(verb, f"/v1/collections/{C}{path}", "acme", **kwargs).status_code == 404
    assert s.counts() == before
    assert s.call("History", pb.HistoryRequest(collection=C, user_id="ana")) == history


# -- limits and malformed requests ------------------------------------------------------------
def test_oversized_requests_are_refused_and_nothing_is_lost(s: Served) -> None:
    before = s.counts()
    too_many = events(["gr-big"], LIMITS["max_batch"] + 1)
    cases = [
        ("Recommend", pb.RecommendRequest(collection=C, user_id="ana", n=LIMITS["max_n"] + 1),
         Code.INVALID_ARGUMENT, "over the limit of 50"),
        ("Search", pb.SearchRequest(collection=C, text="w" * 501),
         Code.RESOURCE_EXHAUSTED, "text characters"),
        ("RecordEvents", pb.RecordEventsRequest(collection=C, events=too_many),
         Code.RESOURCE_EXHAUSTED, "events per request: 41 is over the limit of 40"),
        ("DeleteItems", pb.DeleteItemsRequest(collection=C, ids=["ocean-01"] * 41),
         Code.RESOURCE_EXHAUSTED, "ids per request"),
        ("UpsertItems", [pb.UpsertItemsRequest(collection=C, items=[pb.ItemIn(
            id="gr-huge", title="x", image_bytes=b"\0" * 250_000)])],
         Code.RESOURCE_EXHAUSTED, "larger than max"),
        ("RecordEvents", pb.RecordEventsRequest(collection=C, events=[pb.EventIn(
            user_id="gr-big", item_id="x" * 250_000, type="like")]),
         Code.RESOURCE_EXHAUSTED, "larger than max"),
    ]
    for method, request, code, words in cases:
        err = s.refused(method, request)
        assert err.code() == code and words in err.details(), (method, err.details())
    assert s.counts() == before


def test_malformed_and_wrongly_typed_requests_are_refused_clearly(s: Served) -> None:
    before = s.counts()
    raw = s.channel.unary_unary("/mosaicrec.v1.Recommendations/Recommend")
    bad = [b"\xff\xff\xff", pb.SearchRequest(collection=C, image=b"x", limit=3,
                                             exclude=["a"]).SerializeToString()]
    for data in bad:
        with pytest.raises(grpc.RpcError) as caught:
            raw(data, metadata=s.md())
        assert caught.value.code() == Code.INVALID_ARGUMENT
        assert "RecommendRequest" in caught.value.details()
    cases = [
        ("Recommend", pb.RecommendRequest(collection=C, user_id="ana", n=0), "n:"),
        ("Recommend", pb.RecommendRequest(collection=C, user_id="ana", diversity=2), "diversity"),
        ("Recommend", pb.RecommendRequest(collection=C, n=3), "user_id"),
        ("Search", pb.SearchRequest(collection=C), "exactly one of text"),
        ("Search", pb.SearchRequest(collection=C, text="x", space="sideways"), "space"),
        ("Search", pb.SearchRequest(collection=C, text="x", filter=pb.Filter(must=[
            pb.Condition(field="year", has_vector="text")])), "has_vector stands alone"),
        ("Search", pb.SearchRequest(collection=C, text="x", filter=pb.Filter(must=[
            pb.Condition(field="colour", match=pb.Scalar(keyword="red"))])), "colour"),
        ("Search", pb.SearchRequest(collection=C, image=b"not an image"), "image"),
        ("RecordEvents", pb.RecordEventsRequest(collection=C, events=[pb.EventIn(
            user_id="u", item_id="ocean-01", type="teleport")]), "type"),
        ("RecordEvents", pb.RecordEventsRequest(collection=C), "events"),
        ("History", pb.HistoryRequest(collection=C, user_id="ana", limit=0), "limit"),
        ("ForgetUser", pb.ForgetUserRequest(collection=C), "user_id"),
        ("Train", pb.TrainRequest(collection=C, settings={"als": {"factors": "many"}}),
         "factors"),
        ("StreamEvents", [], "no events"),
        ("UpsertItems", [pb.UpsertItemsRequest(collection=C, items=[pb.ItemIn(id="a")]),
                         pb.UpsertItemsRequest(collection="shop", items=[pb.ItemIn(id="b")])],
         "one collection"),
    ]
    for method, request, words in cases:
        err = s.refused(method, request, "admin" if method == "Train" else "writer")
        assert err.code() == Code.INVALID_ARGUMENT, (method, err.code(), err.details())
        assert words in err.details(), (method, err.details())
    assert s.counts() == before


def test_internal_errors_are_generic_and_logged(s: Served, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail at /srv/internal/path")

    monkeypatch.setattr(s.service, "similar", broken)
    with caplog.at_level("INFO", logger="mosaicrec.requests"):
        err = s.refused("Similar", REQUESTS["Similar"])
    assert err.code() == Code.INTERNAL and "secret" not in err.details()
    rid = dict(err.trailing_metadata())["x-request-id"]
    logged = [r for r in caplog.records if getattr(r, "fields", {}).get("request_id") == rid]
    assert logged and logged[0].exc_info and "secret" in str(logged[0].exc_info[1])


# -- request ids, metrics, health, reflection -------------------------------------------------
def test_request_ids_are_echoed_and_calls_counted(s: Served) -> None:
    _, call = s.stub.ListCollections.with_call(pb.ListCollectionsRequest(), metadata=(
        *s.md(), ("x-request-id", "trace-123")))
    assert ("x-request-id", "trace-123") in call.trailing_metadata()
    s.refused("GetItem", pb.GetItemRequest(collection=C, item_id="nope"))
    text = s.http.get("/metrics").text
    assert 'endpoint="ListCollections",protocol="grpc",status="OK"' in text
    assert 'endpoint="GetItem",protocol="grpc",status="NOT_FOUND"' in text


def test_health_follows_readiness(s: Served) -> None:
    health = health_pb2_grpc.HealthStub(s.channel)
    for name in ("", "mosaicrec.v1.Recommendations"):
        got = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
        assert got.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as caught:
        health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=10)
    assert caught.value.code() == Code.NOT_FOUND
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=20)
    seen = [next(watch).status]
    with s.service.busy("test: optimising"):
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == \
            health_pb2.HealthCheckResponse.NOT_SERVING
        assert s.call("Health", pb.HealthRequest(), None).reasons == ["test: optimising"]
        seen.append(next(watch).status)
    seen.append(next(watch).status)
    watch.cancel()
    S = health_pb2.HealthCheckResponse
    assert seen == [S.SERVING, S.NOT_SERVING, S.SERVING]
    listed = health.List(health_pb2.HealthListRequest(), timeout=10)
    assert set(listed.statuses) == {"", "mosaicrec.v1.Recommendations"}


def test_reflection_lists_the_services_and_their_files(s: Served) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(s.channel)
    requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="mosaicrec.v1.Recommendations")]
    listed, files = list(stub.ServerReflectionInfo(iter(requests), timeout=10))
    names = {x.name for x in listed.list_services_response.service}
    assert names == {"mosaicrec.v1.Recommendations", "grpc.health.v1.Health",
                     "grpc.reflection.v1alpha.ServerReflection"}
    proto = descriptor_pb2.FileDescriptorProto.FromString(
        files.file_descriptor_response.file_descriptor_proto[0])
    assert proto.package == "mosaicrec.v1" and proto.service[0].name == "Recommendations"


def test_calls_run_concurrently_off_the_event_loop(s: Served) -> None:
    """Slow service work in one call does not hold up another (worker threads)."""
    release = threading.Event()
    original = s.service.collections

    def slow(who: object) -> list[str]:
        if getattr(who, "name", "") == "admin":
            release.wait(10)
        return original(who)  # type: ignore[arg-type]

    s.service.collections = slow  # type: ignore[method-assign]
    try:
        future = s.stub.ListCollections.future(pb.ListCollectionsRequest(), metadata=s.md("admin"))
        time.sleep(0.1)
        t0 = time.perf_counter()
        s.call("GetItem", pb.GetItemRequest(collection=C, item_id="ocean-01"))
        assert time.perf_counter() - t0 < 5 and not future.done()
        release.set()
        assert list(future.result(timeout=10).collections) == [C]
    finally:
        release.set()
        del s.service.collections
