"""Running the REST and gRPC adapters together: one process, one event loop, threads for work.

Qdrant Edge opens one handle per directory, so on Edge the server is a single process: uvicorn
serves FastAPI and ``grpc.aio`` serves gRPC in the same loop, and blocking model and store calls
run in worker threads. Several worker processes need the Qdrant server backend. SIGINT/SIGTERM
stop accepting, let in-flight requests finish (gRPC gets a grace period) and close the stores.

:class:`ServerThread` runs the same thing in a background thread on ephemeral ports (tests,
benchmarks, the web page's browser tests).
"""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

from mosaicrec.serving.observability import Metrics, setup_logging
from mosaicrec.serving.service import RecommendationService

__all__ = ["serve", "ServerThread"]

GRACE_S = 10.0


async def _run(service: RecommendationService, *, host: str, port: int, grpc_port: int,
               ready: threading.Event | None = None, ports: dict[str, int] | None = None,
               stop: asyncio.Event | None = None, log: bool = True) -> None:
    import uvicorn

    from mosaicrec.serving.rest import create_app

    metrics = Metrics()
    app = create_app(service, metrics=metrics)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                            access_log=False, lifespan="on", timeout_graceful_shutdown=GRACE_S,
                            log_config=None if not log else uvicorn.config.LOGGING_CONFIG)
    server = uvicorn.Server(config)
    grpc_server = None
    if grpc_port >= 0:
        from mosaicrec.serving.grpc.server import create_grpc_server

        grpc_server, bound = create_grpc_server(service, f"{host}:{grpc_port}", metrics)
        await grpc_server.start()
        if ports is not None:
            ports["grpc"] = bound
    if stop is not None:  # a background server: no signal handlers, stop on the event
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]

        async def watch() -> None:
            await stop.wait()
            server.should_exit = True

        asyncio.get_running_loop().create_task(watch())
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if ports is not None and server.servers:
        ports["rest"] = server.servers[0].sockets[0].getsockname()[1]
    # Models, encoders and modules loaded at start-up live as long as the process: keep them
    # out of the cyclic collector's full passes, whose pauses (~0.3 s with torch loaded) would
    # otherwise land on a request now and then (benchmarks/web.py measured them).
    gc.freeze()
    if ready is not None:
        ready.set()
    try:
        await task
    finally:
        if grpc_server is not None:
            await grpc_server.stop(GRACE_S)


def limit_inference_threads(n: int) -> None:
    """Process-wide: BLAS, OpenMP and torch pools of ``n`` threads. Under load, requests run
    in parallel worker threads; a 2-thread matrix product in each of them made the server
    spend a third of its time in contention (py-spy, benchmarks/serve.py)."""
    import sys

    from threadpoolctl import threadpool_limits

    threadpool_limits(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def serve(service: RecommendationService) -> None:
    """Serve until interrupted (``mosaicrec serve``)."""
    s = service.settings
    setup_logging(s.log_level)
    limit_inference_threads(s.inference_threads)
    grpc_port = s.grpc_port if s.grpc_port > 0 else -1
    print(f"mosaicrec: REST on http://{s.host}:{s.port} (OpenAPI at /docs), "
          + (f"gRPC on {s.host}:{s.grpc_port}" if grpc_port > 0 else "gRPC off")
          + ("" if s.auth else "; WARNING: no API keys required (--no-auth)"), flush=True)
    asyncio.run(_run(service, host=s.host, port=s.port, grpc_port=grpc_port))


class ServerThread:
    """REST (and gRPC) on 127.0.0.1 ephemeral ports in a daemon thread; ``stop()`` ends it."""

    def __init__(self, service: RecommendationService, *, grpc: bool = True) -> None:
        self.service, self.grpc = service, grpc
        self.ports: dict[str, int] = {}
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="mosaicrec-server",
                                        daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await _run(self.service, host="127.0.0.1", port=0,
                       grpc_port=0 if self.grpc else -1, ready=self._ready, ports=self.ports,
                       stop=self._stop, log=False)

        try:
            asyncio.run(main())
        except BaseException as err:  # surfaced by start()
            self._error = err
            self._ready.set()

    def start(self, timeout: float = 60.0) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"server did not start: {self._error!r}")
        return self

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['rest']}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.ports['grpc']}"

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
