"""Closed-loop load test of ``mosaicrec serve`` on 127.0.0.1: recommend and text search over
REST and gRPC, with 1, 8 and 32 concurrent clients, on a collection of 100,000 items with a
trained model.

The server runs as its own process (one process with threads, as on Edge in production); the
clients are asyncio tasks in this process, each sending its next request when the previous one
answered. Every phase is bounded in time and stops by itself; only loopback is used. The main
phase (gRPC recommend, 32 clients) runs for two minutes and records the server's RSS at its
start and end. The result cache answers repeated (user, options) requests until the user's
events change, the catalogue or the model changes, or after ``result_cache_ttl_s``. The server
precomputes the default list of every user before it reports ready (``warm_users``, as Gorse
precomputes recommendations); ``--no-cache`` measures every request computed.

    .venv/bin/python benchmarks/serve.py                 # build, train, serve, measure
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import percentiles, write_result  # noqa: E402

QUERIES = ["waves crashing on a beach", "a quiet forest at dawn", "city lights at night",
           "stars over the desert", "a storm at sea", "birdsong in the trees"]


def build(data_dir: Path, n_items: int, n_users: int, epochs: int) -> dict:
    """A collection of synthetic items embedded with the tiny profile's dimensions (so text
    queries go through real, if untrained, encoders), events, and a trained model."""
    from mosaicrec.encoders.profiles import load_profile
    from mosaicrec.engine.events import SQLiteEventStore
    from mosaicrec.engine.training import TrainingConfig, train
    from mosaicrec.engine.user_model import Interaction
    from mosaicrec.indexing.indexer import collection_schema
    from mosaicrec.indexing.stores import Point, StoreConfig, open_store

    encoders = load_profile("tiny")
    schema = collection_schema(encoders, {"category": "keyword"})
    store = open_store(StoreConfig(path=str(data_dir), collection="items"), schema)
    rng = np.random.default_rng(0)
    clusters = 200
    dims = {m: e.dim for m, e in encoders.items.items()}
    centres = {m: rng.standard_normal((clusters, d)).astype(np.float32) for m, d in dims.items()}
    labels = rng.integers(0, clusters, n_items)
    t0 = time.perf_counter()
    for start in range(0, n_items, 5000):
        lab = labels[start:start + 5000]
        blocks = {m: centres[m][lab] + 0.5 * rng.standard_normal((len(lab), d)).astype(
            np.float32) for m, d in dims.items()}
        fused = encoders.fuser.fuse_batch(blocks)
        store.upsert([Point(f"i{start + j}", {**{m: blocks[m][j] for m in dims},
                                              "fused": fused[j]},
                            {"title": f"Item {start + j}", "category": f"c{lab[j] % 20}"})
                      for j in range(len(lab))])
    upsert_s = time.perf_counter() - t0
    events = SQLiteEventStore(data_dir / "items.events.sqlite")
    by_cluster = [np.flatnonzero(labels == c) for c in range(clusters)]
    batch = []
    for u in range(n_users):
        tastes = rng.choice(clusters, 2, replace=False)
        for k in range(int(rng.integers(20, 80))):
            pool = by_cluster[int(rng.choice(tastes))]
            item = int(pool[min(int(rng.zipf(1.4)) - 1, len(pool) - 1)])
            batch.append(Interaction(f"u{u}", f"i{item}", "like", 1.7e9 + 3600 * k + u))
    events.append(batch)
    t1 = time.perf_counter()
    report = train(store, events, TrainingConfig(
        ease=None, ease_all=None, sequence={"epochs": epochs}, progress=False,
        content_map={"spaces": ["text"], "ridges": [10.0], "folds": 2},
        blend_grid={"sequence": [0.0, 1.0, 2.0], "popularity": [-0.5, 0.0],
                    "als": [0.0, 0.5], "new_item": [0.5]}, max_tuning_users=500),
        models_dir=data_dir / "items.models", collection="items")
    train_s = time.perf_counter() - t1
    store.close()
    events.close()
    return {"items": n_items, "users": n_users, "events": len(batch),
            "upsert_s": round(upsert_s, 1), "train_s": round(train_s, 1),
            "blend": report.manifest.blend.weights}


def start_server(data_dir: Path, cache: bool, warm_users: int = 0,
                 ) -> tuple[subprocess.Popen, str, int, int]:
    env = {**os.environ, "MOSAICREC_DATA_DIR": str(data_dir), "MOSAICREC_AUTH": "true",
           "MOSAICREC_RESULT_CACHE": "10000" if cache else "0", "MOSAICREC_LOG_LEVEL": "WARNING",
           "MOSAICREC_WARM_USERS": str(warm_users if cache else 0)}
    key = subprocess.run([sys.executable, "-m", "mosaicrec", "keys", "create",
                          f"bench{time.time_ns()}", "--scopes", "read,write", "--path",
                          str(data_dir)], env=env, capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    rest, grpc_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mosaicrec", "serve", "--path", str(data_dir), "--port",
         str(rest), "--grpc-port", str(grpc_port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    import httpx

    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{rest}/health/ready", timeout=2).status_code == 200:
                return proc, key, rest, grpc_port
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("server did not become ready in 600 s")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def closed_loop(call, clients: int, seconds: float, users: int, seed: int) -> dict:
    """``clients`` workers each calling ``call(user, query)`` back to back for ``seconds``."""
    latencies: list[float] = []
    errors: list[str] = []
    stop = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                await call(f"u{rng.randrange(users)}", rng.choice(QUERIES))
                latencies.append((time.perf_counter() - t) * 1e3)
            except Exception as err:  # recorded, the run goes on
                errors.append(f"{type(err).__name__}: {str(err)[:200]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(clients)))
    elapsed = time.perf_counter() - t0
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": len(latencies),
            "per_s": round(len(latencies) / elapsed, 1), "errors": len(errors),
            "error_examples": errors[:3], "latency_ms": percentiles(latencies)}


def clients_for(key: str, rest: int, grpc_port: int):
    import grpc
    import httpx

    from mosaicrec.serving.grpc import mosaicrec_pb2 as pb
    from mosaicrec.serving.grpc import mosaicrec_pb2_grpc as pb_grpc

    channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
    stub = pb_grpc.RecommendationsStub(channel)
    meta = (("x-api-key", key),)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{rest}", headers={"X-API-Key": key},
                             timeout=30, limits=httpx.Limits(max_connections=64))

    async def grpc_recommend(user: str, _q: str) -> None:
        await stub.Recommend(pb.RecommendRequest(collection="items", user_id=user, n=10),
                             metadata=meta, timeout=30)

    async def grpc_search(_u: str, q: str) -> None:
        await stub.Search(pb.SearchRequest(collection="items", text=q, limit=10),
                          metadata=meta, timeout=30)

    async def rest_recommend(user: str, _q: str) -> None:
        r = await http.post("/v1/collections/items/recommend", json={"user_id": user, "n": 10})
        r.raise_for_status()

    async def rest_search(_u: str, q: str) -> None:
        r = await http.post("/v1/collections/items/search", json={"text": q, "limit": 10})
        r.raise_for_status()

    ops = {("grpc", "recommend"): grpc_recommend, ("grpc", "search"): grpc_search,
           ("rest", "recommend"): rest_recommend, ("rest", "search"): rest_search}
    return ops, channel, http


async def measure(key: str, rest: int, grpc_port: int, pid: int, args) -> dict:
    ops, channel, http = clients_for(key, rest, grpc_port)
    out: dict = {"phases": []}
    for (protocol, op), call in ops.items():
        await closed_loop(call, 4, 3, args.users, 99)  # warm-up
        for clients in (1, 8, 32):
            result = await closed_loop(call, clients, args.phase_s, args.users, clients)
            result.update(protocol=protocol, operation=op)
            print(json.dumps(result), flush=True)
            out["phases"].append(result)
    start_rss = rss_mb(pid)
    main = await closed_loop(ops[("grpc", "recommend")], 32, args.main_s, args.users, 7)
    main.update(protocol="grpc", operation="recommend", start_rss_mb=round(start_rss, 1),
                end_rss_mb=round(rss_mb(pid), 1))
    print(json.dumps(main), flush=True)
    out["main"] = main
    import httpx

    metrics = httpx.get(f"http://127.0.0.1:{rest}/metrics").text
    def per_stage(metric: str) -> dict[str, float]:
        return {line.split('stage="')[1].split('"')[0]: float(line.split()[-1])
                for line in metrics.splitlines() if line.startswith(metric)}

    out["stage_seconds_sum"] = per_stage("mosaicrec_recommend_stage_seconds_sum")
    counts = per_stage("mosaicrec_recommend_stage_seconds_count")
    # every computed list times its history stage; every answer from the cache is "cached"
    served = counts.get("cached", 0.0) + counts.get("history", 0.0)
    out["result_cache"] = {"hits": counts.get("cached", 0.0), "computed": counts.get(
        "history", 0.0), "hit_rate": round(counts.get("cached", 0.0) / served, 4)
        if served else None}
    await channel.close()
    await http.aclose()
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=5, help="sequence model epochs")
    p.add_argument("--phase-s", type=float, default=10.0)
    p.add_argument("--main-s", type=float, default=120.0)
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--data-dir", type=Path, default=None, help="re-use a built collection")
    p.add_argument("--name", default="serve")
    args = p.parse_args(argv)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="mosaicrec-serve-"))
    setup = {}
    if not (data_dir / "items").exists():
        setup = build(data_dir, args.items, args.users, args.epochs)
        print("built", json.dumps(setup), flush=True)
    t0 = time.perf_counter()
    proc, key, rest, grpc_port = start_server(data_dir, not args.no_cache, args.users)
    ready_s = round(time.perf_counter() - t0, 1)
    print(f"server ready in {ready_s} s", flush=True)
    try:
        figures = asyncio.run(measure(key, rest, grpc_port, proc.pid, args))
    finally:
        proc.terminate()
        proc.wait(30)
    figures["setup"] = setup
    figures["ready_s"] = ready_s  # start-up, including the precomputed lists
    main_phase = figures["main"]
    def met(phase: dict) -> bool:  # the target: >= 500 rec/s with p99 < 50 ms
        return bool(phase["per_s"] >= 500 and phase["errors"] == 0
                    and phase["latency_ms"]["p99"] < 50)

    grpc_rec = [ph for ph in figures["phases"] + [main_phase]
                if ph["protocol"] == "grpc" and ph["operation"] == "recommend"]
    figures["target_met_at_clients"] = sorted({ph["clients"] for ph in grpc_rec if met(ph)})
    figures["main_phase_target_met"] = met(main_phase)
    write_result(args.name, {"items": args.items, "users": args.users, "cache": not args.no_cache,
                             "phase_s": args.phase_s, "main_s": args.main_s,
                             "server": "mosaicrec serve (one process), Qdrant Edge, tiny "
                                       "encoders for text queries", "clients": "asyncio, same "
                                       "machine (2 cores shared with the server)"}, figures)


if __name__ == "__main__":
    main()
