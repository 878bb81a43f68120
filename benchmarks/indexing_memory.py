"""Peak memory (RSS) while indexing a large text-only catalogue with the tiny encoders.

The catalogue (``--rows`` rows, default 1,000,000: id, title, description, tags, year) is written
to a temporary folder, then indexed into a Qdrant Edge collection by
:func:`mosaicrec.indexing.indexer.index_catalogue` (``profile="tiny"``, what
``mosaicrec index --profile tiny`` runs) in a child process. The parent samples the child's
``/proc/<pid>/status`` every ``--interval`` seconds (VmRSS = RssAnon + RssFile + RssShmem) and
the rows written so far, and reports RSS at the start (models loaded, nothing read), after
warm-up (first 50,000 rows), its peak and the end, for the load and for the HNSW build apart.

Edge keeps vectors in memory-mapped files, which RSS counts as RssFile; RssAnon is the process's
own memory, so both are reported. The store builds a segment's HNSW every ``segment_points``
points and hands written pages back to the kernel every ``release_pages_points`` (StoreConfig),
so the "build" phase is only the last segment's; the search latency over the segments this
leaves is measured after the build. Run: ``python benchmarks/indexing_memory.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

WORDS = [
    "quiet", "river", "stone", "bright", "market", "garden", "night", "storm", "harbour",
    "forest", "city", "song", "old", "new", "winter", "summer", "light", "shadow", "tower",
    "bridge", "road", "story", "music", "child", "island", "silver", "golden", "broken",
    "hidden", "distant", "morning", "evening", "voice", "dream", "field",
]
WARMUP_ROWS = 50_000


def make_catalogue(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        out.write("id,title,description,tags,year\n")
        for i in range(rows):
            title = " ".join(rng.choices(WORDS, k=3)).title()
            description = " ".join(rng.choices(WORDS, k=rng.randint(8, 20)))
            tags = "|".join(rng.sample(WORDS, 2))
            out.write(f"item-{i:07d},{title},{description}.,{tags},{1950 + i % 70}\n")


def child(args: argparse.Namespace) -> None:
    """The measured process: index the catalogue, write progress lines to the status file."""
    import torch

    from mosaicrec.indexing.catalogue import ColumnMapping
    from mosaicrec.indexing.indexer import IndexerConfig, index_catalogue
    from mosaicrec.indexing.stores import StoreConfig

    torch.set_num_threads(1)
    status = open(args.status, "w", buffering=1)  # noqa: SIM115 - lives as long as the process
    t0 = time.monotonic()
    done = 0

    def note(text: str) -> None:
        status.write(f"{time.monotonic() - t0:.2f} {text}\n")

    def on_upsert(ids: list[str]) -> None:
        nonlocal done
        before, done = done, done + len(ids)
        if done // 10_000 != before // 10_000 or before == 0:
            note(f"rows {done}")

    note("start")
    payload = {"year": "integer", "tags": "keywords"} if args.payload else {}
    mapping = ColumnMapping(image=None, audio=None, payload=payload)
    config = IndexerConfig(progress=False, optimize=False, batch_size=args.batch_size,
                           chunk_size=1000, quarantine_path=Path(args.store) / "q.jsonl")
    store, _, report = index_catalogue(
        Path(args.catalogue), StoreConfig(path=args.store, collection="bench"), "tiny",
        mapping=mapping, indexer=config, device="cpu", on_upsert=on_upsert)
    note(f"loaded {report.indexed} {report.quarantined}")
    if not args.skip_build:
        note("build")
        store.optimize()
        note(f"built {store.info()['indexed_vectors']}")
    note(f"search {_search_latency(store)}")
    store.close()
    note("done")


def _search_latency(store: Any, queries: int = 200) -> str:
    """p50 and p99 (ms) of top-10 queries on the fused space, first right after the load (the
    pages it handed back are read from disk again) and then warm, and the segment count: what
    the segments built during the load cost a search."""
    import numpy as np

    dim = store.schema.vectors["fused"].dim
    batch = np.random.default_rng(1).standard_normal((queries, dim)).astype(np.float32)
    figures = []
    for _ in ("cold", "warm"):
        times = []
        for q in batch:
            t = time.perf_counter()
            store.query(q, using="fused", limit=10)
            times.append((time.perf_counter() - t) * 1000)
        figures += [np.percentile(times, 50), np.percentile(times, 99)]
    return " ".join(f"{x:.2f}" for x in figures) + f" {store.info()['segments']}"


def edge_only(args: argparse.Namespace) -> None:
    """The store's share: the same points (same payload, random vectors of the same widths)
    upserted into an Edge collection of the same schema, with no catalogue and no encoders."""
    import numpy as np

    from mosaicrec.encoders.profiles import load_profile
    from mosaicrec.indexing.catalogue import Catalogue, ColumnMapping
    from mosaicrec.indexing.indexer import HASH_FIELD, collection_schema
    from mosaicrec.indexing.stores import Point, StoreConfig, open_store

    status = open(args.status, "w", buffering=1)  # noqa: SIM115
    t0 = time.monotonic()
    encoders = load_profile("tiny", device="cpu")
    schema = collection_schema(encoders)
    del encoders
    store = open_store(StoreConfig(path=args.store, collection="bench"), schema)
    rng = np.random.default_rng(0)
    status.write(f"{time.monotonic() - t0:.2f} start\n")
    mapping = ColumnMapping(image=None, audio=None)
    done = 0
    for items, _ in Catalogue(Path(args.catalogue), mapping).chunks():
        for start in range(0, len(items), args.batch_size):
            batch = items[start:start + args.batch_size]
            store.upsert([Point(it.id, {"text": rng.standard_normal(32, np.float32),
                                        "fused": rng.standard_normal(96, np.float32)},
                                {"item_id": it.id, HASH_FIELD: it.content_hash,
                                 "modalities": ["text"], "title": it.title, "text": it.text})
                          for it in batch])
            before, done = done, done + len(batch)
            if done // 10_000 != before // 10_000 or before == 0:
                status.write(f"{time.monotonic() - t0:.2f} rows {done}\n")
    status.write(f"{time.monotonic() - t0:.2f} loaded {done} 0\n")
    store.close()
    status.write(f"{time.monotonic() - t0:.2f} done\n")


def _rss(pid: int) -> dict[str, int] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024  # MiB
    return out


def _status(path: Path) -> list[tuple[float, str]]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [(float(t), rest) for t, _, rest in (ln.partition(" ") for ln in lines) if rest]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        folder = Path(tmp)
        catalogue = folder / "catalogue.csv"
        t = time.monotonic()
        make_catalogue(catalogue, args.rows)
        print(f"catalogue: {args.rows:,} rows, {catalogue.stat().st_size / 1e6:.0f} MB, "
              f"written in {time.monotonic() - t:.0f} s", flush=True)
        status = folder / "status.txt"
        cmd = [sys.executable, __file__, "--child", "--catalogue", str(catalogue), "--store",
               str(folder / "store"), "--status", str(status), "--batch-size",
               str(args.batch_size)] + (["--skip-build"] if args.skip_build else []) + (
                   ["--payload"] if args.payload else []) + (
                   ["--edge-only"] if args.edge_only else [])
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MOSAICREC_OFFLINE": "1"}
        proc = subprocess.Popen(cmd, env=env)
        samples: list[dict[str, Any]] = []
        start = time.monotonic()
        while proc.poll() is None:
            rss = _rss(proc.pid)
            events = _status(status)
            rows = max([int(e.split()[1]) for _, e in events if e.startswith("rows ")] or [0])
            phase = "build" if any(e.startswith("build") for _, e in events) else (
                "load" if any(e == "start" for _, e in events) else "startup")
            if rss:
                samples.append({"t": round(time.monotonic() - start, 1), "rows": rows,
                                "phase": phase, **rss})
                if len(samples) % 60 == 0:
                    print(f"  {samples[-1]}", flush=True)
            if args.max_seconds and time.monotonic() - start > args.max_seconds:
                proc.kill()
                break
            time.sleep(args.interval)
        events = _status(status)
        disk = sum(f.stat().st_size for f in (folder / "store").rglob("*") if f.is_file())
    return summarise(args, samples, events, proc.returncode, disk)


def summarise(args: argparse.Namespace, samples: list[dict], events: list, code: int | None,
              disk: int) -> dict[str, Any]:
    load = [s for s in samples if s["phase"] == "load"]
    with_rows = [s for s in load if s["rows"] > 0]
    warm = [s for s in load if s["rows"] >= min(WARMUP_ROWS, args.rows // 10)]
    build = [s for s in samples if s["phase"] == "build"]

    def at(rows: int) -> dict[str, int] | None:
        hit = next((s for s in load if s["rows"] >= rows), None)
        return None if hit is None else {k: hit[k] for k in ("VmRSS", "RssAnon", "RssFile")}

    def peak(group: list[dict], key: str) -> int | None:
        return max((s[key] for s in group), default=None)

    times = {e.split()[0]: t for t, e in events}
    search = next((e.split()[1:] for _, e in events if e.startswith("search ")), None)
    rows_at = [(t, int(e.split()[1])) for t, e in events if e.startswith("rows ")]
    per_100k = None
    if len(rows_at) >= 2 and rows_at[-1][1] > rows_at[0][1]:
        (t0, r0), (t1, r1) = rows_at[0], rows_at[-1]
        per_100k = round((t1 - t0) / (r1 - r0) * 100_000, 1)
    figures: dict[str, Any] = {
        "rows_indexed": max([r for _, r in rows_at] or [0]),
        "exit_code": code,
        "seconds_per_100k_rows": per_100k,
        "load_seconds": round(times["loaded"] - times["start"], 1) if "loaded" in times else None,
        "build_seconds": round(times["built"] - times["build"], 1) if "built" in times else None,
        "rss_mib": {
            "start_models_loaded": {k: with_rows[0][k] for k in ("VmRSS", "RssAnon", "RssFile")}
            if with_rows else None,
            "after_warmup": at(min(WARMUP_ROWS, args.rows // 10)),
            "at_25pct": at(args.rows // 4),
            "at_50pct": at(args.rows // 2),
            "at_75pct": at(args.rows * 3 // 4),
            "end_of_load": {k: load[-1][k] for k in ("VmRSS", "RssAnon", "RssFile")}
            if load else None,
            "peak_load": {"VmRSS": peak(load, "VmRSS"), "RssAnon": peak(load, "RssAnon"),
                          "RssFile": peak(load, "RssFile")},
            "peak_build": {"VmRSS": peak(build, "VmRSS"), "RssAnon": peak(build, "RssAnon")}
            if build else None,
            "end": {k: samples[-1][k] for k in ("VmRSS", "RssAnon", "RssFile")}
            if samples else None,
            "vm_hwm": peak(samples, "VmHWM"),
        },
        "store_disk_mb": round(disk / 1e6),
        "search_after_load": None if search is None else {
            "queries": 200, "segments": int(search[4]),
            "cold_fused_top10_ms": {"p50": float(search[0]), "p99": float(search[1])},
            "warm_fused_top10_ms": {"p50": float(search[2]), "p99": float(search[3])}},
    }
    quarter, three_quarters = figures["rss_mib"]["at_25pct"], figures["rss_mib"]["at_75pct"]
    if quarter and three_quarters:  # between segment builds, past the first one
        figures["rss_growth_mib_per_100k_25_to_75pct"] = {
            k: round((three_quarters[k] - quarter[k]) / (args.rows / 2) * 100_000, 1)
            for k in ("VmRSS", "RssAnon")}
    if len(warm) >= 2:  # growth of the process's own memory after warm-up, per 100k rows
        a, b = warm[0], warm[-1]
        if b["rows"] > a["rows"]:
            figures["rss_anon_growth_mib_per_100k_after_warmup"] = round(
                (b["RssAnon"] - a["RssAnon"]) / (b["rows"] - a["rows"]) * 100_000, 1)
            figures["rss_growth_mib_per_100k_after_warmup"] = round(
                (b["VmRSS"] - a["VmRSS"]) / (b["rows"] - a["rows"]) * 100_000, 1)
    figures["trace"] = [s for i, s in enumerate(samples) if i % max(1, len(samples) // 60) == 0]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=32, help="as mosaicrec index")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--skip-build", action="store_true", help="load only, no HNSW build")
    parser.add_argument("--payload", action="store_true",
                        help="also index year (integer) and tags (keywords) as payload")
    parser.add_argument("--max-seconds", type=float, default=0, help="stop the child after this")
    parser.add_argument("--tmp", default=None, help="folder for the catalogue and the store")
    parser.add_argument("--name", default="indexing_memory")
    parser.add_argument("--edge-only", action="store_true",
                        help="the store's share: upsert the same points without the indexer")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--catalogue", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--status", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        (edge_only if args.edge_only else child)(args)
        return
    figures = measure(args)
    from mosaicrec.indexing.stores import StoreConfig

    store = StoreConfig(path="unused")
    settings = {"rows": args.rows, "profile": "tiny", "store": "edge",
                "segment_points": store.segment_points,
                "release_pages_points": store.release_pages_points,
                "default_segment_number": store.default_segment_number,
                "mode": "edge-only (no indexer)" if args.edge_only else "index_catalogue",
                "batch_size":
                args.batch_size, "chunk_size": 1000, "build": not args.skip_build,
                "sample_interval_s": args.interval,
                "payload_indexes": ["modalities", *(["year", "tags"] if args.payload else [])]}
    write_result(args.name, settings, figures)
    print(json.dumps({k: v for k, v in figures.items() if k != "trace"}, indent=2))


if __name__ == "__main__":
    main()
