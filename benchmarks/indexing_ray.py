"""Bulk indexing with the Ray engine vs the single-process indexer, on the MovieLens 100K
catalogue (plots and posters) with the default architectures (MiniLM, open_clip ViT-B-32 with
random weights: ``indexing_e2e.default_architectures``), on whatever this machine has: CPUs, or
GPUs (device auto; Ray gives each encoder's actors a GPU or a share of one).

Measured, for each engine: each tower's raw throughput (encoding inputs decoded beforehand,
nothing else; for Ray inside one actor of the engine's own ``EncodeActor``, alone on the
machine), end-to-end items/s (read, decode, encode, fuse, write to an embedded Qdrant Edge store,
build the index), and end to end over the slowest tower's throughput on this machine. From the
per-actor throughput, the time one million items would take on N GPUs (or N CPU cores): an
extrapolation, not a measurement.

Used by ``benchmarks/indexing.py --part ray``; runnable alone:
``python benchmarks/indexing_ray.py [--limit N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from indexing_e2e import MOVIELENS, default_architectures  # noqa: E402

SCALE = (1, 2, 4, 8, 16, 64)  # N for the one-million-item extrapolation


def _rate(encoder: Any, inputs: list[Any], repeats: int) -> float:
    """Items/s of ``encoder.encode_prepared`` on pre-decoded ``inputs`` (after a warm-up)."""
    encoder.encode_prepared(inputs[:encoder.batch_size])
    start = time.perf_counter()
    for _ in range(repeats):
        encoder.encode_prepared(inputs)  # returns numpy: waits for the GPU
    return repeats * len(inputs) / (time.perf_counter() - start)


class Probe:
    """One of the engine's encoder actors, timed on a batch of decoded inputs."""

    def __init__(self, spec: Any, modality: str, device: str, batch_size: int,
                 threads: int) -> None:
        from mosaicrec.indexing.ray_stages import EncodeActor

        self.actor = EncodeActor(spec, modality, device, batch_size, threads)
        self.modality = modality

    def measure(self, batch: dict[str, Any], repeats: int) -> dict[str, float]:
        column = batch[f"in_{self.modality}"]
        inputs = [pickle.loads(blob) for blob in column if len(blob)]
        encode = _rate(self.actor.encoder, inputs, repeats)
        start = time.perf_counter()
        self.actor(dict(batch))  # what the pipeline calls: unpickling the inputs included
        call = len(inputs) / (time.perf_counter() - start)
        return {"encode_items_per_s": round(encode, 2), "call_items_per_s": round(call, 2)}


def _decoded(items: list[Any], encoders: Any) -> tuple[dict[str, Any], float]:
    """The engine's decoding stage on ``items`` in this process (one thread): its output
    batch and items/s."""
    from mosaicrec.indexing.fetch import FetchConfig
    from mosaicrec.indexing.ray_stages import prepare_batch, preparers, ship_block

    table = ship_block(items, [({}, set())] * len(items))
    batch = {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names}
    start = time.perf_counter()
    out = prepare_batch(batch, encoders=preparers(encoders), fetch=FetchConfig(),
                        started=time.time(), workers=1)
    return out, len(items) / (time.perf_counter() - start)


def _index(engine: str, items: list[Any], encoders: Any, schema: Any, batch_size: int,
           workers: int, folder: Path) -> tuple[Any, dict[str, Any]]:
    """One end-to-end run into a fresh Edge store: its report, and for Ray the plan and when
    each batch came back."""
    from mosaicrec.indexing.indexer import BulkIndexer, IndexerConfig
    from mosaicrec.indexing.ray_indexer import RayIndexer
    from mosaicrec.indexing.stores import StoreConfig, open_store

    arrivals: list[tuple[float, int]] = []

    class Timed(RayIndexer):
        def _receive(self, batch: dict[str, Any], run: Any) -> None:
            super()._receive(batch, run)
            arrivals.append((time.perf_counter(), len(batch["item"])))

    store = open_store(StoreConfig(backend="edge", path=str(folder / engine)), schema)
    config = IndexerConfig(batch_size=batch_size, decode_workers=workers, progress=False,
                           engine=engine)
    start = time.perf_counter()
    indexer = (Timed(encoders, store, config) if engine == "ray"
               else BulkIndexer(encoders, store, config))
    report = indexer.run(items)
    store.close()
    extra: dict[str, Any] = {}
    if arrivals:
        extra["first_batch_s"] = round(arrivals[0][0] - start, 2)
        if len(arrivals) > 1:
            done = sum(n for _, n in arrivals[1:])
            extra["steady_items_per_s"] = round(done / (arrivals[-1][0] - arrivals[0][0]), 2)
        extra["plan"] = {m: vars(p) for m, p in getattr(indexer, "plan", {}).get(
            "pools", {}).items()}
    return report, extra


def _extrapolate(per_actor: dict[str, float], unit: str) -> dict[str, Any]:
    """Hours for 1M items on N units, the towers taking turns on each unit."""
    per_item = sum(1.0 / r for r in per_actor.values())
    return {
        "note": f"EXTRAPOLATION, not a measurement: 1e6 x sum over towers of 1/(per-actor "
                f"items/s) / N {unit}s (the towers take turns on each); assumes that decoding "
                "keeps up, that throughput scales linearly and that Qdrant writes keep up",
        "seconds_per_item_per_" + unit.replace(" ", "_"): round(per_item, 5),
        "hours": {str(n): round(1e6 * per_item / n / 3600, 2) for n in SCALE},
    }


