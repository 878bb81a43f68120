"""Shared helpers for the benchmark scripts: timing, percentiles and one JSON result format.

Every benchmark writes ``benchmarks/results/NAME.json`` through :func:`write_result`, so that
results always carry the machine, library versions and git commit they were measured on.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import itertools
import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_DIR", "host_speed", "machine_info", "git_commit", "percentiles", "timer",
           "write_result"]

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"


def git_commit() -> str | None:
    """``git rev-parse HEAD``, with ``-dirty`` appended when the working tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def machine_info() -> dict[str, Any]:
    """Platform, CPU, Python / torch / numpy versions and the CUDA device (or None)."""
    import numpy as np

    info: dict[str, Any] = {
        "platform": platform.platform(),
        # Shared machines: a load average above cpu_count means the figures are pessimistic.
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": None,
        "cuda_device": None,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        # AVX2 / AVX512 / AMX: decides whether bfloat16 matmuls are native or emulated.
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        if torch.cuda.is_available():
            info["cuda_device"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    info["host_speed_us"] = host_speed()
    return info


def host_speed(repeats: int = 200) -> dict[str, float]:
    """Median microseconds of four fixed workloads, on the CPUs this process may use.

    The project's host runs the same code up to 1.6x faster or slower from one run to the
    next. These probes, recorded beside every result, show whether the CPU, the interpreter or
    memory was slower in a run: Python objects (what a request's candidate merge does), a
    float32 matrix-vector product over 6.6 MB (a behaviour-matrix scan), one small torch
    batched matmul (per-operator cost of a sequence-model pass) and random reads from a table
    larger than the shared cache. They do not see everything: on 2 Dec 2026 they read the same
    in two runs whose latencies differed by 1.6x."""
    import numpy as np

    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((6457, 256), dtype=np.float32)
    vector = rng.standard_normal(256, dtype=np.float32)
    ids = [f"i{k}" for k in range(400)]

    def python_objects() -> None:
        merged: dict[str, list[str]] = {}
        for i in ids:
            merged.setdefault(i, []).append("source")
        sorted(merged.items(), key=lambda t: (len(t[1]), t[0]))

    # 4,096 random floats of a 64 MB table, new ones each call: out of the caches, so shared-L3
    # and memory contention from the host's other tenants shows here (the others run in cache)
    table = rng.standard_normal(16_000_000, dtype=np.float32)
    blocks = itertools.cycle(rng.integers(0, len(table), (repeats, 4096)))  # new rows each time
    probes: dict[str, Any] = {"python_objects": python_objects,
                              "matvec_6457x256": lambda: matrix @ vector,
                              "gather_4096_of_64mb": lambda: table[next(blocks)].sum()}
    try:
        import torch

        x, w, b = torch.randn(4, 80, 64), torch.randn(4, 64, 192), torch.randn(4, 1, 192)
        probes["torch_baddbmm_4x80x64x192"] = lambda: torch.baddbmm(b, x, w)
    except ImportError:
        pass
    out = {}
    collecting = gc.isenabled()
    gc.disable()  # a large heap's collections would be timed, not the host
    try:
        for name, probe in probes.items():
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                probe()
                times.append(time.perf_counter() - t)
            out[name] = round(float(np.median(times)) * 1e6, 2)
    finally:
        if collecting:
            gc.enable()
    return out


def percentiles(latencies_ms: Sequence[float]) -> dict[str, float]:
    """p50, p99 and mean of a list of latencies in milliseconds."""
    import numpy as np

    if len(latencies_ms) == 0:
        return {"p50": float("nan"), "p99": float("nan"), "mean": float("nan")}
    arr = np.asarray(latencies_ms, dtype=np.float64)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p99": float(np.percentile(arr, 99)),
        "mean": float(arr.mean()),
    }


class _Elapsed:
    seconds: float = 0.0

    @property
    def ms(self) -> float:
        return self.seconds * 1000.0


@contextlib.contextmanager
def timer() -> Iterator[_Elapsed]:
    """``with timer() as t: ...`` then read ``t.seconds`` / ``t.ms`` (perf_counter based)."""
    elapsed = _Elapsed()
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.seconds = time.perf_counter() - start


def _summary(obj: Any, indent: int = 2) -> list[str]:
    lines = []
    for key, value in obj.items():
        if isinstance(value, dict):
            lines.append(" " * indent + f"{key}:")
            lines.extend(_summary(value, indent + 2))
        else:
            shown = f"{value:.4g}" if isinstance(value, float) else value
            lines.append(" " * indent + f"{key}: {shown}")
    return lines


def write_result(name: str, settings: dict[str, Any], figures: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/NAME.json`` and print a readable summary; return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": name,
        "machine": machine_info(),
        "git_commit": git_commit(),
        "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "settings": settings,
        "figures": figures,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")
    print(f"== benchmark {name} ({result['timestamp']}, commit {result['git_commit']})")
    print(
        "\n".join(
            _summary({"machine": result["machine"], "settings": settings, "figures": figures})
        )
    )
    print(f"-> {path}")
    return path
