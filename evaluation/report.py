"""The evaluation report: one object, written as Markdown, JSON and a PNG chart.

Everything in ``evaluation.json`` and ``evaluation.md`` depends only on the data, the settings
and the seeds, so a rerun on CPU reproduces them bit for bit; wall-clock timings (phases,
training, recommend latencies) go to ``timings.json`` beside them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MethodRow", "EvaluationReport", "write_report", "markdown_table"]


class MethodRow(BaseModel):
    """One method's figures on the test split."""

    model_config = ConfigDict(extra="forbid")

    name: str
    family: Literal["baseline", "mosaicrec"]
    description: str
    params: dict[str, Any] = Field(default_factory=dict)
    tuned: bool = False
    validation_ndcg: float | None = None
    test: dict[str, float] = Field(default_factory=dict)
    ndcg_se: float = 0.0
    beyond: dict[str, float] = Field(default_factory=dict)
    slices: dict[str, dict[str, float]] = Field(default_factory=dict)
    cold_items: dict[str, float] | None = None  # None: cannot score new items (chance)


class EvaluationReport(BaseModel):
    """Settings, split, every method's figures, the tuning trials and the verdict."""

    model_config = ConfigDict(extra="forbid")

    settings: dict[str, Any]
    split: dict[str, Any]
    vectors: dict[str, Any]
    rows: list[MethodRow]
    chance: dict[str, float]
    comparison: dict[str, Any]
    tuning: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict, exclude=True)
    served: dict[str, Any] = Field(default_factory=dict, exclude=True)  # latencies, training
    command: str = ""

    def row(self, name: str) -> MethodRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no method {name!r} in the report; have {[r.name for r in self.rows]}")


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def markdown_table(report: EvaluationReport, k: int = 10) -> str:
    """The main table: accuracy at ``k`` and at the largest cut-off, beyond accuracy, slices."""
    ks = report.settings.get("ks", [10, 20])
    k2 = max(ks)
    head = [
        "Method", f"NDCG@{k} (± SE)", f"Recall@{k}", f"P@{k}", f"F1@{k}", f"MAP@{k}",
        f"HR@{k}", f"MRR@{k}", f"NDCG@{k2}", f"Recall@{k2}", "Coverage@10", "Diversity@10",
        "Novelty", "Pop. bias", "Cold-item NDCG@10", "Cold-user NDCG@10",
        "≤5-positive users NDCG@10",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    chance = report.chance.get(f"ndcg@{k}")
    for r in report.rows:
        t = r.test
        cold = (_fmt(r.cold_items.get(f"ndcg@{k}")) if r.cold_items is not None
                else f"cannot score ({_fmt(chance)} = chance)")
        cells = [
            f"{r.name}", f"{_fmt(t.get(f'ndcg@{k}'))} ± {_fmt(r.ndcg_se)}",
            _fmt(t.get(f"recall@{k}")), _fmt(t.get(f"precision@{k}")), _fmt(t.get(f"f1@{k}")),
            _fmt(t.get(f"map@{k}")), _fmt(t.get(f"hit_rate@{k}"), 3), _fmt(t.get(f"mrr@{k}")),
            _fmt(t.get(f"ndcg@{k2}")), _fmt(t.get(f"recall@{k2}")),
            _fmt(r.beyond.get("coverage@10"), 3), _fmt(r.beyond.get("diversity@10"), 3),
            _fmt(r.beyond.get("novelty@10"), 2), _fmt(r.beyond.get("popularity_bias@10"), 2),
            cold, _fmt(r.slices.get("cold_users", {}).get(f"ndcg@{k}")),
            _fmt(r.slices.get("few_positives", {}).get(f"ndcg@{k}")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _markdown(report: EvaluationReport) -> str:
    s, sp = report.settings, report.split
    out = [
        "# mosaicrec offline evaluation",
        "",
        f"Data: `{s.get('ratings')}`; {sp['n_users']} users, {sp['n_items']} items; split "
        f"`{sp['config']['kind']}` (test {sp['config']['test_k']}, validation "
        f"{sp['config']['val_k']}); positives rating ≥ {s.get('positive_threshold')}; "
        f"{sp['n_cold_items']} held-out new items (seed {sp['config']['cold_item_seed']}); "
        f"seed {s.get('seed')}. Test users evaluated: {sp['test_users']}; cold-item slice: "
        f"{sp['cold_item_users']} users; cold users (≤ {s.get('cold_user_max_positives')} "
        f"positives in train+validation): {sp['cold_users']}; users with ≤ "
        f"{s.get('few_positives_max')} training positives: {sp['few_positives_users']}.",
        "",
        f"Reproduce: `{report.command}`" if report.command else "",
        "",
        "## Test split (every setting chosen on validation only)",
        "",
        markdown_table(report),
        "",
        f"Chance on the cold-item slice: NDCG@10 {_fmt(report.chance.get('ndcg@10'))}, "
        f"Recall@10 {_fmt(report.chance.get('recall@10'))}.",
        "",
        "## Verdict",
        "",
    ]
    out += [f"- {line}" for line in report.comparison.get("summary", [])]
    out += ["", "## Chosen settings", "", "| Method | Settings | Validation NDCG@10 |",
            "|---|---|---|"]
    for r in report.rows:
        params = ", ".join(f"{k}={v}" for k, v in r.params.items()) or "–"
        out.append(f"| {r.name} | {params} | {_fmt(r.validation_ndcg)} |")
    out += ["", "## Item vectors", ""]
    out += [f"- {k}: {v}" for k, v in report.vectors.items()]
    if report.notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(out) + "\n"


def _chart(report: EvaluationReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report.rows
    names = [r.name for r in rows]
    colors = ["#4c72b0" if r.family == "baseline" else "#dd8452" for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 0.38 * len(rows) + 1.6), sharey=True)
    ndcg = [r.test.get("ndcg@10", 0.0) for r in rows]
    ax1.barh(names, ndcg, xerr=[r.ndcg_se for r in rows], color=colors)
    ax1.set_xlabel("test NDCG@10 (± SE over users)")
    ax1.invert_yaxis()
    chance = report.chance.get("ndcg@10", 0.0)
    cold = [r.cold_items.get("ndcg@10", 0.0) if r.cold_items is not None else chance
            for r in rows]
    hatches = ["" if r.cold_items is not None else "//" for r in rows]
    bars = ax2.barh(names, cold, color=colors)
    for bar, hatch in zip(bars, hatches, strict=True):
        bar.set_hatch(hatch)
    ax2.axvline(chance, color="black", linestyle="--", linewidth=1, label="chance")
    ax2.set_xlabel("cold-item slice NDCG@10 (hatched: cannot score new items)")
    ax2.legend(loc="lower right")
    fig.suptitle("mosaicrec evaluation (blue: baselines, orange: mosaicrec)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)


def write_report(report: EvaluationReport, out_dir: str | Path) -> dict[str, Path]:
    """Write ``evaluation.md``, ``evaluation.json``, ``evaluation.png`` and ``timings.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out / "evaluation.md",
        "json": out / "evaluation.json",
        "chart": out / "evaluation.png",
        "timings": out / "timings.json",
    }
    paths["markdown"].write_text(_markdown(report))
    data = report.model_dump(mode="json")
    paths["json"].write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=True) + "\n")
    wall_clock = {"timings_s": report.timings, "served": report.served}
    paths["timings"].write_text(json.dumps(wall_clock, indent=2, sort_keys=True,
                                           default=str) + "\n")
    _chart(report, paths["chart"])
    return paths
