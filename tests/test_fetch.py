"""Media over http(s): a server on the loopback address, timeouts, retries, size limit."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from mosaicrec.errors import MediaDecodeError
from mosaicrec.indexing.fetch import FetchConfig, fetch_bytes

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


class _Handler(http.server.BaseHTTPRequestHandler):
    calls: dict[str, int] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.calls[self.path] = self.calls.get(self.path, 0) + 1
        if self.path == "/flaky.png" and self.calls[self.path] < 3:
            self.send_error(503)
            return
        if self.path == "/big.bin":
            body = b"x" * 5000
        elif self.path in ("/flaky.png", "/ok.png"):
            body = (SAMPLE / "images" / "ocean-01.png").read_bytes()
        elif self.path == "/ok.wav":
            body = (SAMPLE / "audio" / "ocean-01.wav").read_bytes()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    _Handler.calls = {}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


FAST = FetchConfig(timeout_s=2, retries=2, backoff_s=0.01)


def test_fetch_ok_and_retry_on_5xx(server: str) -> None:
    assert fetch_bytes(f"{server}/ok.png", FAST)[:4] == b"\x89PNG"
    assert fetch_bytes(f"{server}/flaky.png", FAST)[:4] == b"\x89PNG"
    assert _Handler.calls["/flaky.png"] == 3


def test_fetch_errors_name_the_item(server: str) -> None:
    with pytest.raises(MediaDecodeError, match=r"item 'x1'.*HTTP 404"):
        fetch_bytes(f"{server}/missing.png", FAST, key="x1")
    assert _Handler.calls["/missing.png"] == 1  # 4xx is not retried
    with pytest.raises(MediaDecodeError, match="limit"):
        fetch_bytes(f"{server}/big.bin", FAST.model_copy(update={"max_bytes": 100}), key="x2")
    with pytest.raises(MediaDecodeError, match="could not fetch"):
        fetch_bytes("http://127.0.0.1:9/nothing", FAST.model_copy(update={"retries": 0}))


def test_index_catalogue_with_urls(server: str, tmp_path: Path) -> None:
    from mosaicrec.encoders.profiles import load_profile
    from mosaicrec.indexing.catalogue import ColumnMapping, read_catalogue
    from mosaicrec.indexing.indexer import BulkIndexer, IndexerConfig, collection_schema
    from mosaicrec.indexing.stores import StoreConfig, open_store

    rows = [
        {"id": "u1", "title": "remote", "image": f"{server}/ok.png", "audio": f"{server}/ok.wav"},
        {"id": "u2", "title": "gone", "image": f"{server}/missing.png", "audio": ""},
    ]
    path = tmp_path / "remote.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    items, rejected = read_catalogue(path, ColumnMapping(description=None, tags=None))
    profile = load_profile("tiny", device="cpu")
    store = open_store(StoreConfig(backend="qdrant", path=":memory:"), collection_schema(profile))
    report = BulkIndexer(profile, store, IndexerConfig(progress=False, fetch=FAST)).run(items)
    # the missing poster costs u2 its image, not the item: indexed from its text, and said so
    assert (report.indexed, report.quarantined, report.degraded) == (2, 1, 1)
    (reason,) = report.reasons
    assert "404" in reason.reason and (reason.id, reason.field, reason.indexed) == ("u2", "image",
                                                                                    True)
    u1, u2 = store.retrieve(["u1", "u2"], vectors=True)
    assert {"text", "image", "audio", "fused"} <= set(u1.vectors)
    assert set(u2.vectors) == {"text", "fused"}


def test_download_dataset_from_a_loopback_publisher(tmp_path: Path) -> None:
    import io
    import zipfile

    from mosaicrec.errors import CatalogueError
    from mosaicrec.indexing.datasets import download_dataset

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-100k/u.item", "1|Toy Story (1995)|01-Jan-1995||x" + "|0" * 19 + "\n")
        zf.writestr("ml-100k/u.data", "1\t1\t5\t881250949\n")
        zf.writestr("../evil.txt", "nope")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "ml.zip").write_bytes(buf.getvalue())
    (tmp_path / "www" / "bad.zip").write_bytes(b"not a zip")

    handler = type(
        "H",
        (http.server.SimpleHTTPRequestHandler,),
        {
            "log_message": lambda *a: None,
        },
    )
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(tmp_path / "www"))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        folder = download_dataset("movielens-100k", tmp_path / "out", url=f"{base}/ml.zip")
        assert (folder / "u.item").read_text().startswith("1|Toy Story")
        assert not (tmp_path / "evil.txt").exists()
        with pytest.raises(CatalogueError, match="zip"):
            download_dataset("movielens-100k", tmp_path / "o2", url=f"{base}/bad.zip")
        with pytest.raises(CatalogueError, match="unknown data set"):
            download_dataset("imagenet", tmp_path)
    finally:
        httpd.shutdown()
        httpd.server_close()
