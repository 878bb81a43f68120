"""The full offline evaluation on MovieLens 100K (issue 6), as a benchmark.

    .venv/bin/python benchmarks/evaluation.py evaluate --movielens ../shared/data/movielens-100k

takes the same arguments as ``mosaicrec evaluate``; writes benchmarks/results/evaluation/
(evaluation.md, evaluation.json, evaluation.png, timings.json) and, through
``benchmarks/_common.write_result``, benchmarks/results/evaluation.json with the machine info.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    os.environ.setdefault("MOSAICREC_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from _common import write_result

    from mosaicrec.evaluation.cli import add_parser, config_from_args
    from mosaicrec.evaluation.report import markdown_table, write_report
    from mosaicrec.evaluation.runner import run_evaluation

    torch.set_num_threads(int(os.environ.get("MOSAICREC_TORCH_THREADS", "1")))
    parser = argparse.ArgumentParser(prog="benchmarks/evaluation.py")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args()
    start = time.perf_counter()
    config = config_from_args(args)
    report = run_evaluation(config)
    paths = write_report(report, args.out)
    wall = time.perf_counter() - start
    print(markdown_table(report))
    figures = {
        "wall_seconds": wall,
        "timings": report.timings,
        "comparison": {k: v for k, v in report.comparison.items() if k != "summary"},
        "test_ndcg@10": {r.name: r.test["ndcg@10"] for r in report.rows},
        "cold_item_ndcg@10": {r.name: (r.cold_items or {}).get("ndcg@10") for r in report.rows},
        "outputs": [str(p) for p in paths.values()],
    }
    write_result("evaluation", {"command": config.command, **report.settings}, figures)
    for line in report.comparison["summary"]:
        print("- " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
