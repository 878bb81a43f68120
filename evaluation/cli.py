"""``mosaicrec evaluate``: offline evaluation against baselines, as one command.

Example (the full MovieLens 100K run)::

    mosaicrec evaluate --movielens ../shared/data/movielens-100k \\
        --out benchmarks/results/evaluation
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "main", "config_from_args"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``evaluate`` on a subparsers object; the handler is ``args.func``."""
    p = subparsers.add_parser(
        "evaluate", help="evaluate mosaicrec as served against baselines on an interaction log",
        description="Split an interaction log by time, index the catalogue, tune every "
        "baseline on validation, train mosaicrec with `train`'s code and take each test user's "
        "list from the recommender itself; write a Markdown table, a JSON file and a PNG chart.",
    )
    p.add_argument("--ratings", "--events", dest="ratings", type=Path, default=None,
                   help="interaction log (MovieLens u.data, or CSV/TSV with user, item, "
                        "rating or type, timestamp); default: DIR/u.data with --movielens")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--movielens", type=Path, metavar="DIR",
                     help="a MovieLens 100K folder (its catalogue is written and indexed)")
    src.add_argument("--catalogue", type=Path, metavar="FILE",
                     help="a catalogue file (CSV/TSV/Parquet/JSONL), indexed in --workdir")
    p.add_argument("--mapping", type=Path, default=None, help="column mapping of --catalogue")
    p.add_argument("--profile", default="offline",
                   help="encoder profile for indexing (default: offline)")
    p.add_argument("--workdir", type=Path, default=Path("mosaicrec-data/evaluation"),
                   help="where the catalogue is indexed and the model trained (re-used)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/evaluation"))
    p.add_argument("--k", type=int, nargs="+", default=[10, 20], help="cut-offs (must include 10)")
    p.add_argument("--positive-threshold", type=float, default=4.0)
    p.add_argument("--split", choices=["leave-last-k", "global"], default="leave-last-k")
    p.add_argument("--test-k", type=int, default=5)
    p.add_argument("--val-k", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="small grids (a reduced run, for CI)")
    p.add_argument("--baselines", nargs="*", default=None,
                   help="baselines to run (default: all), e.g. popular 'ALS (implicit)'")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=main)
    return p


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`EvaluationConfig` an argument namespace describes."""
    from mosaicrec.errors import ConfigError
    from mosaicrec.evaluation.runner import EvaluationConfig
    from mosaicrec.evaluation.split import SplitConfig

    ratings = args.ratings
    if ratings is None:
        if args.movielens is None:
            raise ConfigError("--ratings is required unless --movielens DIR is given")
        ratings = args.movielens / "u.data"
    split = SplitConfig(kind="leave_last_k" if args.split == "leave-last-k" else "global_temporal",
                        test_k=args.test_k, val_k=args.val_k)
    return EvaluationConfig(
        ratings=ratings, movielens=args.movielens, catalogue=args.catalogue,
        mapping=args.mapping, profile=args.profile, workdir=args.workdir, out=args.out,
        ks=sorted(set(args.k)), positive_threshold=args.positive_threshold, split=split,
        seed=args.seed, quick=args.quick, baselines=args.baselines,
        progress=not args.no_progress,
        command="mosaicrec evaluate " + shlex.join(_evaluate_argv()),
    )


def _evaluate_argv() -> list[str]:
    """The arguments after ``evaluate`` on this process's command line (for the report)."""
    argv = sys.argv[1:]
    return argv[argv.index("evaluate") + 1:] if "evaluate" in argv else argv


def main(args: argparse.Namespace) -> int:
    """Run the evaluation described by ``args``; print the table and where files went."""
    import resource
    import time

    from mosaicrec.evaluation.report import markdown_table, write_report
    from mosaicrec.evaluation.runner import run_evaluation

    start = time.perf_counter()
    report = run_evaluation(config_from_args(args))
    paths = write_report(report, args.out)
    print(markdown_table(report))
    print()
    for line in report.comparison.get("summary", []):
        print("- " + line)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB on Linux
    print(f"\nwrote {', '.join(str(p) for p in paths.values())} "
          f"in {time.perf_counter() - start:.0f} s (peak memory {peak_gb:.2f} GB)")
    return 0
