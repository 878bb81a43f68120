"""How much the MovieLens 100K result moves with mosaicrec's random draws.

    .venv/bin/python benchmarks/seed_draws.py --movielens ../shared/data/movielens-100k

runs the protocol of ``mosaicrec evaluate`` once per draw (split, tie order and baselines fixed;
only ALS as a baseline, for the paired difference) and changes nothing but the seeds of
mosaicrec's models: draw ``k`` trains the sequence model's members from seeds
``k * members ...`` and ALS from seed ``k``; draw 0 is the default, the served configuration.
Each draw chooses its blend on validation as ``train`` does. Prints validation and test
NDCG@10 per draw, their mean and standard deviation, and writes
``benchmarks/results/seed_draws.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

_MOSAICREC = "mosaicrec (trained, served)"


def _draw(config: Any, k: int) -> dict[str, Any]:
    """One evaluation with the k-th draw of mosaicrec's seeds."""
    from mosaicrec.engine.training import TrainingConfig
    from mosaicrec.evaluation.runner import run_evaluation

    defaults = TrainingConfig()
    overrides: dict[str, Any] = {}
    if defaults.sequence is not None:
        overrides["sequence"] = defaults.sequence.model_copy(
            update={"seed": k * defaults.sequence.members})
    if defaults.als is not None:
        overrides["als"] = defaults.als.model_copy(update={"seed": k})
    start = time.perf_counter()
    report = run_evaluation(config.model_copy(update={"training": overrides}))
    row = next(r for r in report.rows if r.name == _MOSAICREC)
    return {
        "draw": k,
        "sequence_seeds": overrides["sequence"].seed if "sequence" in overrides else None,
        "als_seed": k if "als" in overrides else None,
        "validation_ndcg@10": row.validation_ndcg,
        "test_ndcg@10": row.test["ndcg@10"],
        "test_ndcg@10_se": row.ndcg_se,
        "new_item_ndcg@10": (row.cold_items or {}).get("ndcg@10"),
        "cold_user_ndcg@10": row.slices.get("cold_users", {}).get("ndcg@10"),
        "paired_difference_vs_ALS": report.comparison.get("paired_difference_ALS"),
        "blend": row.params.get("blend"),
        "seconds": time.perf_counter() - start,
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1
            else 0.0, "min": min(values), "max": max(values)}


def main() -> int:
    os.environ.setdefault("MOSAICREC_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from _common import write_result

    from mosaicrec.evaluation.runner import EvaluationConfig

    parser = argparse.ArgumentParser(prog="benchmarks/seed_draws.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movielens", type=Path, required=True, help="MovieLens 100K folder")
    parser.add_argument("--draws", type=int, default=3, help="draws 0 .. N-1 (default 3)")
    parser.add_argument("--workdir", type=Path, default=Path("mosaicrec-data/evaluation"))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("MOSAICREC_TORCH_THREADS", "1")))
    config = EvaluationConfig(
        ratings=args.movielens / "u.data", movielens=args.movielens, workdir=args.workdir,
        baselines=["ALS (implicit)"],
        command="benchmarks/seed_draws.py " + " ".join(sys.argv[1:]))
    draws = []
    for k in range(args.draws):
        draws.append(_draw(config, k))
        d = draws[-1]
        print(f"draw {k}: validation NDCG@10 {d['validation_ndcg@10']:.4f}, test "
              f"{d['test_ndcg@10']:.4f} ± {d['test_ndcg@10_se']:.4f}, new items "
              f"{d['new_item_ndcg@10']}, cold users {d['cold_user_ndcg@10']}, "
              f"{d['seconds']:.0f} s, blend {d['blend']}", flush=True)
    figures = {key: _spread([d[key] for d in draws])
               for key in ("validation_ndcg@10", "test_ndcg@10", "new_item_ndcg@10",
                           "cold_user_ndcg@10", "paired_difference_vs_ALS")
               if all(d[key] is not None for d in draws)}
    for key, s in figures.items():
        print(f"{key}: mean {s['mean']:.4f}, sd {s['sd']:.4f} (min {s['min']:.4f}, "
              f"max {s['max']:.4f}) over {len(draws)} draws")
    write_result("seed_draws", {"command": config.command, "draws": args.draws,
                                "torch_threads": torch.get_num_threads()},
                 {"draws": draws, **figures})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
