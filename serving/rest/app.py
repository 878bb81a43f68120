"""The FastAPI application: lifespan, middleware, error handlers, routers.

The service is built in the lifespan (or passed in by ``serve`` and tests), models load there,
and it is closed on shutdown after in-flight requests finish. Middleware gives every request an
id (``X-Request-ID``), refuses bodies over the configured size before reading them whole,
counts and times requests for Prometheus and writes one JSON log line per request.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from mosaicrec.errors import MosaicError, PayloadTooLargeError, RequestError
from mosaicrec.serving.errors import error_body, http_status
from mosaicrec.serving.observability import Metrics, log_request, new_request_id
from mosaicrec.serving.rest.routes import routers
from mosaicrec.serving.service import RecommendationService
from mosaicrec.serving.settings import Settings
from mosaicrec.serving.web import add_web

__all__ = ["create_app"]


def create_app(service: RecommendationService | None = None,
               settings: Settings | None = None, *, metrics: Metrics | None = None,
               start: bool = True) -> FastAPI:
    """An app over ``service`` (built from ``settings`` in the lifespan when not given)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio

        owned = app.state.service is None
        if owned:
            from mosaicrec.serving.settings import load_settings

            app.state.service = RecommendationService(settings or load_settings())
            app.state.service.observers.append(app.state.metrics.observe_stages)
        if start and app.state.service.status == "starting":
            await anyio.to_thread.run_sync(app.state.service.start)
        yield
        if owned:
            app.state.service.close()

    app = FastAPI(
        title="mosaicrec", version="1", lifespan=lifespan,
        description="Multimodal recommendations: record events, recommend, search across "
        "text, images and audio, keep the catalogue current. Authenticate with `X-API-Key`.")
    app.state.service = service
    app.state.metrics = metrics or Metrics()
    if service is not None:
        service.observers.append(app.state.metrics.observe_stages)
    for router in routers:
        app.include_router(router)
    add_web(app)  # the web page at / (serving/web): same service, same keys
    _add_middleware(app)
    _add_error_handlers(app)

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint() -> Response:
        svc = app.state.service
        for (tenant, name), handle in list(svc._handles.items()):
            if handle._store is not None:
                app.state.metrics.points.labels(tenant, name).set(handle._store.count())
        return Response(generate_latest(app.state.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    return app


class BodyLimit:
    """Refuse request bodies over the limit before the app sees them. The body is read (up to
    the limit) and replayed to the app; a chunked body has no Content-Length to check first."""

    def __init__(self, app: Any, limit: Callable[[], int | None]) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        limit = self.limit() if scope["type"] == "http" else None
        if limit is None:
            return await self.app(scope, receive, send)
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            seen += len(message.get("body", b""))
            if seen > limit:
                rid = scope.get("state", {}).get("request_id")
                response = _error(PayloadTooLargeError(
                    f"request body is over the limit of {limit} bytes"), rid)
                return await response(scope, receive, send)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        replay = iter(messages)

        async def replayed() -> Any:
            return next(replay, None) or await receive()

        return await self.app(scope, replayed, send)


def _add_middleware(app: FastAPI) -> None:
    def limit() -> int | None:
        svc = app.state.service
        return svc.settings.limits.max_request_bytes if svc is not None else None

    app.add_middleware(BodyLimit, limit=limit)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        request.state.request_id = rid = new_request_id(request.headers.get("x-request-id"))
        limit = app.state.service.settings.limits.max_request_bytes if app.state.service \
            else None
        declared = request.headers.get("content-length")
        if limit is not None and declared is not None and declared.isdigit() and \
                int(declared) > limit:
            response: Any = _error(PayloadTooLargeError(
                f"request body is {declared} bytes, over the limit of {limit}"), rid)
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        endpoint = getattr(route, "path", request.url.path if response.status_code != 404
                           else "unmatched")
        app.state.metrics.observe("rest", endpoint, response.status_code,
                                  time.perf_counter() - started)
        log_request("rest", rid, f"{request.method} {endpoint}", response.status_code, started,
                    tenant=getattr(request.state, "tenant", None))
        response.headers["X-Request-ID"] = rid
        return response


def _problem(e: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in e["loc"] if p != "body")
    message = str(e["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _error(err: BaseException, request_id: str | None) -> JSONResponse:
    return JSONResponse(error_body(err, request_id), status_code=http_status(err))


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MosaicError)
    async def mosaic_error(request: Request, err: MosaicError) -> JSONResponse:
        return _error(err, getattr(request.state, "request_id", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(_problem(e) for e in err.errors())
        return _error(RequestError(f"invalid request: {problems}"),
                      getattr(request.state, "request_id", None))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        rid = getattr(request.state, "request_id", None)
        kind = "NotFoundError" if err.status_code == 404 else "RequestError"
        return JSONResponse({"error": {"type": kind, "message": str(err.detail)},
                             "request_id": rid}, status_code=err.status_code)

    @app.exception_handler(Exception)
    async def internal(request: Request, err: Exception) -> JSONResponse:
        rid = getattr(request.state, "request_id", None)
        log_request("rest", rid or "-", request.url.path, 500, time.perf_counter(), error=err)
        return _error(err, rid)
