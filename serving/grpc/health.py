"""``grpc.health.v1.Health`` for the gRPC server: SERVING when the service is ready (models
loaded, no index build or training under way), NOT_SERVING otherwise, read from
``service.health()`` at each Check and List; Watch streams each change (polled every
``WATCH_POLL_S`` while someone watches, so nothing runs when no one does)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mosaicrec.serving.grpc import mosaicrec_pb2 as pb
from mosaicrec.serving.service import RecommendationService

__all__ = ["Health", "WATCH_POLL_S"]

WATCH_POLL_S = 0.5
STATUS = health_pb2.HealthCheckResponse


class Health(health_pb2_grpc.HealthServicer):
    """Answers for the whole server (``""``) and for ``mosaicrec.v1.Recommendations``."""

    def __init__(self, service: RecommendationService) -> None:
        self.service = service
        self.names = ("", pb.DESCRIPTOR.services_by_name["Recommendations"].full_name)

    def status(self, name: str) -> Any:
        if name not in self.names:
            return STATUS.SERVICE_UNKNOWN
        return STATUS.SERVING if self.service.health().ready else STATUS.NOT_SERVING

    async def Check(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if request.service not in self.names:
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f"unknown service {request.service!r}")
        return STATUS(status=self.status(request.service))

    async def List(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return health_pb2.HealthListResponse(statuses={
            n: STATUS(status=self.status(n)) for n in self.names})

    async def Watch(self, request: Any, context: grpc.aio.ServicerContext,
                    ) -> AsyncIterator[Any]:
        last = None
        while True:
            status = self.status(request.service)
            if status != last:
                yield STATUS(status=status)
                last = status
            await asyncio.sleep(WATCH_POLL_S)
