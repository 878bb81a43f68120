"""``mosaicrec evaluate`` at catalogue scale: 10,000 items and 100,000 ratings, end to end.

A synthetic catalogue (text only: titles and descriptions drawn from per-topic vocabularies)
and a rating log with topic tastes, popularity skew inside topics and time order are written
to a work folder; then the real command runs as a subprocess (indexing with the given profile,
every baseline tuned on validation, mosaicrec trained and asked through ``recommend``), and its
wall time and peak memory are recorded. Target: under 10 minutes on the 2-core machine.

    .venv/bin/python benchmarks/evaluation_scale.py --items 10000 --ratings 100000
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

_VOCABULARY = """harbor storm forest river city night desert winter garden engine castle island
robot detective dragon comet jazz opera market canyon glacier violin satellite pirate orchard
volcano tunnel lantern meadow circus subway temple"""
WORDS = _VOCABULARY.split()


def make_data(folder: Path, n_items: int, n_ratings: int, seed: int = 0) -> tuple[Path, Path]:
    import pandas as pd

    rng = np.random.default_rng(seed)
    topics = max(10, n_items // 100)
    topic = rng.integers(0, topics, n_items)
    vocab = [rng.choice(WORDS, 4, replace=False) for _ in range(topics)]
    items = pd.DataFrame({
        "id": [f"i{k}" for k in range(n_items)],
        "title": [f"{vocab[t][0].title()} {vocab[t][1]} {k}" for k, t in enumerate(topic)],
        "description": [" ".join(rng.choice(vocab[t], 8)) + f" story number {k}"
                        for k, t in enumerate(topic)],
        "topic": [f"t{t}" for t in topic],
    })
    catalogue = folder / "catalogue.csv"
    items.to_csv(catalogue, index=False)
    (folder / "catalogue.mapping.json").write_text(json.dumps(
        {"id": "id", "title": "title", "description": "description", "tags": None,
         "image": None, "audio": None, "payload": {"topic": "keyword"}}))
    by_topic = [np.flatnonzero(topic == t) for t in range(topics)]
    rows, user, t0 = [], 0, 1.6e9
    while len(rows) < n_ratings:
        tastes = rng.choice(topics, rng.integers(1, 4), replace=False)
        length = int(np.clip(rng.lognormal(4.2, 0.7), 20, 400))
        seen: set[int] = set()
        for step in range(length):
            pool = by_topic[int(rng.choice(tastes))] if rng.random() < 0.85 else \
                by_topic[int(rng.integers(0, topics))]
            if not len(pool):
                continue
            item = int(pool[min(int(rng.zipf(1.3)) - 1, len(pool) - 1)])
            if item in seen:
                continue
            seen.add(item)
            liked = topic[item] in tastes
            rating = int(rng.choice([4, 5]) if liked and rng.random() < 0.8 else
                         rng.integers(1, 4))
            rows.append((f"u{user}", f"i{item}", rating, int(t0 + 3600 * (user * 7 + step))))
        user += 1
    ratings = folder / "ratings.csv"
    pd.DataFrame(rows[:n_ratings], columns=["user_id", "item_id", "rating", "timestamp"]) \
        .to_csv(ratings, index=False)
    return catalogue, ratings


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=10_000)
    p.add_argument("--ratings", type=int, default=100_000)
    p.add_argument("--profile", default="offline")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/mosaicrec-eval-scale"))
    p.add_argument("--extra", nargs="*", default=[], help="more arguments for evaluate")
    p.add_argument("--name", default="evaluation_scale")
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    catalogue, ratings = make_data(args.workdir, args.items, args.ratings)
    command = [sys.executable, "-m", "mosaicrec", "evaluate", "--catalogue", str(catalogue),
               "--ratings", str(ratings), "--profile", args.profile, "--workdir",
               str(args.workdir / "work"), "--out", str(args.workdir / "out"), *args.extra]
    print(" ".join(command), flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)  # progress shows on stderr
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"evaluate failed ({done.returncode}):\n{done.stdout[-4000:]}")
    tail = done.stdout.strip().splitlines()
    peak = re.search(r"peak memory ([\d.]+) GB", done.stdout)
    report = json.loads((args.workdir / "out" / "evaluation.json").read_text())
    timings = json.loads((args.workdir / "out" / "timings.json").read_text())
    figures = {
        "seconds": round(seconds, 1), "minutes": round(seconds / 60, 2),
        "peak_memory_gb": float(peak.group(1)) if peak else None,
        "under_10_minutes": seconds < 600,
        "phases_s": timings["timings_s"],
        "training": timings["served"].get("training"),
        "ndcg@10": {r["name"]: r["test"]["ndcg@10"] for r in report["rows"]},
        "split": report["split"],
    }
    print("\n".join(tail[-12:]))
    print(json.dumps({k: figures[k] for k in ("seconds", "peak_memory_gb", "under_10_minutes",
                                              "ndcg@10")}, indent=1))
    write_result(args.name, {"items": args.items, "ratings": args.ratings,
                             "profile": args.profile, "command": command[1:],
                             "extra": args.extra}, figures)


if __name__ == "__main__":
    main()
