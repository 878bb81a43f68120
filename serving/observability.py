"""Prometheus metrics and structured (JSON) logs with request ids, shared by REST and gRPC.

Metrics live in a registry owned by the app (none at import): requests by endpoint, protocol
and status; latency histograms per endpoint and per recommendation stage; collection sizes.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics", "log_request", "new_request_id", "setup_logging"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
LOG = logging.getLogger("mosaicrec.requests")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("mosaicrec_requests_total", "Requests by endpoint and status",
                                ["protocol", "endpoint", "status"], registry=self.registry)
        self.latency = Histogram("mosaicrec_request_seconds", "Request latency by endpoint",
                                 ["protocol", "endpoint"], buckets=_BUCKETS,
                                 registry=self.registry)
        self.stages = Histogram("mosaicrec_recommend_stage_seconds",
                                "Time per recommendation stage", ["collection", "stage"],
                                buckets=_BUCKETS, registry=self.registry)
        self.points = Gauge("mosaicrec_collection_points", "Items per collection",
                            ["tenant", "collection"], registry=self.registry)

    def observe(self, protocol: str, endpoint: str, status: str | int, seconds: float) -> None:
        self.requests.labels(protocol, endpoint, str(status)).inc()
        self.latency.labels(protocol, endpoint).observe(seconds)

    def observe_stages(self, collection: str, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.stages.labels(collection, stage).observe(ms / 1e3)


def new_request_id(given: str | None = None) -> str:
    if given and 0 < len(given) <= 64 and given.isascii() and given.isprintable():
        return given
    return uuid.uuid4().hex[:16]


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": round(record.created, 3), "level": record.levelname,
                                 "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str = "INFO") -> None:
    """One JSON line per record on stderr (called by ``serve``, not at import)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger("mosaicrec")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def log_request(protocol: str, request_id: str, endpoint: str, status: str | int,
                started: float, *, tenant: str | None = None,
                error: BaseException | None = None) -> None:
    fields = {"request_id": request_id, "protocol": protocol, "endpoint": endpoint,
              "status": str(status), "ms": round((time.perf_counter() - started) * 1e3, 2),
              "tenant": tenant}
    if error is not None:
        fields["error"] = type(error).__name__
    LOG.info("request", extra={"fields": fields},
             exc_info=error if error is not None and not _expected(error) else None)


def _expected(err: BaseException) -> bool:
    from mosaicrec.errors import MosaicError

    return isinstance(err, MosaicError)
