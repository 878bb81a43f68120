"""Offline evaluation: temporal splits, metrics, baselines, mosaicrec's methods, tuning on
validation, and reports (``mosaicrec evaluate``).

Names are imported on first use, so that ``import mosaicrec.evaluation.cli`` (done by the
command line for every command) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "EvaluationConfig",
    "EvaluationReport",
    "ItemVectors",
    "SplitConfig",
    "load_interactions",
    "run_evaluation",
    "split_interactions",
    "write_report",
]

_WHERE = {
    "EvaluationConfig": "runner",
    "run_evaluation": "runner",
    "EvaluationReport": "report",
    "write_report": "report",
    "ItemVectors": "vectors",
    "SplitConfig": "split",
    "split_interactions": "split",
    "load_interactions": "interactions",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'mosaicrec.evaluation' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mosaicrec.evaluation.{_WHERE[name]}"), name)
