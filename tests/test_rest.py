"""REST specifics over real HTTP on 127.0.0.1 (ephemeral port): the error body, request ids,
body and upload limits, readiness, metrics, OpenAPI examples, uploads, and a bounded
schemathesis run that must find no 5xx. The operations themselves, and their agreement with
gRPC, are in ``test_serving_congruence.py``."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from mosaicrec.serving.auth import ADMIN
from mosaicrec.serving.server import ServerThread
from mosaicrec.serving.service import RecommendationService
from mosaicrec.serving.settings import load_settings

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("rest")
    settings = load_settings(data_dir=root, profile="tiny",
                             limits={"max_request_bytes": 20_000, "max_upload_bytes": 50_000})
    service = RecommendationService(settings)
    keys = {scope: service.keys.create(scope, "default", [scope])
            for scope in ("read", "write", "admin")}
    service.index_catalogue(ADMIN, "items", SAMPLE / "catalogue.csv", profile="tiny")
    with ServerThread(service, grpc=False) as server:
        client = httpx.Client(base_url=server.rest_url, timeout=60)
        yield service, client, keys
        client.close()


def test_error_body_request_id_and_auth(served):
    _, client, keys = served
    r = client.post("/v1/collections/items/recommend", json={"user_id": "ana"},
                    headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 401 and r.headers["X-Request-ID"] == "abc-123"
    assert r.json() == {"error": {"type": "UnauthenticatedError", "message": r.json()["error"][
        "message"]}, "request_id": "abc-123"}
    assert keys["read"] not in r.text
    r = client.post("/v1/collections/items/events", headers={"X-API-Key": keys["read"]},
                    json={"events": [{"user_id": "u", "item_id": "ocean-01", "type": "like"}]})
    assert r.status_code == 403 and "write" in r.json()["error"]["message"]
    bearer = {"Authorization": f"Bearer {keys['read']}"}
    assert client.get("/v1/collections", headers=bearer).json() == ["items"]


def test_oversized_bodies_are_refused_whole_even_when_chunked(served):
    service, client, keys = served
    before = service.collection(ADMIN, "items", "read").events.count()
    events = [{"user_id": f"u{i}", "item_id": "ocean-01", "type": "like"} for i in range(400)]
    r = client.post("/v1/collections/items/events", json={"events": events},
                    headers={"X-API-Key": keys["write"]})
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]

    def chunks():
        body = b'{"events": [' + b",".join(
            b'{"user_id": "c", "item_id": "ocean-01", "type": "like"}' for _ in range(400)) + b"]}"
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000]

    r = client.post("/v1/collections/items/events", content=chunks(),
                    headers={"X-API-Key": keys["write"], "Content-Type": "application/json"})
    assert r.status_code == 413
    assert service.collection(ADMIN, "items", "read").events.count() == before


def test_malformed_and_wrongly_typed_requests(served):
    _, client, keys = served
    h = {"X-API-Key": keys["read"], "Content-Type": "application/json"}
    r = client.post("/v1/collections/items/recommend", content=b"{not json", headers=h)
    assert r.status_code == 400 and r.json()["error"]["type"] == "RequestError"
    r = client.post("/v1/collections/items/recommend", json={"user_id": "a", "n": "ten"},
                    headers=h)
    assert r.status_code == 400 and "n" in r.json()["error"]["message"]
    r = client.post("/v1/collections/items/search", json={"text": "x", "item_id": "y"},
                    headers=h)
    assert r.status_code == 400 and "exactly one" in r.json()["error"]["message"]
    r = client.post("/v1/collections/items/search", headers=h,
                    json={"text": "x", "filter": {"must": [{"field": "nope", "match": 1}]}})
    assert r.status_code == 400 and "nope" in r.json()["error"]["message"]


def test_uploads_are_checked_before_any_work(served):
    service, client, keys = served
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(buf, format="PNG")
    r = client.post("/v1/collections/items/search/upload?kind=image&space=image&limit=3",
                    files={"file": ("q.png", buf.getvalue(), "image/png")},
                    headers={"X-API-Key": keys["read"]})
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    r = client.post("/v1/collections/items/search/upload?kind=image",
                    files={"file": ("q.png", b"not an image at all", "image/png")},
                    headers={"X-API-Key": keys["read"]})
    assert r.status_code == 400 and "image" in r.json()["error"]["message"].lower()
    before = service.collection(ADMIN, "items", "read").store.count()
    r = client.put("/v1/collections/items/items", headers={"X-API-Key": keys["write"]},
                   json={"items": [{"id": "broken", "title": "Broken",
                                    "image_bytes": "bm90IGFuIGltYWdl"}]})
    assert r.status_code == 200 and r.json()["upserted"] == []
    assert r.json()["rejected"][0]["id"] == "broken"
    assert service.collection(ADMIN, "items", "read").store.count() == before


def test_a_repeated_recommendation_comes_from_the_cache_on_the_event_loop(served, monkeypatch):
    service, client, keys = served
    threads: list[str] = []
    original = service.recommend

    def spy(*args):
        threads.append("computed")
        return original(*args)

    monkeypatch.setattr(service, "recommend", spy)
    headers = {"X-API-Key": keys["read"]}
    first = client.get("/v1/collections/items/users/ana/recommendations?n=3", headers=headers)
    again = client.post("/v1/collections/items/recommend", headers=headers,
                        json={"user_id": "ana", "n": 3})
    assert first.status_code == again.status_code == 200
    assert "history" in first.json()["timings_ms"] and threads == ["computed"]
    assert again.json()["timings_ms"] == {"cached": 0.0}
    assert [i["id"] for i in again.json()["items"]] == [i["id"] for i in first.json()["items"]]


def test_explanations_come_only_when_the_request_asks_for_them(served):
    _, client, keys = served
    headers, url = {"X-API-Key": keys["read"]}, "/v1/collections/items/recommend"
    bare = client.post(url, headers=headers, json={"user_id": "ana", "n": 3, "explain": False})
    full = client.post(url, headers=headers, json={"user_id": "ana", "n": 3})
    assert bare.status_code == full.status_code == 200
    assert [i["id"] for i in bare.json()["items"]] == [i["id"] for i in full.json()["items"]]
    assert all(i["explanation"] is None for i in bare.json()["items"])
    assert all(i["explanation"]["sentence"] for i in full.json()["items"])


def test_readiness_follows_the_service(served):
    service, client, _ = served
    assert client.get("/health/ready").status_code == 200
    release = threading.Event()
    with service.busy("optimizing the index"):
        r = client.get("/health/ready")
        assert r.status_code == 503 and r.json()["reasons"] == ["optimizing the index"]
        assert client.get("/health/live").status_code == 200
    release.set()
    assert client.get("/health/ready").json()["ready"] is True


def test_metrics_and_openapi(served):
    _, client, keys = served
    client.post("/v1/collections/items/recommend", json={"user_id": "nobody", "n": 3},
                headers={"X-API-Key": keys["read"]})
    text = client.get("/metrics").text
    assert 'mosaicrec_requests_total{endpoint="/v1/collections/{collection}/recommend"' in text
    assert "mosaicrec_recommend_stage_seconds_bucket" in text
    assert 'mosaicrec_collection_points{collection="items",tenant="default"} 40.0' in text
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/collections/{collection}/recommend"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert "RecommendRequest" in str(schema) and "examples" in str(spec["components"])


def test_schemathesis_finds_no_server_error(served):
    """A bounded property-based run over the OpenAPI (loopback, fixed example count)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    _, client, keys = served
    schema = schemathesis.openapi.from_url(f"{client.base_url}/openapi.json")
    failures: list[str] = []
    statuses: list[int] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    for operation in operations:
        if "train" in operation.path:  # minutes per call; covered in the serving tests
            continue

        @settings(max_examples=8, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call(base_url=str(client.base_url),
                                 headers={"X-API-Key": keys["admin"]})
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.operation.label}: {response.status_code} "
                                f"{response.text[:200]}")

        check()
    assert len(operations) >= 12 and not failures, failures[:3]
    assert len(statuses) >= 50 and {200, 400} <= set(statuses)  # it did explore
