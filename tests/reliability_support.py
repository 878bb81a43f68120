"""Helpers shared by the reliability tests: a messy copy of the sample catalogue, a bounded
media server on the loopback address, a way to index and read a collection back, and CLI runs
that can be killed at the points the indexer announces."""

from __future__ import annotations

import http.server
import io
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
SAMPLE_MAPPING = json.loads((SAMPLE / "catalogue.mapping.json").read_text())
# A segment built every 64 points: kills also land inside the HNSW builds a bulk load does as it
# goes (StoreConfig.segment_points), not only in the final one.
KILL_ENV = {**os.environ, "MOSAICREC_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "MOSAICREC_TEST_POINTS": "1", "MOSAICREC_SEGMENT_POINTS": "64"}


def silent_wav(seconds: float = 1.0, sr: int = 16000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(seconds * sr), np.float32), sr, format="WAV")
    return buf.getvalue()


def messy_catalogue(folder: Path, copies: int = 0) -> Path:
    """The sample catalogue with every kind of trouble, plus ``copies`` extra copies of each
    good row under new ids (more work for kill tests). Returns the CSV path."""
    shutil.copytree(SAMPLE, folder, dirs_exist_ok=True)
    (folder / "images" / "ocean-03.png").write_bytes(b"not a png at all")  # undecodable
    wav = folder / "audio" / "forest-02.wav"
    wav.write_bytes(wav.read_bytes()[:300])  # truncated
    (folder / "audio" / "silence.wav").write_bytes(silent_wav())
    frame = pd.read_csv(folder / "catalogue.csv", dtype=str, keep_default_na=False)
    extra = [
        {**frame.iloc[0].to_dict(), "id": ""},  # missing id
        {**frame.iloc[5].to_dict()},  # a second row for ocean-06: duplicated id
        {**frame.iloc[2].to_dict(), "id": "bad-year", "year": "soon"},
        {**frame.iloc[3].to_dict(), "id": "no-file", "image": "images/missing.png"},
        {**frame.iloc[4].to_dict(), "id": "escape", "image": "../../../../../../../etc/passwd"},
        {**frame.iloc[6].to_dict(), "id": "quiet", "audio": "audio/silence.wav"},
    ]
    copied = [
        {**row, "id": f"{row['id']}-copy{k}", "title": f"{row['title']} (copy {k})"}
        for k in range(copies) for row in frame.to_dict("records")
    ]
    pd.concat([frame, pd.DataFrame(extra), pd.DataFrame(copied)]).to_csv(
        folder / "catalogue.csv", index=False)
    return folder / "catalogue.csv"


def snapshot(store: Any) -> dict[str, dict[str, np.ndarray]]:
    """Every stored item's vectors, by id (duplicates would show as a count mismatch)."""
    records = list(store.iter_records(vectors=True))
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)) == store.count(), "duplicate points"
    return {r.id: r.vectors for r in records}


def assert_same_vectors(a: dict, b: dict, atol: float = 1e-5) -> None:
    assert sorted(a) == sorted(b)
    for item, vectors in a.items():
        assert sorted(vectors) == sorted(b[item]), item
        for name, vec in vectors.items():
            np.testing.assert_allclose(b[item][name], vec, atol=atol, err_msg=f"{item}/{name}")


def index_args(catalogue: Path, store: Path) -> list[str]:
    """``mosaicrec index`` of ``catalogue`` into ``<store>/items`` (tiny encoders, CPU)."""
    return ["index", str(catalogue), "--profile", "tiny", "--path", str(store), "--collection",
            "items", "--batch-size", "8", "--no-progress", "--device", "cpu"]


def read_collection(store: Path) -> tuple[dict, dict, str, str]:
    """Vectors, payloads, search-index state and quarantine text of ``<store>/items``."""
    from mosaicrec.indexing.stores import StoreConfig, open_store

    with open_store(StoreConfig(backend="edge", path=str(store), collection="items")) as s:
        vectors = snapshot(s)
        payloads = {r.id: r.payload for r in s.iter_records()}
        state = s.info()["search_index"]
    return vectors, payloads, state, (store / "items.quarantine.jsonl").read_text()


class CliRun:
    """One ``mosaicrec`` CLI process (``MOSAICREC_TEST_POINTS=1``); stderr lines are collected
    with the time they arrived."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.start = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mosaicrec", *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env={**KILL_ENV, **(env or {})},
            cwd=REPO.parent)
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)
            self.lines.put((time.monotonic() - self.start, line.strip()))
        self.lines.put((time.monotonic() - self.start, "<eof>"))

    def wait_for(self, point: str, count: int = 1, timeout: float = 300) -> bool:
        """True once ``point`` was announced ``count`` times; False if the run ended first."""
        seen, end = 0, time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                _, line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if line == "<eof>":
                return False
            if line == f"mosaicrec-test-point {point}":
                seen += 1
                if seen >= count:
                    return True
        return False

    def kill(self) -> bool:
        """SIGKILL; True when the process was still running (a real kill)."""
        if self.proc.poll() is not None:
            return False
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)
        return self.proc.returncode == -signal.SIGKILL

    def finish(self, timeout: float = 600) -> float:
        out, _ = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, "".join(self.err)[-3000:] + out[-2000:]
        return time.monotonic() - self.start


class MediaServer:
    """A loopback HTTP server with well-behaved and hostile endpoints; every handler stops
    after ``max_seconds`` at most, and all of them stop when the server does."""

    def __init__(self, max_seconds: float = 20.0) -> None:
        self.hits: dict[str, int] = {}
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.max_seconds = max_seconds
        self.fail_first: dict[str, int] = {}
        png = (SAMPLE / "images" / "ocean-01.png").read_bytes()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?")[0]
                with server.lock:
                    server.hits[path] = server.hits.get(path, 0) + 1
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                    failing = server.fail_first.get(path, 0) >= server.hits[path]
                try:
                    self._answer(path, failing)
                except OSError:
                    pass
                finally:
                    with server.lock:
                        server.active -= 1

            def _answer(self, path: str, failing: bool) -> None:
                start = time.monotonic()
                if failing:
                    self.send_error(503)
                elif path == "/silent.png":  # accepts, never answers
                    server.stop.wait(server.max_seconds)
                elif path == "/drip.png":  # one byte every 2 s
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(png)))
                    self.end_headers()
                    for byte in png:
                        if server.stop.wait(2.0) or time.monotonic() - start > server.max_seconds:
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                elif path in ("/ok.png", "/slow.png", "/flaky.png"):
                    if path == "/slow.png":
                        server.stop.wait(0.4)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(png)))
                    self.end_headers()
                    self.wfile.write(png)
                else:
                    self.send_error(404)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[MediaServer]:
        thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            self.httpd.shutdown()
            self.httpd.server_close()
