"""Indexing benchmarks: the store layer (``--part store``), end to end (``--part e2e``) and the
Ray engine against the single-process indexer (``--part ray``, see ``indexing_ray.py``; not part
of ``all``).

Store part, on synthetic clustered 384-d unit vectors (100k and 1M by default), all through
mosaicrec's own store classes: upsert throughput, then single-thread top-10 query latency
(p50/p99) and recall@10 against exact search for Qdrant Edge (HNSW built by ``optimize()``,
build time measured), qdrant-client local mode and exact numpy, plus a filtered query (a keyword
filter keeping 10%) on Edge. Then the HNSW search ef is tuned on real MiniLM embeddings
(MovieLens overviews + Flickr captions) so that recall@10 >= 0.95.

The result file is rewritten after every stage (``figures.status`` says how far it got), so a
1M run that is stopped still leaves the smaller sizes on record. Run pinned to one core::

    taskset -c 1 .venv/bin/python benchmarks/indexing.py --part store
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# single-thread numbers: keep BLAS (the numpy baseline) on one thread; set before numpy loads
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, percentiles, timer, write_result  # noqa: E402

from mosaicrec.indexing.stores import (  # noqa: E402
    CollectionSchema,
    Condition,
    Filter,
    Point,
    StoreConfig,
    VectorSpace,
    VectorStore,
    open_store,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
K = 10
N_GENRES = 10  # a "genre" keyword with 10 values: filtering on one keeps 10%
SCHEMA = CollectionSchema(
    vectors={"text": VectorSpace(dim=384, encoder="synthetic-384")},
    payload_indexes={"genre": "keyword"},
)


# ---- data and ground truth -------------------------------------------------------------------


def clustered(n: int, dim: int, seed: int, n_clusters: int) -> np.ndarray:
    """Unit vectors around ``n_clusters`` random centres (noise about half the centre norm)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim), dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        out[start:stop] = centres[rng.integers(0, n_clusters, stop - start)]
        out[start:stop] += 0.5 * rng.standard_normal((stop - start, dim), dtype=np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def exact_topk(x: np.ndarray, queries: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Exact top-K row ids by cosine (rows are unit), in chunks of queries."""
    out = np.empty((len(queries), K), dtype=np.int64)
    for start in range(0, len(queries), 64):
        sims = queries[start:start + 64] @ x.T
        if mask is not None:
            sims[:, ~mask] = -np.inf
        top = np.argpartition(-sims, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        out[start:start + 64] = np.take_along_axis(top, order, axis=1)
    return out


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    hits = [len(set(f) & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / K


def genre(i: int) -> str:
    return f"g{i % N_GENRES}"


# ---- one store --------------------------------------------------------------------------------


def load(store: VectorStore, x: np.ndarray, batch: int = 10_000) -> dict[str, float]:
    """Upsert everything through the store layer (validation, tolist, batching included)."""
    with timer() as t:
        for start in range(0, len(x), batch):
            store.upsert([
                Point(str(i), {"text": x[i]}, {"genre": genre(i)})
                for i in range(start, min(len(x), start + batch))
            ])
    return {"upsert_s": round(t.seconds, 2), "upsert_points_per_s": round(len(x) / t.seconds)}


def measure(
    store: VectorStore,
    queries: np.ndarray,
    truth: np.ndarray,
    *,
    ef: int | None = None,
    exact: bool = False,
    flt: Filter | None = None,
) -> dict[str, Any]:
    """Single-thread top-10 latency over ``queries`` and recall@10 against ``truth``."""
    lat, found = [], []
    for q in queries:
        start = time.perf_counter()
        hits = store.query(q, using="text", limit=K, ef=ef, exact=exact, filter=flt)
        lat.append((time.perf_counter() - start) * 1000)
        found.append([int(h.id) for h in hits])
    pct = percentiles(lat)
    return {
        "queries": len(queries),
        "p50_ms": round(pct["p50"], 3),
        "p99_ms": round(pct["p99"], 3),
        "recall_at_10": round(recall(found, truth[: len(queries)]), 4),
    }


def numpy_exact(x: np.ndarray, queries: np.ndarray) -> dict[str, Any]:
    lat = []
    for q in queries:
        start = time.perf_counter()
        sims = x @ q
        top = np.argpartition(-sims, K)[:K]
        _ = top[np.argsort(-sims[top])]
        lat.append((time.perf_counter() - start) * 1000)
    pct = percentiles(lat)
    return {"queries": len(queries), "p50_ms": round(pct["p50"], 3),
            "p99_ms": round(pct["p99"], 3), "recall_at_10": 1.0}


def dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file()) / 2**20, 1)


# ---- stages -----------------------------------------------------------------------------------


class Recorder:
    """Holds the figures and rewrites the result file at every step, so a run that is stopped
    (the 1M HNSW build takes tens of minutes on one core) still leaves what it measured."""

    def __init__(self, name: str, settings: dict[str, Any], figures: dict[str, Any]) -> None:
        self.name, self.settings, self.figures = name, settings, figures

    def step(self, what: str) -> None:
        self.figures["status"] = f"running: {what} (since {time.strftime('%H:%M:%S %Z')})"
        write_result(self.name, self.settings, self.figures)


def synthetic_data(n: int, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """``n`` clustered points and ``args.queries`` float32 queries (same seeds, same data)."""
    x = clustered(n, 384, args.seed, n_clusters=max(10, n // 100))
    # queries: indexed points moved by noise of norm ~0.3, so they fall in the same clusters
    rng = np.random.default_rng(args.seed + 1)
    picked = x[rng.choice(n, args.queries, replace=False)]
    noise = rng.standard_normal((args.queries, 384), dtype=np.float32) * np.float32(0.3 / 384**0.5)
    queries = picked + noise
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    # float32 like x: a float64 query would make numpy convert all of x on every product
    assert queries.dtype == np.float32
    return x, queries


def synthetic(n: int, args: argparse.Namespace, workdir: Path, out: dict, rec: Recorder) -> None:
    name = f"synthetic_{n}"
    x, queries = synthetic_data(n, args)
    mask = np.array([genre(i) == "g3" for i in range(n)])
    with timer() as t:
        truth, truth_f = exact_topk(x, queries), exact_topk(x, queries, mask)
    out.update(n=n, dim=384, ground_truth_s=round(t.seconds, 1))
    out["numpy_exact"] = numpy_exact(x, queries[: args.numpy_queries])
    flt = Filter(must=[Condition(field="genre", match="g3")])

    if n > args.qdrant_local_max:
        out["qdrant_local"] = {
            "skipped": f"n={n} > --qdrant-local-max {args.qdrant_local_max}: qdrant-client local "
            "mode is a brute-force Python stand-in for tests (docs/qdrant-edge.md measured 273 s "
            "to upsert and 672 ms per query at 1M)"
        }
    else:
        rec.step(f"{name}: qdrant-client local mode")
        out["qdrant_local"] = qdrant_local(x, queries, truth, truth_f, args.local_queries)

    rec.step(f"{name}: Edge upsert")
    edge: dict[str, Any] = {}
    out["edge"] = edge
    cfg = StoreConfig(backend="edge", path=str(workdir / f"edge-{n}"))
    with open_store(cfg, SCHEMA) as store:
        edge.update(load(store, x))
        edge["before_optimize"] = measure(store, queries[:20], truth)
        rec.step(f"{name}: Edge optimize() (HNSW build)")
        with timer() as t:
            built = store.optimize()
        edge.update(optimize_s=round(t.seconds, 1), optimize_built=built, info=store.info())
        edge["info"].pop("schema")
        edge["disk_mb"] = dir_mb(workdir / f"edge-{n}")
        rec.step(f"{name}: Edge queries")
        edge["by_ef"] = {
            str(ef): measure(store, queries, truth, ef=ef) for ef in (16, 32, 64, 100, 128, 256)
        }
        edge["filtered_10pct"] = {
            str(ef): measure(store, queries, truth_f, ef=ef, flt=flt) for ef in (64, 100)
        }
    shutil.rmtree(workdir / f"edge-{n}", ignore_errors=True)


def qdrant_local(
    x: np.ndarray, queries: np.ndarray, truth: np.ndarray, truth_f: np.ndarray, n_queries: int
) -> dict[str, Any]:
    """qdrant-client local mode: upsert throughput, plain and filtered query latency."""
    flt = Filter(must=[Condition(field="genre", match="g3")])
    # ":memory:": local mode on a path writes every point to SQLite (~200 points/s here)
    with open_store(StoreConfig(backend="qdrant", path=":memory:"), SCHEMA) as store:
        local = load(store, x)
        local["query"] = measure(store, queries[:n_queries], truth)
        local["filtered_10pct"] = measure(store, queries[:5], truth_f, flt=flt)
    return local


def real_texts() -> list[str]:
    import pandas as pd

    movies = pd.read_csv(SHARED_DATA / "movielens-100k" / "tmdb_items.csv")
    captions = pd.read_csv(SHARED_DATA / "flickr-1k" / "captions.csv")
    texts = movies["overview"].dropna().astype(str).tolist()
    texts += captions["caption"].astype(str).tolist()
    return [t for t in texts if t.strip()]


def real_embeddings(args: argparse.Namespace, workdir: Path, out: dict, rec: Recorder) -> None:
    """Recall@10 vs exact per ef on real MiniLM embeddings, HNSW really built."""
    if not (SHARED_DATA / "flickr-1k" / "captions.csv").is_file():
        out["skipped"] = f"real data not found under {SHARED_DATA}"
        return
    cache = Path(tempfile.gettempdir()) / "mosaicrec_bench_minilm.npy"
    texts = real_texts()
    if cache.is_file() and len(np.load(cache, mmap_mode="r")) == len(texts):
        emb, encode_s = np.load(cache), None
    else:
        import torch

        from mosaicrec.encoders import create_encoder

        torch.set_num_threads(1)
        encoder = create_encoder("minilm", device="cpu")
        with timer() as t:
            emb = np.concatenate(
                [encoder.encode(texts[i:i + 64]) for i in range(0, len(texts), 64)]
            )
        encode_s = round(t.seconds, 1)
        np.save(cache, emb)
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    rng = np.random.default_rng(args.seed)
    held_out = rng.choice(len(emb), 500, replace=False)  # queries are texts not in the index
    keep = np.setdiff1d(np.arange(len(emb)), held_out)
    x, queries = emb[keep].astype(np.float32), emb[held_out].astype(np.float32)
    truth = exact_topk(x, queries)
    schema = CollectionSchema(vectors={"text": VectorSpace(dim=x.shape[1], encoder="minilm")},
                              payload_indexes={"genre": "keyword"})
    # thresholds of 100 KB: the ~10 MB of vectors get a graph and searches walk it
    cfg = StoreConfig(backend="edge", path=str(workdir / "edge-real"), indexing_threshold_kb=100,
                      full_scan_threshold_kb=100)
    out.update(texts=len(texts), indexed=len(x), queries=len(queries), encode_s=encode_s)
    with open_store(cfg, schema) as store:
        out.update(load(store, x))
        with timer() as t:
            out["optimize_built"] = store.optimize()
        out["optimize_s"] = round(t.seconds, 1)
        out["info"] = {k: v for k, v in store.info().items() if k != "schema"}
        out["by_ef"] = {str(ef): measure(store, queries, truth, ef=ef)
                        for ef in (8, 16, 32, 64, 100, 128)}
    shutil.rmtree(workdir / "edge-real", ignore_errors=True)


def run_store(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mosaicrec-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items()
                if k not in ("workdir", "mark_stopped", "merge", "name", "numpy_only",
                             "qdrant_local_only")}
    settings.update(top_k=K, filter="genre == g3 (10% of points, keyword payload index)",
                    cpu_affinity=sorted(os.sched_getaffinity(0)),
                    edge_hnsw="m=16, ef_construct=100 (StoreConfig defaults)",
                    ef_note="ef 'default(...)' keys: runs before StoreConfig.hnsw_ef had a default")
    figures: dict[str, Any] = {}
    previous = RESULTS_DIR / f"{args.name}.json"
    if args.merge and previous.is_file():
        # keep stages measured by an earlier run (each carries its own measured_at)
        figures = json.loads(previous.read_text())["figures"]
    rec = Recorder(args.name, settings, figures)
    small = [n for n in args.sizes if n <= 200_000]
    stages: list[tuple[str, Any]] = [
        (f"synthetic_{n}", functools.partial(synthetic, n, args, workdir)) for n in small
    ]
    if not args.no_real:
        stages.append(("real_minilm", functools.partial(real_embeddings, args, workdir)))
    stages += [(f"synthetic_{n}", functools.partial(synthetic, n, args, workdir))
               for n in args.sizes if n > 200_000]
    for name, stage in stages:
        out = figures[name] = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        load_before = os.getloadavg()[0]
        rec.step(name)
        stage(out, rec)
        # other jobs on the machine skew timings; record how busy it was
        out["load_avg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        gc.collect()
    real = figures.get("real_minilm", {}).get("by_ef", {})
    enough = [int(ef) for ef, m in real.items() if ef.isdigit() and m["recall_at_10"] >= 0.95]
    figures["hnsw_ef"] = {
        "store_default": StoreConfig(backend="edge", path="x").hnsw_ef,
        "smallest_ef_with_recall_0.95_on_real": min(enough) if enough else None,
    }
    figures["status"] = "complete"
    write_result(args.name, settings, figures)


def remeasure(args: argparse.Namespace, key: str) -> None:
    """Re-measure one baseline (``numpy_exact`` or ``qdrant_local``) of the synthetic stages
    into the existing result file, on the same seeded data, leaving the rest as measured."""
    path = RESULTS_DIR / f"{args.name}.json"
    result = json.loads(path.read_text())
    figures = result["figures"]
    for n in args.sizes:
        x, queries = synthetic_data(n, args)
        if key == "numpy_exact":
            measured = numpy_exact(x, queries[: args.numpy_queries])
        else:
            mask = np.array([genre(i) == "g3" for i in range(n)])
            truth, truth_f = exact_topk(x, queries), exact_topk(x, queries, mask)
            measured = qdrant_local(x, queries, truth, truth_f, args.local_queries)
        measured["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        figures.setdefault(f"synthetic_{n}", {})[key] = measured
        del x, queries
        gc.collect()
    write_result(args.name, result["settings"], figures)


def mark_stopped(name: str, message: str) -> None:
    """Record in the result file that a run was stopped, and why (keeps everything measured)."""
    path = RESULTS_DIR / f"{name}.json"
    result = json.loads(path.read_text())
    figures = result["figures"]
    figures["status"] = f"stopped ({figures.get('status', '?')}): {message}"
    write_result(name, result["settings"], figures)


def run_e2e(args: argparse.Namespace) -> None:
    """Decode + encode + fuse + store on MovieLens 100K: see ``indexing_e2e.py``."""
    from indexing_e2e import run_e2e as measure

    figures = measure(args.e2e_limit)
    settings = figures.pop("settings", {})
    settings["gpu"] = "not available in this task (no device machine was lent)"
    write_result("indexing_e2e", settings, figures)


def run_ray(args: argparse.Namespace) -> None:
    """Single-process vs Ray engine on MovieLens 100K: see ``indexing_ray.py``."""
    from indexing_ray import main as measure

    argv = ["--probe", str(args.ray_probe), "--name", args.ray_name]
    measure(argv + (["--limit", str(args.ray_limit)] if args.ray_limit else []))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["store", "e2e", "ray", "all"], default="all")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=1000, help="queries per Edge setting")
    parser.add_argument("--numpy-queries", type=int, default=200)
    parser.add_argument("--local-queries", type=int, default=50)
    parser.add_argument("--qdrant-local-max", type=int, default=200_000,
                        help="skip qdrant-client local mode above this many points")
    parser.add_argument("--no-real", action="store_true", help="skip the MiniLM ef tuning")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--e2e-limit", type=int, default=None, help="catalogue items (e2e)")
    parser.add_argument("--ray-limit", type=int, default=None, help="catalogue items (ray)")
    parser.add_argument("--ray-probe", type=int, default=128,
                        help="items for the raw tower throughput probes (ray)")
    parser.add_argument("--ray-name", default="indexing_ray", help="result file name (ray)")
    parser.add_argument("--workdir", default=None, help="where the stores are built (temp dir)")
    parser.add_argument("--name", default="indexing_store", help="result file name")
    parser.add_argument("--merge", action="store_true",
                        help="keep the stages already in the result file that this run skips")
    parser.add_argument("--numpy-only", action="store_true",
                        help="only re-measure the numpy baseline into the existing result file")
    parser.add_argument("--qdrant-local-only", action="store_true",
                        help="only measure qdrant-client local mode into the existing result file")
    parser.add_argument("--mark-stopped", metavar="REASON",
                        help="only record in the result file that its run was stopped, and why")
    args = parser.parse_args(argv)
    if args.numpy_only or args.qdrant_local_only:
        remeasure(args, "numpy_exact" if args.numpy_only else "qdrant_local")
        return
    if args.mark_stopped:
        mark_stopped(args.name, args.mark_stopped)
        return
    if args.part in ("store", "all"):
        run_store(args)
    if args.part in ("e2e", "all"):
        run_e2e(args)
    if args.part == "ray":
        run_ray(args)


if __name__ == "__main__":
    main()
