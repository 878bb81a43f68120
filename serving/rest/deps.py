"""FastAPI dependencies: the service, the caller (from ``X-API-Key`` or a Bearer token), and
the request id. Tests swap them with ``app.dependency_overrides``. They are coroutines because
they never block (a key is checked by its SHA-256): FastAPI runs plain functions in its thread
pool, a hop per dependency per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from mosaicrec.serving.auth import Principal
from mosaicrec.serving.service import RecommendationService

__all__ = ["Caller", "Service", "get_caller", "get_service"]


async def get_service(request: Request) -> RecommendationService:
    return request.app.state.service


async def get_caller(
    request: Request,
    service: Annotated[RecommendationService, Depends(get_service)],
    x_api_key: Annotated[str | None, Header(description="API key")] = None,
    authorization: Annotated[str | None, Header(description="Bearer API key")] = None,
) -> Principal:
    key = x_api_key
    if key is None and authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    who = service.authenticate(key)
    request.state.tenant = who.tenant
    return who


Service = Annotated[RecommendationService, Depends(get_service)]
Caller = Annotated[Principal, Depends(get_caller)]
