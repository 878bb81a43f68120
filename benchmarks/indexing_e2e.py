"""End-to-end indexing throughput on the MovieLens 100K catalogue (decode + encode + fuse +
store), with the default architectures: real all-MiniLM-L6-v2 text weights, open_clip ViT-B-32
with random weights (no pretrained CLIP weights can be downloaded here; speed is the same).

Used by ``benchmarks/indexing.py --part e2e``; runnable alone:
``python benchmarks/indexing_e2e.py [--limit N] [--precision float32|bfloat16]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MOVIELENS = REPO.parent / "shared" / "data" / "movielens-100k"


def run_e2e(
    limit: int | None = None,
    batch_size: int = 32,
    precision: str = "float32",
    threads: int = 1,
    workers: int = 2,
) -> dict[str, Any]:
    import torch

    from mosaicrec.encoders.profiles import EncoderProfile, load_profile
    from mosaicrec.encoders.registry import default_registry
    from mosaicrec.indexing.catalogue import ColumnMapping, read_catalogue
    from mosaicrec.indexing.indexer import BulkIndexer, IndexerConfig, collection_schema
    from mosaicrec.indexing.movielens import movielens_catalogue
    from mosaicrec.indexing.stores import StoreConfig, open_store

    if not (MOVIELENS / "u.item").is_file():
        return {"skipped": f"MovieLens 100K not found at {MOVIELENS}"}
    torch.set_num_threads(threads)
    registry = default_registry()
    common = {"device": "cpu", "batch_size": batch_size, "precision": precision}
    profile = EncoderProfile(
        name="default-architectures",
        text=registry.resolve("minilm", **common),
        image=registry.resolve("clip-vit-b-32", weights="random", pretrained=None, **common),
        audio=None,
    )
    with tempfile.TemporaryDirectory() as tmp:
        catalogue, _ = movielens_catalogue(MOVIELENS, Path(tmp) / "movies.csv")
        mapping = ColumnMapping.model_validate(
            json.loads((Path(tmp) / "movies.mapping.json").read_text())
        )
        items, _ = read_catalogue(catalogue, mapping)
        items = items[:limit] if limit else items
        t0 = time.perf_counter()
        encoders = load_profile(profile)
        load_s = time.perf_counter() - t0
        # decode-only throughput: what the worker threads must sustain
        t0 = time.perf_counter()
        for it in items[:200]:
            if it.image:
                encoders.items["image"].prepare(it.image, it.id)
        decode_per_s = min(200, len(items)) / (time.perf_counter() - t0)
        store = open_store(
            StoreConfig(backend="edge", path=str(Path(tmp) / "store")),
            collection_schema(encoders, dict(mapping.payload)),
        )
        config = IndexerConfig(batch_size=batch_size, decode_workers=workers, progress=False)
        report = BulkIndexer(encoders, store, config).run(items)
        store.close()
    return {
        "items": len(items),
        "with_poster": sum(it.image is not None for it in items),
        "seconds": round(report.seconds, 2),
        "items_per_s": round(report.items_per_s, 2),
        "model_load_s": round(load_s, 2),
        "poster_decode_preprocess_per_s_one_thread": round(decode_per_s, 1),
        "settings": {"batch_size": batch_size, "precision": precision, "torch_threads": threads,
                     "decode_workers": workers, "text": "all-MiniLM-L6-v2 (real weights)",
                     "image": "open_clip ViT-B-32 (random weights, real architecture)"},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import write_result

    figures = run_e2e(args.limit, args.batch_size, args.precision)
    settings = figures.pop("settings", {"limit": args.limit})
    settings["gpu"] = "not available in this task (no device machine was lent)"
    write_result("indexing_e2e", settings, figures)
