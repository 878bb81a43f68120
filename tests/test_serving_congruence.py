"""REST and gRPC give the same answers: one set of requests sent through both, compared.

Like the store's congruence suite: each case is one request written for each protocol; the
answers must be equal field for field (the messages mirror the schemas, so the field names
match), scores within 1e-5, and a refusal must be the same error class with the HTTP status
and gRPC code that ``serving/errors.py`` pairs. Writes use ids containing the protocol's name
(``cong-rest``, ``cong-grpc``), which the comparison reads as one.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from serving_support import HTTP, SAMPLE, TRAIN_SETTINGS, Served, events, serve

from mosaicrec.serving.grpc import mosaicrec_pb2 as pb
from mosaicrec.serving.grpc.convert import plain

C = f"/v1/collections/{'items'}"
VOLATILE = {"timings_ms", "seconds", "version", "model_version", "created_at", "timings_s"}
ADDRESS = re.compile(r" at 0x[0-9a-f]+")
IMAGE = (SAMPLE / "images" / "ocean-01.png").read_bytes()


@dataclass(frozen=True)
class Case:
    """``rest(p)`` -> (verb, path, httpx kwargs); ``grpc(p)`` -> (method, request); ``p`` is
    "rest" or "grpc", for ids that must differ between the two."""

    id: str
    rest: Callable[[str], tuple[str, str, dict[str, Any]]]
    grpc: Callable[[str], tuple[str, Any]]
    key: str | None = "writer"
    unwrap: str | None = None  # the gRPC field holding what REST returns bare (a list)
    words: list[str] = field(default_factory=list)  # in both error messages


def _events(p: str, n: int = 4) -> list[pb.EventIn]:
    return events([f"cong-{p}"], n)


def _json(msgs: list[Message]) -> list[dict[str, Any]]:
    return [as_dict(m) for m in msgs]


ITEM = {"title": "Night Swell", "description": "Moonlit waves on a rocky shore.",
        "tags": ["ocean"], "payload": {"category": "ocean", "year": 2024}}
FILTER = {"must": [{"field": "category", "match": "ocean"}],
          "must_not": [{"field": "year", "lt": 2016}]}
PB_FILTER = pb.Filter(must=[pb.Condition(field="category", match=pb.Scalar(keyword="ocean"))],
                      must_not=[pb.Condition(field="year", lt=2016)])

CASES = [
    Case("recommend",
         lambda p: ("POST", f"{C}/recommend", {"json": {"user_id": "ana", "n": 6}}),
         lambda p: ("Recommend", pb.RecommendRequest(collection="items", user_id="ana", n=6))),
    Case("recommend-steered",
         lambda p: ("POST", f"{C}/recommend", {"json": {
             "user_id": "ana", "n": 4, "filter": FILTER, "diversity": 0.4,
             "exclude": ["ocean-03"], "prompt": "storm at sea", "explain": False}}),
         lambda p: ("Recommend", pb.RecommendRequest(
             collection="items", user_id="ana", n=4, filter=PB_FILTER, diversity=0.4,
             exclude=["ocean-03"], prompt="storm at sea", explain=False))),
    Case("search-text",
         lambda p: ("POST", f"{C}/search", {"json": {"text": "waves on a beach", "limit": 5}}),
         lambda p: ("Search", pb.SearchRequest(collection="items", text="waves on a beach",
                                               limit=5))),
    Case("search-text-space-filter",
         lambda p: ("POST", f"{C}/search", {"json": {
             "text": "a quiet forest", "space": "text", "limit": 5, "filter": FILTER}}),
         lambda p: ("Search", pb.SearchRequest(collection="items", text="a quiet forest",
                                               space="text", limit=5, filter=PB_FILTER))),
    Case("search-image",
         lambda p: ("POST", f"{C}/search", {"json": {
             "image": base64.b64encode(IMAGE).decode(), "space": "image", "limit": 4}}),
         lambda p: ("Search", pb.SearchRequest(collection="items", image=IMAGE, space="image",
                                               limit=4))),
    Case("search-item",
         lambda p: ("POST", f"{C}/search", {"json": {"item_id": "city-02", "limit": 4}}),
         lambda p: ("Search", pb.SearchRequest(collection="items", item_id="city-02",
                                               limit=4))),
    Case("similar",
         lambda p: ("GET", f"{C}/items/ocean-01/similar", {"params": {"space": "audio",
                                                                      "limit": 5}}),
         lambda p: ("Similar", pb.SimilarRequest(collection="items", item_id="ocean-01",
                                                 space="audio", limit=5))),
    Case("get-item",
         lambda p: ("GET", f"{C}/items/forest-02", {}),
         lambda p: ("GetItem", pb.GetItemRequest(collection="items", item_id="forest-02"))),
    Case("info",
         lambda p: ("GET", C, {}),
         lambda p: ("CollectionInfo", pb.CollectionInfoRequest(collection="items"))),
    Case("collections",
         lambda p: ("GET", "/v1/collections", {}),
         lambda p: ("ListCollections", pb.ListCollectionsRequest()), unwrap="collections"),
    Case("record-events",
         lambda p: ("POST", f"{C}/events", {"json": {"events": _json(_events(p))}}),
         lambda p: ("RecordEvents", pb.RecordEventsRequest(collection="items",
                                                           events=_events(p)))),
    Case("record-events-again",  # the same events with ids, twice: duplicates counted
         lambda p: ("POST", f"{C}/events", {"json": {"events": [
             {"user_id": f"cong-{p}", "item_id": "city-01", "type": "rating", "value": 4.5,
              "event_id": f"e-{p}", "timestamp": 1.8e9}] * 2}}),
         lambda p: ("RecordEvents", pb.RecordEventsRequest(collection="items", events=[
             pb.EventIn(user_id=f"cong-{p}", item_id="city-01", type="rating", value=4.5,
                        event_id=f"e-{p}", timestamp=1.8e9)] * 2))),
    Case("history",
         lambda p: ("GET", f"{C}/users/cong-{p}/history", {"params": {"limit": 3}}),
         lambda p: ("History", pb.HistoryRequest(collection="items", user_id=f"cong-{p}",
                                                 limit=3)), unwrap="events"),
    Case("recommend-after-events",
         lambda p: ("POST", f"{C}/recommend", {"json": {"user_id": f"cong-{p}", "n": 5}}),
         lambda p: ("Recommend", pb.RecommendRequest(collection="items",
                                                     user_id=f"cong-{p}", n=5))),
    Case("forget",
         lambda p: ("DELETE", f"{C}/users/cong-{p}", {}),
         lambda p: ("ForgetUser", pb.ForgetUserRequest(collection="items",
                                                       user_id=f"cong-{p}"))),
    Case("history-after-forget",
         lambda p: ("GET", f"{C}/users/cong-{p}/history", {}),
         lambda p: ("History", pb.HistoryRequest(collection="items", user_id=f"cong-{p}")),
         unwrap="events"),
    Case("upsert",
         lambda p: ("PUT", f"{C}/items", {"json": {"items": [
             {"id": f"cong-{p}-1", **ITEM},
             {"id": f"cong-{p}-2", "title": "Uploaded",
              "image_bytes": base64.b64encode(IMAGE).decode()},
             {"id": f"cong-{p}-3", "title": "Broken", "image_bytes": "bm9wZQ=="}]}}),
         lambda p: ("UpsertItems", [pb.UpsertItemsRequest(collection="items", items=[
             pb.ItemIn(id=f"cong-{p}-1", **ITEM),
             pb.ItemIn(id=f"cong-{p}-2", title="Uploaded", image_bytes=IMAGE),
             pb.ItemIn(id=f"cong-{p}-3", title="Broken", image_bytes=b"nope")])])),
    Case("get-upserted",
         lambda p: ("GET", f"{C}/items/cong-{p}-1", {}),
         lambda p: ("GetItem", pb.GetItemRequest(collection="items", item_id=f"cong-{p}-1"))),
    Case("delete",
         lambda p: ("POST", f"{C}/items/delete", {"json": {
             "ids": [f"cong-{p}-1", f"cong-{p}-2", "cong-missing"]}}),
         lambda p: ("DeleteItems", pb.DeleteItemsRequest(
             collection="items", ids=[f"cong-{p}-1", f"cong-{p}-2", "cong-missing"]))),
    Case("health",
         lambda p: ("GET", "/health/ready", {}),
         lambda p: ("Health", pb.HealthRequest()), key=None),
    # refusals: same class, paired status and code
    Case("no-key",
         lambda p: ("POST", f"{C}/recommend", {"json": {"user_id": "ana"}}),
         lambda p: ("Recommend", pb.RecommendRequest(collection="items", user_id="ana")),
         key=None),
    Case("wrong-scope",
         lambda p: ("DELETE", f"{C}/users/ana", {}),
         lambda p: ("ForgetUser", pb.ForgetUserRequest(collection="items", user_id="ana")),
         key="reader", words=["'write' scope"]),
    Case("other-tenant",
         lambda p: ("GET", f"{C}/items/ocean-01", {}),
         lambda p: ("GetItem", pb.GetItemRequest(collection="items", item_id="ocean-01")),
         key="acme", words=["collection 'items' not found"]),
    Case("unknown-collection",
         lambda p: ("GET", "/v1/collections/shop", {}),
         lambda p: ("CollectionInfo", pb.CollectionInfoRequest(collection="shop"))),
    Case("unknown-item",
         lambda p: ("GET", f"{C}/items/nope", {}),
         lambda p: ("GetItem", pb.GetItemRequest(collection="items", item_id="nope")),
         words=["unknown item 'nope'"]),
    Case("n-zero",
         lambda p: ("POST", f"{C}/recommend", {"json": {"user_id": "ana", "n": 0}}),
         lambda p: ("Recommend", pb.RecommendRequest(collection="items", user_id="ana", n=0)),
         words=["n: Input should be greater than or equal to 1"]),
    Case("n-over-limit",
         lambda p: ("POST", f"{C}/recommend", {"json": {"user_id": "ana", "n": 51}}),
         lambda p: ("Recommend", pb.RecommendRequest(collection="items", user_id="ana",
                                                     n=51)), words=["over the limit of 50"]),
    Case("batch-over-limit",
         lambda p: ("POST", f"{C}/events", {"json": {"events": _json(events(["big"], 41))}}),
         lambda p: ("RecordEvents", pb.RecordEventsRequest(collection="items",
                                                           events=events(["big"], 41))),
         words=["events per request: 41 is over the limit of 40"]),
    Case("bad-event-type",
         lambda p: ("POST", f"{C}/events", {"json": {"events": [
             {"user_id": "u", "item_id": "ocean-01", "type": "teleport"}]}}),
         lambda p: ("RecordEvents", pb.RecordEventsRequest(collection="items", events=[
             pb.EventIn(user_id="u", item_id="ocean-01", type="teleport")])),
         words=["type: Input should be"]),
    Case("no-query",
         lambda p: ("POST", f"{C}/search", {"json": {"limit": 3}}),
         lambda p: ("Search", pb.SearchRequest(collection="items", limit=3)),
         words=["give exactly one of text, image, audio or item_id"]),
    Case("unknown-space",
         lambda p: ("POST", f"{C}/search", {"json": {"text": "x", "space": "smell"}}),
         lambda p: ("Search", pb.SearchRequest(collection="items", text="x", space="smell")),
         words=["space"]),
    Case("unknown-filter-field",
         lambda p: ("POST", f"{C}/search", {"json": {"text": "x", "filter": {
             "must": [{"field": "colour", "match": "red"}]}}}),
         lambda p: ("Search", pb.SearchRequest(collection="items", text="x", filter=pb.Filter(
             must=[pb.Condition(field="colour", match=pb.Scalar(keyword="red"))]))),
         words=["unknown payload field 'colour'"]),
    Case("text-too-long",
         lambda p: ("POST", f"{C}/search", {"json": {"text": "w" * 501}}),
         lambda p: ("Search", pb.SearchRequest(collection="items", text="w" * 501)),
         words=["text characters: 501 is over the limit of 500"]),
    Case("train-needs-admin",
         lambda p: ("POST", f"{C}/train", {"json": {"settings": TRAIN_SETTINGS}}),
         lambda p: ("Train", pb.TrainRequest(collection="items", settings=TRAIN_SETTINGS))),
]


@pytest.fixture(scope="module")
def s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("congruence")) as served:
        yield served


def as_dict(msg: Message) -> dict[str, Any]:
    """Every field of ``msg`` as JSON-like Python: unset optional fields as None."""
    out: dict[str, Any] = {}
    for f in msg.DESCRIPTOR.fields:
        value = getattr(msg, f.name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            value = {k: _value(v) for k, v in value.items()}
        elif f.is_repeated:
            value = [_value(v) for v in value]
        elif f.has_presence and not msg.HasField(f.name):
            value = None
        else:
            value = _value(value)
        out[f.name] = value
    return out


def _value(value: Any) -> Any:
    if isinstance(value, Message):
        return plain(value) if value.DESCRIPTOR.name in ("Struct", "ListValue") \
            else as_dict(value)
    return value


def same(rest: Any, grpc_: Any, where: str = "") -> None:
    if isinstance(rest, dict):
        assert isinstance(grpc_, dict) and set(rest) == set(grpc_), \
            f"{where}: fields {sorted(rest)} (REST) != {sorted(grpc_)} (gRPC)"
        for k in rest:
            if k not in VOLATILE:
                same(rest[k], grpc_[k], f"{where}.{k}")
    elif isinstance(rest, list):
        assert isinstance(grpc_, list) and len(rest) == len(grpc_), f"{where}: lengths differ"
        for i, (a, b) in enumerate(zip(rest, grpc_, strict=True)):
            same(a, b, f"{where}[{i}]")
    elif isinstance(rest, float) or isinstance(grpc_, float):
        assert grpc_ == pytest.approx(rest, abs=1e-5), f"{where}: {rest} != {grpc_}"
    elif isinstance(rest, str):  # ids name their protocol; repr()s name an address
        a, b = (ADDRESS.sub("", x) for x in (rest.replace("-rest", "-P"),
                                             grpc_.replace("-grpc", "-P")))
        assert a == b, f"{where}: {rest!r} != {grpc_!r}"
    else:
        assert rest == grpc_, f"{where}: {rest!r} != {grpc_!r}"


def test_every_rpc_has_a_case() -> None:
    methods = {m.name for m in pb.DESCRIPTOR.services_by_name["Recommendations"].methods}
    covered = {case.grpc("grpc")[0] for case in CASES} | {"StreamEvents", "Train"}
    assert methods == covered  # the stream and training: the tests below


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rest_and_grpc_agree(s: Served, case: Case) -> None:
    verb, path, kwargs = case.rest("rest")
    rest = s.rest(verb, path, case.key, **kwargs)
    method, request = case.grpc("grpc")
    try:
        answer: Any = as_dict(s.call(method, request, case.key))
    except grpc.RpcError as err:
        assert rest.status_code == HTTP[err.code()], (rest.status_code, err.code(), rest.text)
        body = rest.json()["error"]
        assert body["type"] == dict(err.trailing_metadata())["x-error-type"]
        for words in case.words:
            assert words in body["message"] and words in err.details(), \
                (words, body["message"], err.details())
        return
    assert rest.status_code == 200, (rest.status_code, rest.text)
    same(rest.json(), answer[case.unwrap] if case.unwrap else answer, case.id)


def test_streams_agree_with_their_rest_batches(s: Served) -> None:
    """StreamEvents over two messages == one REST batch; an upsert stream == one PUT."""
    def stream(p: str) -> list[pb.EventIn]:
        return [*events([f"cong-stream-{p}"], 5),
                pb.EventIn(user_id=f"cong-stream-{p}", item_id="ocean-01", type="like",
                           timestamp=float("nan"))]

    rest = s.rest("POST", f"{C}/events", json={"events": _json(stream("rest"))[:5] + [
        {"user_id": "cong-stream-rest", "item_id": "ocean-01", "type": "like",
         "timestamp": "NaN"}]})
    got = s.call("StreamEvents", [pb.RecordEventsRequest(collection="items",
                                                         events=stream("grpc")[:2]),
                                  pb.RecordEventsRequest(events=stream("grpc")[2:])])
    assert got.written == 5 and [(r.index, r.id) for r in got.rejected] == [(5, "ocean-01")]
    same(rest.json(), as_dict(got), "stream-events")


def test_training_agrees(s: Served) -> None:
    s.call("RecordEvents", pb.RecordEventsRequest(
        collection="items", events=events([f"cong-train-{i}" for i in range(5)], 8)))
    rest = s.rest("POST", f"{C}/train", "admin", json={"settings": TRAIN_SETTINGS})
    got = s.call("Train", pb.TrainRequest(collection="items", settings=TRAIN_SETTINGS),
                 "admin")
    same(rest.json(), as_dict(got), "train")
    info = s.rest("GET", C, "reader").json()
    same(info, as_dict(s.call("CollectionInfo", pb.CollectionInfoRequest(collection="items"))),
         "info-after-training")
