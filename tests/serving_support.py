"""A served sample collection for the REST and gRPC tests (imported by their modules).

:func:`serve` builds a service on a tmp data dir with the tiny encoder profile, two tenants
(``default`` with ``items``, ``acme`` with ``shop``), one key per role, the sample catalogue
indexed into ``items``, and runs REST and gRPC on 127.0.0.1 ephemeral ports. Limits are small
so that the limit tests send small requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx

from mosaicrec.serving.auth import ADMIN, Principal
from mosaicrec.serving.grpc import mosaicrec_pb2 as pb
from mosaicrec.serving.grpc import mosaicrec_pb2_grpc as pb_grpc
from mosaicrec.serving.server import ServerThread
from mosaicrec.serving.service import RecommendationService
from mosaicrec.serving.settings import load_settings

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
LIMITS = {"max_n": 50, "max_batch": 40, "max_request_bytes": 200_000, "max_text_chars": 500}
ROLES = {  # key name -> (tenant, scopes)
    "reader": ("default", ["read"]),
    "writer": ("default", ["read", "write"]),
    "admin": ("default", ["admin"]),
    "acme": ("acme", ["read", "write", "admin"]),
}
TRAIN_SETTINGS = {
    "ease_lams": [10.0], "ease_half_lives": [5.0], "als": {"factors": 4, "iterations": 3},
    "sequence": {"dim": 8, "epochs": 2, "max_len": 20},
    "blend_grid": {"sequence": [1.0], "popularity": [0.0], "new_item": [0.5]},
    "content_map": {"spaces": ["text"], "ridges": [1.0], "folds": 2},
    "min_events": 4, "max_tuning_users": 50,
}
# gRPC status <-> HTTP status, as serving/errors.py maps them
HTTP = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.UNAUTHENTICATED: 401,
        grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 413, grpc.StatusCode.FAILED_PRECONDITION: 409,
        grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.INTERNAL: 500}


@dataclass
class Served:
    service: RecommendationService
    server: ServerThread
    keys: dict[str, str]
    channel: grpc.Channel
    stub: pb_grpc.RecommendationsStub
    http: httpx.Client

    def md(self, key: str | None = "writer") -> tuple[tuple[str, str], ...]:
        return () if key is None else (("x-api-key", self.keys.get(key, key)),)

    def call(self, method: str, request: Any, key: str | None = "writer") -> Any:
        """A gRPC call (a list of messages for the client-streaming methods)."""
        rpc = getattr(self.stub, method)
        return rpc(iter(request) if isinstance(request, list) else request,
                   metadata=self.md(key), timeout=60)

    def refused(self, method: str, request: Any, key: str | None = "writer") -> grpc.RpcError:
        try:
            self.call(method, request, key)
        except grpc.RpcError as err:
            return err
        raise AssertionError(f"{method} was not refused")

    def rest(self, verb: str, path: str, key: str | None = "writer",
             **kwargs: Any) -> httpx.Response:
        headers = {} if key is None else {"x-api-key": self.keys.get(key, key)}
        return self.http.request(verb, path, headers=headers, **kwargs)

    def counts(self, tenant: str = "default", name: str = "items") -> tuple[int, int]:
        """(items, events) of a collection, read directly from the service."""
        info = self.service.info(Principal("test", tenant, frozenset({"read"})), name)
        return info.points, info.events


@contextmanager
def serve(tmp: Path) -> Iterator[Served]:
    settings = load_settings(data_dir=tmp, profile="tiny", limits=LIMITS,
                             tenants={"default": ["items"], "acme": ["shop"]})
    service = RecommendationService(settings)
    keys = {name: service.keys.create(name, tenant, scopes)  # type: ignore[arg-type]
            for name, (tenant, scopes) in ROLES.items()}
    service.index_catalogue(ADMIN, "items", SAMPLE / "catalogue.csv", profile="tiny")
    server = ServerThread(service).start()
    channel = grpc.insecure_channel(server.grpc_target)
    try:
        with httpx.Client(base_url=server.rest_url, timeout=60) as http:
            yield Served(service, server, keys, channel,
                         pb_grpc.RecommendationsStub(channel), http)
    finally:
        channel.close()
        server.stop()
        service.close()


def events(users: list[str], per_user: int, start: int = 0) -> list[pb.EventIn]:
    """Deterministic likes and clicks over the sample items (ocean, forest, city...)."""
    ids = [line.split(",", 1)[0] for line in
           (SAMPLE / "catalogue.csv").read_text().splitlines()[1:]]
    out = []
    for u, user in enumerate(users):
        for i in range(per_user):
            item = ids[(u * 7 + i * 3 + start) % len(ids)]
            out.append(pb.EventIn(user_id=user, item_id=item,
                                  type="like" if i % 3 else "click",
                                  timestamp=1.7e9 + u * 1000 + i * 60 + start))
    return out
