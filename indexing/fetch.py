"""Fetching media from http(s) URLs: per-read timeouts, an overall deadline per item and per
run, bounded retries with backoff, bounded concurrency and a size limit.

``timeout_s`` bounds each connect and each socket read, which alone does not bound a download: a
server sending one byte every two seconds never trips it. So every download also runs under a
deadline (``item_deadline_s``, and what is left of ``run_deadline_s``): a watchdog shuts the
connection's socket when it passes, whatever phase the request is in (headers or body), and the
item fails with a reason that says so. At most ``max_concurrency`` downloads run at once.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.errors import MediaDecodeError

__all__ = ["FetchConfig", "Fetcher", "fetch_bytes", "resolve_media"]


class FetchConfig(StrictModel):
    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(default=10.0, gt=0, description="each connect / socket read")
    retries: int = Field(default=2, ge=0)
    backoff_s: float = Field(default=0.5, ge=0)
    max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    item_deadline_s: float = Field(default=30.0, gt=0, description="one medium, retries included")
    run_deadline_s: float | None = Field(
        default=None, gt=0, description="all downloads of one run; later URLs fail at once")
    max_concurrency: int = Field(default=4, ge=1, description="downloads at the same time")
    user_agent: str = "mosaicrec/0.1"


class _Deadline(Exception):
    pass


class _Watch:
    """Sockets of one download; ``expire`` shuts them so that a blocked read returns."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.expired = False
        self.lock = threading.Lock()

    def add(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.append(sock)
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            for sock in self.sockets:
                _shut(sock)


def _shut(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _watched(base: type[http.client.HTTPConnection], watch: _Watch) -> Any:
    class Watched(base):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            super().connect()
            watch.add(self.sock)

    return Watched


class _Handler(urllib.request.HTTPHandler):
    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self.watch = watch

    def http_open(self, req: Any) -> Any:
        return self.do_open(_watched(http.client.HTTPConnection, self.watch), req)


class _HttpsHandler(urllib.request.HTTPSHandler):
    def __init__(self, watch: _Watch) -> None:
        super().__init__()
        self.watch = watch

    def https_open(self, req: Any) -> Any:
        conn = functools.partial(_watched(http.client.HTTPSConnection, self.watch),
                                 context=self._context)
        return self.do_open(conn, req)


class Fetcher:
    """Downloads for one run: shares the run deadline and the concurrency limit."""

    def __init__(self, config: FetchConfig | None = None) -> None:
        self.config = config or FetchConfig()
        self.started = time.monotonic()
        self._slots = threading.BoundedSemaphore(self.config.max_concurrency)

    def run_left(self) -> float:
        if self.config.run_deadline_s is None:
            return float("inf")
        return self.config.run_deadline_s - (time.monotonic() - self.started)

    def fetch(self, url: str, key: object = None) -> bytes:
        """GET ``url``; retry connection errors, timeouts and 5xx/429 answers within the
        deadline, never other 4xx answers. ``MediaDecodeError`` says why it failed."""
        cfg = self.config
        if self.run_left() <= 0:
            raise MediaDecodeError(
                f"not fetched: the run's download deadline ({cfg.run_deadline_s:g} s) has "
                f"passed ({url})", item=key)
        with self._slots:
            end = time.monotonic() + min(cfg.item_deadline_s, self.run_left())
            last, out_of_time = "", False
            for attempt in range(cfg.retries + 1):
                left = end - time.monotonic()
                if left <= 0:
                    out_of_time = True
                    break
                try:
                    return self._get(url, left, key)
                except _Deadline as err:
                    last = str(err)
                    break
                except urllib.error.HTTPError as err:
                    last = f"HTTP {err.code} {err.reason}"
                    if err.code < 500 and err.code != 429:
                        break
                except (urllib.error.URLError, TimeoutError, ConnectionError, OSError,
                        http.client.HTTPException) as err:
                    reason = getattr(err, "reason", err)
                    if isinstance(reason, TimeoutError | socket.timeout):
                        last = f"no answer within {cfg.timeout_s:g} s"
                        break  # a server that does not answer is not retried
                    last = f"{type(err).__name__}: {reason}"
                if attempt < cfg.retries:
                    time.sleep(max(0.0, min(cfg.backoff_s * 2**attempt, end - time.monotonic())))
            if out_of_time:
                last = (f"{last}; " if last else "") + self._deadline_note()
        raise MediaDecodeError(f"could not fetch {url} ({last})", item=key)

    def _deadline_note(self) -> str:
        cfg = self.config
        if cfg.run_deadline_s is not None and self.run_left() <= 0:
            return f"the run's download deadline of {cfg.run_deadline_s:g} s passed"
        return f"gave up after the per-item deadline of {cfg.item_deadline_s:g} s"

    def _get(self, url: str, left: float, key: object) -> bytes:
        cfg = self.config
        watch = _Watch()
        timer = threading.Timer(left, watch.expire)
        timer.daemon = True
        opener = urllib.request.build_opener(_Handler(watch), _HttpsHandler(watch))
        request = urllib.request.Request(url, headers={"User-Agent": cfg.user_agent})
        body = bytearray()
        timer.start()
        try:
            with opener.open(request, timeout=min(cfg.timeout_s, left)) as response:
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > cfg.max_bytes:
                    raise MediaDecodeError(f"{url} is {int(declared)} bytes, over the "
                                           f"{cfg.max_bytes}-byte limit", item=key)
                while len(body) <= cfg.max_bytes:
                    chunk = response.read1(65536)
                    if not chunk:
                        break
                    body += chunk
        except (OSError, http.client.HTTPException, urllib.error.URLError):
            if not watch.expired:
                raise
        finally:
            timer.cancel()
        if watch.expired:
            raise _Deadline(f"download did not finish within {left:.3g} s ({len(body)} bytes "
                            f"received); {self._deadline_note()}")
        if len(body) > cfg.max_bytes:
            raise MediaDecodeError(f"{url} is over the {cfg.max_bytes}-byte limit", item=key)
        return bytes(body)


def fetch_bytes(url: str, config: FetchConfig | None = None, key: object = None) -> bytes:
    """One download with its own deadlines (see :class:`Fetcher`)."""
    return Fetcher(config).fetch(url, key)


def resolve_media(
    source: str, config: FetchConfig | Fetcher | None = None, key: object = None
) -> str | bytes:
    """A local path is returned as is (the decoder reads it); a URL is fetched to bytes."""
    if source.lower().startswith(("http://", "https://")):
        fetcher = config if isinstance(config, Fetcher) else Fetcher(config)
        return fetcher.fetch(source, key)
    return source
