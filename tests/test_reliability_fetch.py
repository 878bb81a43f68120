"""Fetch reliability (issue 14): a server that drips or never answers cannot hang a run, the
run has its own deadline, downloads are bounded in number, and failed URLs are remembered
instead of fetched again on every run (unless asked to retry). Loopback server only."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from reliability_support import MediaServer

from mosaicrec.errors import MediaDecodeError
from mosaicrec.indexing.catalogue import ColumnMapping
from mosaicrec.indexing.fetch import FetchConfig, Fetcher, fetch_bytes
from mosaicrec.indexing.indexer import IndexerConfig, index_catalogue
from mosaicrec.indexing.stores import StoreConfig


@pytest.fixture()
def media() -> Iterator[MediaServer]:
    with MediaServer(max_seconds=15).running() as server:
        yield server


def test_a_dripping_server_is_cut_off_at_the_item_deadline(media: MediaServer) -> None:
    config = FetchConfig(timeout_s=5, retries=2, backoff_s=0.01, item_deadline_s=2.5)
    start = time.monotonic()
    with pytest.raises(MediaDecodeError, match="did not finish within") as err:
        fetch_bytes(f"{media.url}/drip.png", config, key="drip")
    assert time.monotonic() - start < 4.5
    assert "per-item deadline of 2.5 s" in str(err.value) and err.value.item == "drip"
    assert media.hits["/drip.png"] == 1  # the deadline covers the retries too


def test_a_server_that_never_answers_costs_one_timeout(media: MediaServer) -> None:
    config = FetchConfig(timeout_s=1, retries=3, backoff_s=0.01, item_deadline_s=10)
    start = time.monotonic()
    with pytest.raises(MediaDecodeError, match="no answer within 1 s"):
        fetch_bytes(f"{media.url}/silent.png", config)
    assert time.monotonic() - start < 2.5 and media.hits["/silent.png"] == 1


def test_the_run_deadline_bounds_all_downloads_together(media: MediaServer) -> None:
    fetcher = Fetcher(FetchConfig(timeout_s=5, item_deadline_s=30, run_deadline_s=1.5))
    start = time.monotonic()
    with pytest.raises(MediaDecodeError, match="run's download deadline"):
        fetcher.fetch(f"{media.url}/drip.png")
    with pytest.raises(MediaDecodeError, match="has passed"):
        fetcher.fetch(f"{media.url}/ok.png")
    assert time.monotonic() - start < 3.0 and "/ok.png" not in media.hits


def test_downloads_are_bounded_in_number(media: MediaServer) -> None:
    fetcher = Fetcher(FetchConfig(max_concurrency=2))
    threads = [threading.Thread(target=fetcher.fetch, args=(f"{media.url}/slow.png",))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert media.hits["/slow.png"] == 6 and media.max_active == 2


def test_failed_urls_are_remembered_across_runs_unless_retried(
    media: MediaServer, tmp_path: Path
) -> None:
    rows = [
        {"id": "silent", "title": "never answers", "image": f"{media.url}/silent.png"},
        {"id": "drip", "title": "drips", "image": f"{media.url}/drip.png"},
        {"id": "flaky", "title": "fails at first", "image": f"{media.url}/flaky.png"},
        {"id": "fine", "title": "fine", "image": f"{media.url}/ok.png"},
    ]
    media.fail_first["/flaky.png"] = 1  # 503 on the first request, fine afterwards
    catalogue = tmp_path / "remote.csv"
    pd.DataFrame(rows).to_csv(catalogue, index=False)
    quarantine = tmp_path / "remote.quarantine.jsonl"
    fetch = FetchConfig(timeout_s=1, retries=0, item_deadline_s=1.5, max_concurrency=4)

    def run(**options):
        indexer = IndexerConfig(progress=False, quarantine_path=quarantine, fetch=fetch,
                                **options)
        store, _, report = index_catalogue(
            catalogue, StoreConfig(backend="edge", path=str(tmp_path / "edge")), "tiny",
            mapping=ColumnMapping(description=None, tags=None, audio=None), indexer=indexer,
            device="cpu")
        with_image = {r.id for r in store.iter_records(vectors=["image"]) if r.vectors}
        store.close()
        return report, with_image

    start = time.monotonic()
    report, with_image = run()
    assert time.monotonic() - start < 60
    assert report.indexed == 4 and with_image == {"fine"}  # every item indexed, from its text
    first = quarantine.read_text()
    failed = {json.loads(line)["id"] for line in first.splitlines()}
    assert failed == {"silent", "drip", "flaky"}
    hits = dict(media.hits)
    report, _ = run()  # a re-run fetches nothing and reports the same
    assert media.hits == hits and report.indexed == 0 and quarantine.read_text() == first
    report, with_image = run(retry_failed=True)  # asked to retry: fetched again
    assert media.hits["/silent.png"] == 2 and media.hits["/drip.png"] == 2
    assert with_image == {"fine", "flaky"}  # flaky works now; its record is gone
    assert {json.loads(line)["id"] for line in quarantine.read_text().splitlines()} == {
        "silent", "drip"}
    assert (tmp_path / "remote.failed-media.jsonl").is_file()