def run_ray(limit: int | None = None, probe: int = 128, batch_size: int | None = None,
            workers: int = 2, repeats: int = 1, threads: int | None = None) -> dict[str, Any]:
    """Both engines on MovieLens 100K; the figures for ``indexing_ray.json``. The
    single-process engine gets ``threads`` torch threads (default: every core)."""
    import ray
    import torch

    from mosaicrec.encoders.profiles import load_profile
    from mosaicrec.indexing.catalogue import ColumnMapping, read_catalogue
    from mosaicrec.indexing.distributed import RayEngineConfig, plan_pools, ray_session
    from mosaicrec.indexing.indexer import collection_schema
    from mosaicrec.indexing.movielens import movielens_catalogue

    if not (MOVIELENS / "u.item").is_file():
        return {"skipped": f"MovieLens 100K not found at {MOVIELENS}"}
    gpu = torch.cuda.is_available()
    batch_size = batch_size or (RayEngineConfig().gpu_batch_size if gpu else 32)
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    profile, notes = default_architectures(None, batch_size, "auto")
    encoders = load_profile(profile)
    with tempfile.TemporaryDirectory() as tmp:
        catalogue, _ = movielens_catalogue(MOVIELENS, Path(tmp) / "movies.csv")
        mapping = ColumnMapping.model_validate(
            json.loads((Path(tmp) / "movies.mapping.json").read_text()))
        items = read_catalogue(catalogue, mapping)[0][:limit]
        schema = collection_schema(encoders, dict(mapping.payload))
        sample = items[:probe]
        decoded, decode_rate = _decoded(sample, encoders)
        torch.set_num_threads(threads)  # the decoding stage keeps its process on one thread
        local_towers = {m: round(_rate(enc, [pickle.loads(b) for b in decoded[f"in_{m}"]
                                             if len(b)], repeats), 2)
                        for m, enc in encoders.items.items()}
        local, _ = _index("local", items, encoders, schema, batch_size, workers, Path(tmp))
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        if __name__ != "__main__":  # workers cannot import this module: send Probe by value
            ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        with ray_session(RayEngineConfig()):
            resources = ray.cluster_resources()
            pools = plan_pools(RayEngineConfig(), resources, list(encoders.items), batch_size)
            per_actor = {}
            for m, pool in pools.items():
                actor = ray.remote(num_cpus=pool.num_cpus, num_gpus=pool.num_gpus)(Probe).remote(
                    encoders.specs[m], m, "cuda" if pool.num_gpus else "cpu", pool.batch_size,
                    pool.threads)
                per_actor[m] = ray.get(actor.measure.remote(decoded, repeats))
                ray.kill(actor)
            distributed, extra = _index("ray", items, encoders, schema, batch_size, workers,
                                        Path(tmp))
        ray.shutdown()
    units = resources.get("GPU", 0) if gpu else None
    capacity = {m: per_actor[m]["encode_items_per_s"] * (units or pools[m].max_size)
                for m in pools}
    slow_local = min(local_towers, key=local_towers.get)
    slow_ray = min(capacity, key=capacity.get)
    ray_rate = extra.get("steady_items_per_s", distributed.items_per_s)
    encode_rates = {m: r["encode_items_per_s"] for m, r in per_actor.items()}
    return {
        "items": len(items), "with_poster": sum(it.image is not None for it in items),
        "device": torch.cuda.get_device_name(0) if gpu else f"cpu ({os.cpu_count()} cores)",
        "decode_items_per_s_one_thread": round(decode_rate, 1),
        "local": {
            "towers_items_per_s": local_towers, "slowest_tower": slow_local,
            "items_per_s": round(local.items_per_s, 2), "seconds": round(local.seconds, 2),
            "over_slowest_tower": round(local.items_per_s / local_towers[slow_local], 3),
            "towers_in_turn_items_per_s": round(
                1 / sum(1 / r for r in local_towers.values()), 2),
        },
        "ray": {
            "plan": extra.get("plan"), "per_actor": per_actor,
            "slowest_tower": slow_ray,
            "slowest_tower_capacity_items_per_s": round(capacity[slow_ray], 2),
            "items_per_s": round(distributed.items_per_s, 2),
            "seconds": round(distributed.seconds, 2),
            "first_batch_s": extra.get("first_batch_s"),
            "steady_items_per_s": extra.get("steady_items_per_s"),
            "over_slowest_tower": round(distributed.items_per_s / capacity[slow_ray], 3),
            "steady_over_slowest_tower": round(ray_rate / capacity[slow_ray], 3),
        },
        "ray_over_local": round(distributed.items_per_s / local.items_per_s, 3),
        "one_million_items": _extrapolate(encode_rates, "GPU" if gpu else "CPU core"),
        "settings": {"batch_size": batch_size, "decode_workers": workers, "precision": "auto",
                     "torch_threads_local": threads, "probe_items": len(sample),
                     "limit": limit, "ray": ray.__version__, "cluster": resources, **notes},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="catalogue items")
    parser.add_argument("--probe", type=int, default=128, help="items for the tower probes")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="default: 32 on CPU, RayEngineConfig.gpu_batch_size on a GPU")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the single-process engine (default: every core)")
    parser.add_argument("--name", default="indexing_ray", help="result file name")
    args = parser.parse_args(argv)
    from _common import write_result

    figures = run_ray(args.limit, args.probe, args.batch_size, threads=args.threads)
    write_result(args.name, figures.pop("settings", {"limit": args.limit}), figures)


if __name__ == "__main__":
    main()
