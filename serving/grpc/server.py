"""gRPC adapter (``grpc.aio``) over :class:`~mosaicrec.serving.service.RecommendationService`.

Each RPC of ``mosaicrec.v1.Recommendations`` is one service call (the streaming ones: one per
batch) run in a worker thread, so encoder and store work never blocks the event loop that also
serves REST. The caller comes from metadata (``x-api-key`` or ``authorization: Bearer``);
errors map to codes in :mod:`mosaicrec.serving.errors` only (anything not a mosaicrec error is
INTERNAL with a generic message, logged with its traceback); every call is counted, timed and
logged with its request id (metadata ``x-request-id`` or a new one, returned in the trailing
metadata). Requests over ``limits.max_request_bytes`` are refused by gRPC itself
(RESOURCE_EXHAUSTED). ``grpc.health.v1.Health`` reports the service's readiness as it is at
each call, and server reflection lists the three services.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2_grpc
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE
from grpc_reflection.v1alpha import reflection

from mosaicrec.errors import ConfigError, MosaicError, RequestError
from mosaicrec.serving import schemas as s
from mosaicrec.serving.auth import Principal
from mosaicrec.serving.errors import error_body, grpc_code
from mosaicrec.serving.grpc import convert as c
from mosaicrec.serving.grpc import mosaicrec_pb2 as pb
from mosaicrec.serving.grpc.health import Health
from mosaicrec.serving.observability import Metrics, log_request, new_request_id
from mosaicrec.serving.service import RecommendationService

__all__ = ["SERVICE_NAME", "create_grpc_server"]

SERVICE = pb.DESCRIPTOR.services_by_name["Recommendations"]
SERVICE_NAME = SERVICE.full_name
Svc = RecommendationService
Unary = Callable[[Svc, Principal, Any], Message]

# One service call per unary RPC: (service, caller, request message) -> response message.
UNARY: dict[str, Unary] = {
    "Recommend": lambda svc, who, r: c.message(pb.RecommendResponse, svc.recommend(
        who, r.collection, c.model(r, s.RecommendRequest))),
    "RecordEvents": lambda svc, who, r: c.message(pb.RecordEventsResponse, svc.record_events(
        who, r.collection, c.model(r, s.RecordEventsRequest))),
    "Search": lambda svc, who, r: c.message(pb.SearchResponse, svc.search(
        who, r.collection, c.model(r, s.SearchQuery))),
    "Similar": lambda svc, who, r: c.message(pb.SearchResponse, svc.similar(
        who, r.collection, c.model(r, s.SimilarRequest))),
    "GetItem": lambda svc, who, r: c.message(pb.ScoredItem, svc.item(
        who, r.collection, c.required(r, "item_id"))),
    "DeleteItems": lambda svc, who, r: c.message(pb.DeleteItemsResponse, svc.delete_items(
        who, r.collection, c.model(r, s.DeleteItemsRequest))),
    "ForgetUser": lambda svc, who, r: c.message(pb.ForgetReceipt, svc.forget_user(
        who, r.collection, c.required(r, "user_id"))),
    "History": lambda svc, who, r: c.history_out(svc.history(
        who, r.collection, c.required(r, "user_id"), c.limit(r, 50))),
    "ListCollections": lambda svc, who, r: pb.ListCollectionsResponse(
        collections=svc.collections(who)),
    "CollectionInfo": lambda svc, who, r: c.message(pb.CollectionInfoResponse, svc.info(
        who, r.collection)),
    "Train": lambda svc, who, r: c.message(pb.TrainResponse, svc.train(
        who, r.collection, c.model(r, s.TrainRequest))),
    "Health": lambda svc, who, r: c.message(pb.HealthResponse, svc.health()),
}
NO_KEY = {"Health"}  # like REST's /health/*
# Answered on the event loop when the service has the answer at hand (None: it has not), so a
# cached list costs no worker-thread hop; anything else goes to UNARY in a worker thread.
QUICK: dict[str, Callable[[Svc, Principal, Any], Message | None]] = {
    "Recommend": lambda svc, who, r: c.maybe_message(pb.RecommendResponse, svc.recommend_cached(
        who, r.collection, c.model(r, s.RecommendRequest))),
}


def create_grpc_server(service: Svc, address: str, metrics: Metrics,
                       ) -> tuple[grpc.aio.Server, int]:
    """A ``grpc.aio`` server (not started) on ``address`` (``host:0``: an ephemeral port);
    returns it and the port it bound."""
    options = [("grpc.max_receive_message_length", service.settings.limits.max_request_bytes),
               ("grpc.so_reuseport", 0)]  # a second server on a busy port fails, not shares
    server = grpc.aio.server(options=options)
    handlers = Adapter(service, metrics).handlers()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME,
                                                                          handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
    health_pb2_grpc.add_HealthServicer_to_server(Health(service), server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, HEALTH_SERVICE, reflection.SERVICE_NAME), server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as err:
        raise ConfigError(f"cannot serve gRPC on {address}: {err}") from None
    return server, port


class Adapter:
    """The RPC handlers: authentication, error mapping, metrics and logs around each call."""

    def __init__(self, service: Svc, metrics: Metrics) -> None:
        self.service, self.metrics = service, metrics

    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        out = {}
        stream = {"UpsertItems": self._upsert, "StreamEvents": self._events}
        for method in SERVICE.methods:
            request, response = (getattr(pb, method.input_type.name),
                                 getattr(pb, method.output_type.name))
            options = {"request_deserializer": _parser(request),
                       "response_serializer": response.SerializeToString}
            if method.client_streaming:
                out[method.name] = grpc.stream_unary_rpc_method_handler(
                    self._streaming(method.name, stream[method.name]), **options)
            else:
                out[method.name] = grpc.unary_unary_rpc_method_handler(
                    self._unary(method.name, UNARY[method.name]), **options)
        return out

    def _unary(self, name: str, call: Unary) -> Callable[..., Awaitable[Message]]:
        quick = QUICK.get(name)

        async def handler(request: Any, context: grpc.aio.ServicerContext) -> Message:
            async def work(who: Principal) -> Message:
                if isinstance(request, Exception):  # could not be parsed
                    raise request
                answer = quick(self.service, who, request) if quick is not None else None
                if answer is not None:
                    return answer
                return await asyncio.to_thread(call, self.service, who, request)

            return await self._handle(name, context, work, auth=name not in NO_KEY)

        return handler

    def _streaming(self, name: str, consume: Callable[[Principal, AsyncIterator[Any]],
                                                        Awaitable[Message]],
                   ) -> Callable[..., Awaitable[Message]]:
        async def handler(requests: AsyncIterator[Any],
                          context: grpc.aio.ServicerContext) -> Message:
            return await self._handle(name, context, lambda who: consume(who, requests))

        return handler

    async def _handle(self, name: str, context: grpc.aio.ServicerContext,
                      work: Callable[[Principal], Awaitable[Message]], *,
                      auth: bool = True) -> Message:
        started = time.perf_counter()
        metadata = {k: v for k, v in context.invocation_metadata() or ()
                    if isinstance(v, str)}
        rid = new_request_id(metadata.get("x-request-id"))
        trailing: list[tuple[str, str]] = [("x-request-id", rid)]
        tenant, error, result = None, None, None
        try:
            who = self.service.authenticate(_key(metadata)) if auth else _NOBODY
            tenant = who.tenant if auth else None
            result = await work(who)
            code = grpc.StatusCode.OK
        except asyncio.CancelledError:  # the client went away
            self._done(name, "CANCELLED", rid, started, tenant, None)
            raise
        except Exception as err:
            error, code = err, grpc_code(err)
        self._done(name, code.name, rid, started, tenant, error)
        if error is not None:
            body = error_body(error, rid)["error"]
            message = str(body["message"])
            if isinstance(error, MosaicError):
                message = " ".join([message, *getattr(error, "__notes__", ())])
            trailing.append(("x-error-type", str(body["type"])))
            await context.abort(code, message, tuple(trailing))
        context.set_trailing_metadata(tuple(trailing))
        return result

    def _done(self, name: str, code: str, rid: str, started: float, tenant: str | None,
              error: BaseException | None) -> None:
        self.metrics.observe("grpc", name, code, time.perf_counter() - started)
        log_request("grpc", rid, name, code, started, tenant=tenant, error=error)

    # -- client streams: elements validated one by one, applied in batches as they arrive ---
    async def _upsert(self, who: Principal, requests: AsyncIterator[Any]) -> Message:
        upserted: list[str] = []

        def apply(name: str, batch: list[Any]) -> Any:
            response = self.service.upsert_items(who, name, s.UpsertItemsRequest(items=batch))
            upserted.extend(response.upserted)
            return response

        rejected = await self._batches(who, requests, "items", s.ItemIn, "id", apply,
                                       lambda: f"{len(upserted)} items were upserted")
        return c.message(pb.UpsertItemsResponse,
                         s.UpsertItemsResponse(upserted=upserted, rejected=rejected))

    async def _events(self, who: Principal, requests: AsyncIterator[Any]) -> Message:
        counts = {"written": 0, "duplicates": 0}

        def apply(name: str, batch: list[Any]) -> Any:
            response = self.service.record_events(who, name,
                                                  s.RecordEventsRequest(events=batch))
            counts["written"] += response.written
            counts["duplicates"] += response.duplicates
            return response

        rejected = await self._batches(who, requests, "events", s.EventIn, "item_id", apply,
                                       lambda: f"{counts['written']} events were recorded")
        return c.message(pb.RecordEventsResponse,
                         s.RecordEventsResponse(**counts, rejected=rejected))

    async def _batches(self, who: Principal, requests: AsyncIterator[Any], field: str,
                       cls: Any, id_field: str, apply: Callable[[str, list[Any]], Any],
                       progress: Callable[[], str]) -> list[s.Rejection]:
        """Read the stream, validate each element, call ``apply`` per batch of at most
        ``max_batch`` elements (or ``max_request_bytes``); returns every rejection, indexed by
        position in the whole stream. An error after some batches says how far it got."""
        limits = self.service.settings.limits
        name: str | None = None
        batch: list[Any] = []
        where: list[int] = []
        rejected: list[s.Rejection] = []
        seen = size = flushed = 0

        async def flush() -> None:
            nonlocal size, flushed
            response = await asyncio.to_thread(apply, name, batch)
            flushed += 1
            rejected.extend(r.model_copy(update={"index": where[r.index]}) if r.index >= 0
                            else r for r in response.rejected)
            batch.clear()
            where.clear()
            size = 0

        try:
            async for msg in requests:
                if isinstance(msg, Exception):
                    raise msg
                name = _stream_collection(self.service, who, name, msg.collection)
                for element in getattr(msg, field):
                    try:
                        batch.append(c.model(element, cls))
                        where.append(seen)
                        size += element.ByteSize()
                    except RequestError as err:
                        rejected.append(c.rejection(seen, getattr(element, id_field), err))
                    seen += 1
                    if len(batch) >= limits.max_batch or size >= limits.max_request_bytes:
                        await flush()
            if seen == 0:
                raise RequestError(f"the stream carried no {field}: send at least one")
            if batch:
                await flush()
        except MosaicError as err:
            if flushed:
                err.add_note(f"(before this error, {progress()} from this stream)")
            raise
        return sorted(rejected, key=lambda r: r.index)


def _stream_collection(service: Svc, who: Principal, name: str | None, given: str) -> str:
    """The stream's collection: the first message's, checked at once (scope and tenant)."""
    if name is None:
        service.collection(who, given, "write")
        return given
    if given and given != name:
        raise RequestError(f"every message of a stream writes to one collection: the first "
                           f"named {name!r}, a later one {given!r}")
    return name


def _key(metadata: dict[str, str]) -> str | None:
    key = metadata.get("x-api-key")
    auth = metadata.get("authorization")
    if key is None and auth and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    return key


_NOBODY = Principal("anonymous", "", frozenset())


def _parser(cls: type[Message]) -> Callable[[bytes], Any]:
    """A deserializer that never raises: a request that cannot be parsed becomes the error
    it raises, refused (INVALID_ARGUMENT) after authentication like any invalid request."""
    def parse(data: bytes) -> Any:
        try:
            return c.parse(cls, data)
        except RequestError as err:
            return err

    return parse
