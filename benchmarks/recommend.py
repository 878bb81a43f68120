"""Latency of ``Recommender.recommend`` and of cross-modal search on an Edge store.

Synthetic clustered catalogues (per-modality blocks fused with the real :class:`Fuser`) of
10k, 100k and 1M items; HNSW built by ``optimize()``; synthetic users with 1-3 tastes and
MovieLens-like history lengths in a SQLite event store. Single-threaded: run it pinned, e.g.

    taskset -c 1 .venv/bin/python benchmarks/recommend.py --sizes 10000 100000
    taskset -c 1 .venv/bin/python benchmarks/recommend.py --sizes 1000000 --width small \\
        --no-payload-index --name recommend_1m

Query encoders are replaced by a lookup (precomputed query vectors), so the search figures are
routing + fusion + store query; a real text tower adds its forward pass (MiniLM ~5-10 ms, CLIP
text ~70 ms per query on this CPU, see docs/performance-facts.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, host_speed, percentiles, timer, write_result  # noqa: E402

WIDTHS = {  # fused width = sum; "full" is MiniLM 384 + CLIP 512 + CLAP 512
    "full": {"text": 384, "image": 512, "audio": 512},
    "small": {"text": 128, "image": 128, "audio": 128},
}


class Lookup:
    """A stand-in query encoder: input string -> precomputed vector."""

    def __init__(self, table: dict[str, np.ndarray], dim: int) -> None:
        self.table, self.dim, self.name, self.modality = table, dim, "lookup", "text"

    def encode(self, batch):
        return np.stack([self.table[x] for x in batch])


def _centers(dims: dict[str, int], n_clusters: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = {m: rng.standard_normal((n_clusters, d), dtype=np.float32) for m, d in dims.items()}
    for c in centers.values():
        c /= np.linalg.norm(c, axis=1, keepdims=True)
    return centers


def _chunks(n: int, dims: dict[str, int], centers: dict[str, np.ndarray], seed: int,
            chunk: int = 20_000):
    """Yield (start, labels, blocks) chunks of a clustered catalogue; modalities share labels."""
    rng = np.random.default_rng(seed + 1)
    n_clusters = len(next(iter(centers.values())))
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        labels = rng.integers(0, n_clusters, k)
        blocks = {m: centers[m][labels] + rng.standard_normal((k, d), dtype=np.float32)
                  * np.float32(0.8 / np.sqrt(d)) for m, d in dims.items()}
        yield start, labels, blocks


def build(n: int, dims: dict[str, int], directory: str, payload_index: bool, image_space: bool,
          seed: int = 0):
    from mosaicrec.encoders.fusion import Fuser
    from mosaicrec.indexing.stores import (
        CollectionSchema,
        Point,
        StoreConfig,
        VectorSpace,
        open_store,
    )

    fuser = Fuser(dims)
    vectors = {"fused": VectorSpace(dim=fuser.dim, encoder="synthetic-fused")}
    if image_space:
        vectors["image"] = VectorSpace(dim=dims["image"], encoder="synthetic-image")
    schema = CollectionSchema(vectors=vectors,
                              payload_indexes={"genre": "keyword"} if payload_index else {})
    store = open_store(StoreConfig(backend="edge", path=directory), schema)
    centers = _centers(dims, max(20, n // 100), seed)
    labels_all = np.empty(n, dtype=np.int64)
    with timer() as t_up:
        for start, labels, blocks in _chunks(n, dims, centers, seed):
            fused = fuser.fuse_batch(blocks)
            labels_all[start:start + len(labels)] = labels
            pts = []
            for j in range(len(labels)):
                vec = {"fused": fused[j]}
                if image_space:
                    vec["image"] = blocks["image"][j]
                pts.append(Point(f"i{start + j}", vec, {"genre": f"g{labels[j] % 20}",
                                                       "year": int(1950 + labels[j] % 70),
                                                       "title": f"Item {start + j}"}))
            store.upsert(pts)
    with timer() as t_opt:
        store.optimize()
    return store, fuser, labels_all, centers, {"upsert_s": t_up.seconds,
                                               "optimize_s": t_opt.seconds}


def make_events(labels: np.ndarray, n_users: int, seed: int = 1):
    from mosaicrec.engine import Interaction, SQLiteEventStore

    rng = np.random.default_rng(seed)
    by_cluster: dict[int, np.ndarray] = {}
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(labels.max() + 2))
    for c in range(labels.max() + 1):
        by_cluster[c] = order[bounds[c]:bounds[c + 1]]
    events = SQLiteEventStore(":memory:")
    clusters = [c for c, items in by_cluster.items() if len(items) >= 5]
    t0 = 1.7e9
    for u in range(n_users):
        tastes = rng.choice(clusters, size=rng.integers(1, 4), replace=False)
        length = int(np.clip(rng.lognormal(4.0, 0.8), 20, 300))  # MovieLens-like: 20..300
        batch = []
        for k in range(length):
            items = by_cluster[int(rng.choice(tastes))]
            # popularity skew inside a cluster: low indices are picked far more often
            item = items[min(int(rng.zipf(1.5)) - 1, len(items) - 1)]
            r = rng.random()
            kind = "like" if r < 0.5 else "view" if r < 0.7 else "rating" if r < 0.9 else \
                "dislike"
            batch.append(Interaction(f"u{u}", f"i{item}", kind, t0 + 3600 * k,
                                     float(rng.integers(1, 6)) if kind == "rating" else None))
        events.append(batch)
    return events


def _lat(fn, calls, warmup: int = 10) -> list[float]:
    for c in calls[:warmup]:
        fn(c)
    out = []
    for c in calls:
        t = time.perf_counter()
        fn(c)
        out.append((time.perf_counter() - t) * 1e3)
    return out


def bench_size(n: int, args) -> dict:
    from mosaicrec.engine import Recommender
    from mosaicrec.engine.search import Searcher, SearchRequest
    from mosaicrec.indexing.stores import Condition, Filter

    dims = WIDTHS[args.width]
    directory = tempfile.mkdtemp(prefix=f"bench_rec_{n}_", dir=args.workdir)
    try:
        t0 = time.time()
        store, fuser, labels, centers, build_times = build(
            n, dims, directory, args.payload_index, args.image_space)
        print(f"[{n}] built in {time.time() - t0:.0f}s: {build_times}", flush=True)
        events = make_events(labels, args.users)
        rec = Recommender(store, events, fuser)
        users = [f"u{k % args.users}" for k in range(args.queries)]
        rng = np.random.default_rng(2)

        def run_cold(u):  # profile rebuilt: history read + user model, every call
            rec.cache.invalidate(u)
            return rec.recommend(u, n=10)

        stage_ms: dict[str, list[float]] = {}

        def run_and_record(u):
            rec.cache.invalidate(u)
            recs = rec.recommend(u, n=10)
            for k, v in recs.timings_ms.items():
                stage_ms.setdefault(k, []).append(v)

        figures: dict = {"build": build_times, "catalogue": n,
                         "fused_dim": fuser.dim, "events": events.count()}
        _lat(run_and_record, users[:50], warmup=0)
        stage_ms.clear()
        figures["recommend_cold_profile_ms"] = percentiles(_lat(run_and_record, users, 0))
        total = sum(np.mean(v) for v in stage_ms.values())
        figures["recommend_stage_ms"] = {k: float(np.mean(v)) for k, v in stage_ms.items()}
        figures["recommend_stage_share"] = {k: float(np.mean(v) / total)
                                            for k, v in stage_ms.items()}
        figures["recommend_cached_profile_ms"] = percentiles(
            _lat(lambda u: rec.recommend(u, n=10), users))
        no_explain = _no_explain(store, events, fuser)
        # warm its own profile cache first (warmup = every user), so only explain differs
        figures["recommend_cached_no_explain_ms"] = percentiles(
            _lat(lambda u: no_explain.recommend(u, n=10), users, warmup=len(users)))
        figures["recommend_diversity_0.3_ms"] = percentiles(
            _lat(lambda u: rec.recommend(u, n=10, diversity=0.3), users))
        if args.payload_index:
            flt = Filter(must=[Condition(field="genre", match="g3")])
            figures["recommend_filtered_ms"] = percentiles(
                _lat(lambda u: rec.recommend(u, n=10, filters=flt), users))
        figures["recommend_cold_start_user_ms"] = percentiles(
            _lat(lambda k: rec.recommend(f"new{k}", n=10), list(range(args.queries))))
        figures["history_events_per_user"] = float(events.count() / args.users)

        # cross-modal search with lookup encoders (query vectors = noisy cluster centres)
        qs = [f"q{k}" for k in range(args.queries)]
        cl = rng.integers(0, len(centers["text"]), len(qs))
        table = {m: {q: centers[m][c] + rng.standard_normal(d).astype(np.float32) * 0.02
                     for q, c in zip(qs, cl, strict=True)} for m, d in dims.items()}
        encoders = {f"text->{m}": Lookup(table[m], dims[m]) for m in dims}
        searcher = Searcher(store, encoders, fuser)
        figures["search_text_to_fused_ms"] = percentiles(_lat(
            lambda q: searcher.search(SearchRequest(text=q, space="fused", limit=10)), qs))
        if args.image_space:
            figures["search_text_to_image_ms"] = percentiles(_lat(
                lambda q: searcher.search(SearchRequest(text=q, space="image", limit=10)), qs))
        items = [f"i{int(k)}" for k in rng.integers(0, n, len(qs))]
        figures["search_item_to_similar_ms"] = percentiles(_lat(
            lambda i: searcher.search(SearchRequest(item_id=i, space="fused", limit=10)), items))
        store.close()
        events.close()
        return figures
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def bench_trained(n: int, args) -> dict:
    """The trained recommender at ``n`` items: ``train()`` on synthetic events (no EASE above
    its size limit: ALS + the sequence model + the content map); then ``recommend`` latency by
    stage, measured in a fresh process that starts as a server does (:func:`serve_latency`)."""
    from mosaicrec.engine.training import TrainingConfig, train

    dims = WIDTHS[args.width]
    directory = tempfile.mkdtemp(prefix=f"bench_trained_{n}_", dir=args.workdir)
    try:
        t0 = time.time()
        store, _, labels, _, build_times = build(
            n, dims, directory, args.payload_index, args.image_space)
        events = make_events(labels, args.users)
        print(f"[{n} trained] built in {time.time() - t0:.0f}s", flush=True)
        config = TrainingConfig(
            # above EASE's size limit, both EASE models are off (as a user must set them)
            **({"ease": None, "ease_all": None} if n > 20_000 else {}),
            # the served sequence model (seeds, loss weights), with fewer epochs
            sequence=TrainingConfig().sequence.model_copy(  # type: ignore[union-attr]
                update={"epochs": args.sequence_epochs}),
            content_map={"spaces": ["fused"], "ridges": [10.0], "folds": 2},
            blend_grid={"sequence": [0.0, 1.0, 2.0], "popularity": [-0.5, 0.0],
                        "als": [0.0, 0.5], "new_item": [0.5]},
            max_tuning_users=min(args.users, 500), progress=False)
        with timer() as t_train:
            report = train(store, events, config, models_dir=Path(directory) / "models",
                           collection="items")
        figures = {"build": build_times, "train_s": t_train.seconds,
                   "train_phases_s": report.timings, "events": events.count(),
                   "blend": report.manifest.blend.weights}
        store.close()
        events.close()
        np.save(Path(directory) / "labels.npy", labels)
        # a server is a fresh process: the building and training process's heap (the 100k
        # build, torch's training allocations) would slow every request measured in it
        subprocess.run([sys.executable, __file__, "--serve-latency", directory, "--width",
                        args.width, "--users", str(args.users), "--queries",
                        str(args.queries)], check=True)
        figures.update(json.loads((Path(directory) / "latency.json").read_text()))
        return figures
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def serve_latency(directory: str, args) -> dict:
    """As a server starts: the collection opened and the model loaded from disk, every payload
    read once (Edge reads an item's payload slowly the first time), the heap frozen; then
    ``recommend`` by stage with the user's state recomputed on every call (first requests
    after the start, then after the server's warm-up of recent users) and with it cached."""
    from mosaicrec.encoders.fusion import Fuser
    from mosaicrec.engine import Recommender, RecommenderConfig
    from mosaicrec.engine.models.artefact import load_model
    from mosaicrec.indexing.stores import StoreConfig, open_store

    with timer() as t_warm:
        store = open_store(StoreConfig(backend="edge", path=directory))
        model = load_model(Path(directory) / "models", collection="items", schema=store.schema)
        store.warm()
    events = make_events(np.load(Path(directory) / "labels.npy"), args.users)
    # no result cache: every call computes its list (the warm-up users come round again)
    rec = Recommender(store, events, Fuser(WIDTHS[args.width]),
                      RecommenderConfig(result_cache_size=0), model=model)
    # as the server does once started (serving/server.py): what was loaded stays out of
    # the cyclic collector's full passes (~0.13 s each with torch and the model loaded)
    _freeze_heap()
    users = [f"u{k % args.users}" for k in range(args.queries)]
    stage_ms: dict[str, list[float]] = {}

    def cached(u, explain=True):  # a repeated request: the state kept, the list computed
        for k, v in rec.recommend(u, n=10, explain=explain).timings_ms.items():
            stage_ms.setdefault(k, []).append(v)

    def cold(u, explain=True):  # history, behaviour state and profile recomputed every call
        rec.cache.invalidate(u)
        cached(u, explain)

    def by_stage() -> dict:
        out = {k: percentiles(v) for k, v in stage_ms.items()}
        stage_ms.clear()
        return out

    # in this process, before the requests (its 64 MB table is out of the caches by then):
    # to compare the host of one run with another's
    speed = host_speed()
    _lat(cold, users[:50], warmup=0)
    by_stage()  # the first requests after the start are not measured
    figures = {"open_load_warm_s": t_warm.seconds, "host_speed_us": speed,
               "recommend_trained_ms": percentiles(_lat(cold, users, 0)),
               "recommend_trained_stage_ms": by_stage()}
    # then as a server is once its start-up warm-up has computed the recent users' lists
    # (serving's warm_users): their vectors read once, the state still recomputed per call;
    # with and without explanations (``explain=False``: the same list) every other request,
    # so the host's drift falls on both alike, in two passes over the users (each user once a
    # pass, with explanations in one of them): no request follows the same user's other one
    rec.warm(events.recent_users(1000))
    _freeze_heap()  # the server freezes the heap once its warm-up is done, caches included
    paired: dict[bool, tuple[list[float], dict[str, list[float]]]] = {
        True: ([], {}), False: ([], {})}
    for turn in (0, 1):
        for k, u in enumerate(users):
            explain = (k + turn) % 2 == 0
            t = time.perf_counter()
            cold(u, explain)
            lat, stages = paired[explain]
            lat.append((time.perf_counter() - t) * 1e3)
            for name, values in stage_ms.items():
                stages.setdefault(name, []).extend(values)
            stage_ms.clear()
    for explain, key in ((True, "after_warm_up"), (False, "no_explanations")):
        lat, stages = paired[explain]
        figures[f"recommend_trained_{key}_ms"] = percentiles(lat)
        figures[f"recommend_trained_{key}_stage_ms"] = {
            name: percentiles(values) for name, values in stages.items()}
    _lat(cached, users[:10], warmup=0)
    by_stage()  # warm-up calls: their stages are not measured either
    figures["recommend_trained_cached_state_ms"] = percentiles(_lat(cached, users, 0))
    figures["recommend_trained_cached_state_stage_ms"] = by_stage()
    store.close()
    events.close()
    (Path(directory) / "latency.json").write_text(json.dumps(figures))
    return figures


def _freeze_heap() -> None:
    """Collect, then keep everything alive now out of the cyclic collector's passes."""
    gc.collect()
    gc.freeze()


def _no_explain(store, events, fuser):
    from mosaicrec.engine import Recommender, RecommenderConfig

    return Recommender(store, events, fuser, RecommenderConfig(explain=False))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    p.add_argument("--width", choices=sorted(WIDTHS), default="full")
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--no-payload-index", dest="payload_index", action="store_false")
    p.add_argument("--no-image-space", dest="image_space", action="store_false")
    p.add_argument("--name", default="recommend")
    p.add_argument("--include", nargs="*", default=[],
                   help="other result files (names) whose figures are merged in, e.g. a 1M run")
    p.add_argument("--workdir", default=None)
    p.add_argument("--trained", action="store_true",
                   help="measure the trained recommender (train() on the synthetic events)")
    p.add_argument("--sequence-epochs", type=int, default=5)
    p.add_argument("--serve-latency", metavar="DIR", default=None,
                   help=argparse.SUPPRESS)  # the fresh process of a --trained run
    args = p.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    if args.serve_latency:
        serve_latency(args.serve_latency, args)
        return
    figures = {}
    for n in args.sizes:
        figures[str(n)] = bench_trained(n, args) if args.trained else bench_size(n, args)
        print(json.dumps({str(n): figures[str(n)]}, indent=1, default=str), flush=True)
    for name in args.include:
        path = RESULTS_DIR / f"{name}.json"
        if path.is_file():
            other = json.loads(path.read_text())
            for size, fig in other["figures"].items():
                figures[size] = {**fig, "settings": other["settings"]}
    settings = {"sizes": args.sizes, "width": WIDTHS[args.width], "users": args.users,
                "queries": args.queries, "payload_index": args.payload_index,
                "image_space": args.image_space, "n": 10, "store": "edge (HNSW m16 efc100)",
                "cpu_affinity": sorted(os.sched_getaffinity(0)), "included": args.include,
                "trained": args.trained, "sequence_epochs": args.sequence_epochs}
    write_result(args.name, settings, figures)


if __name__ == "__main__":
    main()
