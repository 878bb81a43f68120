"""Training time of ``mosaicrec train`` on MovieLens 100K: all 100,000 ratings, the MovieLens
catalogue indexed with the given profile (re-used from the work folder when already indexed).

    .venv/bin/python benchmarks/training.py --movielens ../shared/data/movielens-100k

On a machine with CUDA the sequence model trains there (bf16 autocast) and ALS uses implicit's
GPU solver when implicit was built with CUDA; ``--device cpu`` forces the CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--movielens", type=Path, default=Path("../shared/data/movielens-100k"))
    p.add_argument("--workdir", type=Path, default=Path("/tmp/mosaicrec-training-bench"))
    p.add_argument("--profile", default="offline")
    p.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    p.add_argument("--name", default="training")
    args = p.parse_args(argv)

    from mosaicrec.engine.event_import import import_events
    from mosaicrec.engine.events import SQLiteEventStore
    from mosaicrec.engine.training import TrainingConfig, train
    from mosaicrec.indexing.indexer import IndexerConfig, index_catalogue, load_mapping
    from mosaicrec.indexing.movielens import movielens_catalogue
    from mosaicrec.indexing.stores import StoreConfig

    args.workdir.mkdir(parents=True, exist_ok=True)
    catalogue, _ = movielens_catalogue(args.movielens, args.workdir / "movies.csv")
    t0 = time.perf_counter()
    store, _, _ = index_catalogue(catalogue, StoreConfig(path=str(args.workdir / "index"),
                                                         collection="movies"),
                                  args.profile, mapping=load_mapping(catalogue),
                                  indexer=IndexerConfig(progress=False))
    index_s = time.perf_counter() - t0
    events = SQLiteEventStore(":memory:")
    report_import = import_events(events, args.movielens / "u.data")
    config = TrainingConfig(progress=False, sequence={"device": args.device})
    t1 = time.perf_counter()
    report = train(store, events, config, models_dir=args.workdir / "models",
                   collection="movies")
    seconds = time.perf_counter() - t1
    store.close()
    m = report.manifest
    figures = {"train_s": round(seconds, 1), "phases_s": report.timings, "device": m.device,
               "events": m.counts["events"], "validation_ndcg@10": m.validation["ndcg@10"],
               "validation_users": m.validation["users"], "blend": m.blend.weights,
               "index_s_if_not_cached": round(index_s, 1),
               "import_s": round(report_import.seconds, 2)}
    print(figures)
    write_result(args.name, {"data": "MovieLens 100K (u.data, all ratings)",
                             "profile": args.profile, "device": args.device or "auto"},
                 figures)


if __name__ == "__main__":
    main()
