"""The methods of one run: baselines tuned on validation and scored densely, and mosaicrec
as served, trained by ``mosaicrec train``'s code and asked through ``recommend``.

:class:`Suite` owns the two stages, the user slices and the cold-item slice, and states the
verdict: the paired difference against ALS and against the best baseline, and the distance to
the published reference figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from mosaicrec.evaluation import baselines as bl
from mosaicrec.evaluation.evaluator import (
    MethodResult,
    cold_item_users,
    evaluate_cold_items,
    evaluate_cold_top,
    evaluate_method,
    evaluate_top,
    make_stage,
)
from mosaicrec.evaluation.grids import TuningGrids
from mosaicrec.evaluation.history import Catalogue
from mosaicrec.evaluation.reference import compare_with_reference
from mosaicrec.evaluation.report import MethodRow
from mosaicrec.evaluation.split import Split
from mosaicrec.evaluation.tuning import TuningResult, expand_grid, grid_search, validation_ndcg

if TYPE_CHECKING:
    from mosaicrec.evaluation.runner import EvaluationConfig

__all__ = ["Suite", "SERVED", "UNTRAINED"]

Builder = Callable[[dict[str, Any]], bl.Recommender]
SERVED = "mosaicrec (trained, served)"
UNTRAINED = "mosaicrec without training (served)"


class Suite:
    """Stages, slices and methods of one evaluation run."""

    def __init__(self, split: Split, catalogue: Catalogue, spaces: dict[str, np.ndarray],
                 config: EvaluationConfig, grids: TuningGrids) -> None:
        self.split, self.catalogue, self.spaces = split, catalogue, spaces
        self.config, self.grids = config, grids
        self.ks = tuple(sorted(config.ks))
        self.val = make_stage(split, catalogue, "val", tie_seed=config.seed)
        self.test = make_stage(split, catalogue, "test", tie_seed=config.seed)
        positives = np.asarray(self.test.history.positives.sum(axis=1)).ravel()[self.test.users]
        self.user_slices = {
            "cold_users": positives <= config.cold_user_max_positives,
            "few_positives": positives <= config.few_positives_max,
        }
        self.cold_users_items = cold_item_users(self.test)
        self.chance = self._chance_level()
        self.tuning_log: dict[str, list[dict[str, Any]]] = {}
        self.per_user: dict[str, np.ndarray] = {}
        self.served_info: dict[str, Any] = {}
        self.method_seconds: dict[str, float] = {}  # per baseline: tuning, refit and test

    # -- helpers ----------------------------------------------------------------------------
    def _chance_level(self, draws: int = 200) -> dict[str, float]:
        """Expected cold-slice metrics of a random ranking (mean over seeded draws)."""
        users = self.cold_users_items
        if len(users) == 0:
            return {}
        rng = np.random.default_rng(self.config.seed)
        runs = [evaluate_cold_items(rng.random((len(users), len(self.test.cold_items))),
                                    self.test, users, self.ks) for _ in range(draws)]
        return {k: float(np.mean([r[k] for r in runs])) for k in runs[0] if k != "n_users"}

    def _log(self, name: str, result: TuningResult) -> None:
        self.tuning_log[name] = [{"params": p, result.metric: s} for p, s in result.trials]

    def _make_row(self, res: MethodResult, *, family: str, description: str,
                  params: dict[str, Any], tuned: bool, val_score: float | None,
                  cold: dict[str, float] | None) -> MethodRow:
        ndcg = res.per_user["ndcg@10"]
        self.per_user[res.name] = ndcg
        return MethodRow(
            name=res.name, family=family, description=description, params=params, tuned=tuned,
            validation_ndcg=val_score, test=res.metrics,
            ndcg_se=float(ndcg.std(ddof=1) / np.sqrt(len(ndcg))), beyond=res.beyond,
            slices=res.slices, cold_items=cold)

    def _row(self, method: bl.Recommender, *, description: str, params: dict[str, Any],
             tuned: bool, val_score: float | None,
             new_items: Callable[[np.ndarray], np.ndarray] | None = None) -> MethodRow:
        """Evaluate a baseline (fitted here on train+validation) on test and the slices."""
        res = evaluate_method(method, self.test, ks=self.ks,
                              diversity_vectors=self.spaces.get(self.config.diversity_space),
                              user_slices=self.user_slices)
        cold = None
        if new_items is not None and len(self.cold_users_items):
            scores = new_items(self.cold_users_items)[:, self.test.cold_items]
            cold = evaluate_cold_items(scores, self.test, self.cold_users_items, self.ks)
        return self._make_row(res, family="baseline", description=description, params=params,
                              tuned=tuned, val_score=val_score, cold=cold)

    def _tuned(self, name: str, build: Builder, grid: list[dict[str, Any]], *,
               description: str, bar: Any = None) -> MethodRow:
        if bar is not None:
            bar.set_postfix_str(name)
        start = time.perf_counter()
        result = grid_search(build, grid, self.val, on_trial=bar.update if bar else None)
        self._log(name, result)
        method = build(result.best)
        method.name = name
        row = self._row(method, description=description, params=result.best,
                        tuned=len(grid) > 1, val_score=result.best_score)
        self.method_seconds[name] = time.perf_counter() - start
        return row

    # -- the run ------------------------------------------------------------------------------
    def run(self, timings: dict[str, float], store: Any, workdir: Path) -> list[MethodRow]:
        rows: list[MethodRow] = []
        steps: list[tuple[str, Callable[[], list[MethodRow]]]] = [
            ("baselines", self._baselines), ("content_baselines", self._content_baselines),
            ("mosaicrec", lambda: self._served(store, workdir))]
        for name, step in steps:
            t = time.perf_counter()
            rows.extend(step())
            timings[name] = time.perf_counter() - t
        timings.update({f"baselines / {k}": v for k, v in self.method_seconds.items()})
        return rows

    def _baselines(self) -> list[MethodRow]:
        g, seed, wanted = self.grids, self.config.seed, self.config.baselines
        candidates: list[tuple[str, Builder, list[dict[str, Any]], str]] = [
            ("random", lambda p: bl.RandomScores(seed), [{}], "uniform random scores (seeded)"),
            ("popular", lambda p: bl.MostPopular(), [{}], "most interacted-with items"),
            ("item-kNN", lambda p: bl.ItemKNN(bl.ItemKNNConfig(**p)),
             expand_grid(k=g.item_knn_k),
             "item-item cosine on binary positives, top-k neighbours"),
            ("EASE", lambda p: bl.EASE(bl.EASEConfig(**p)), expand_grid(lam=g.ease_lam),
             "EASE on binary positives"),
            ("ALS (implicit)", lambda p: bl.ALS(bl.ALSConfig(**p)),
             expand_grid(factors=g.als_factors, regularization=g.als_regularization,
                         alpha=g.als_alpha, iterations=[g.als_iterations], seed=[seed]),
             "implicit ALS, CPU"),
            ("BPR (implicit)", lambda p: bl.BPR(bl.BPRConfig(**p)),
             expand_grid(factors=g.bpr_factors, learning_rate=g.bpr_learning_rate,
                         regularization=g.bpr_regularization, iterations=[g.bpr_iterations],
                         seed=[seed]), "implicit BPR, CPU, 1 thread"),
        ]
        chosen = [c for c in candidates if wanted is None or c[0] in wanted]
        # one bar over every trial of every baseline: the long phase of a large catalogue
        with tqdm(total=sum(len(c[2]) for c in chosen), desc="baselines (tuning)",
                  unit="trial", disable=not self.config.progress) as bar:
            return [self._tuned(name, build, grid, description=desc, bar=bar)
                    for name, build, grid, desc in chosen]

    def _content_baselines(self) -> list[MethodRow]:
        rows = []
        wanted = self.config.baselines
        for space, matrix in self.spaces.items():
            name = f"content-only ({space})"
            if wanted is not None and name not in wanted and "content-only" not in wanted:
                continue
            method = bl.ContentKNN(matrix, name=name)
            val_score = validation_ndcg(method.fit(self.val.history).score(self.val.users),
                                        self.val)
            rows.append(self._row(
                method, params={"space": space}, tuned=False, val_score=val_score,
                new_items=method.score,
                description=f"mean of the user's positive items' {space} vectors, cosine"))
        return rows

    def _served(self, store: Any, workdir: Path) -> list[MethodRow]:
        from mosaicrec.engine import Recommender
        from mosaicrec.engine.training import train
        from mosaicrec.evaluation.served import event_store_from_split, served_lists

        cfg, k = self.config, max(self.ks)
        start = time.perf_counter()
        events = event_store_from_split(self.split.frame)
        self.served_info["event store"] = {"seconds": time.perf_counter() - start}
        training = cfg.training_config()
        report = train(store, events, training, models_dir=workdir / "models",
                       collection=store.config.collection)
        rows = []
        for name, model in ((SERVED, report.model), (UNTRAINED, None)):
            rec = Recommender(store, events, model=model)
            lists = served_lists(rec, self.catalogue, self.test.users, k,
                                 progress=cfg.progress, desc=name)
            res = evaluate_top(name, lists.top, self.test, ks=self.ks,
                               diversity_vectors=self.spaces.get(cfg.diversity_space),
                               user_slices=self.user_slices)
            cold, cold_seconds = None, 0.0
            if len(self.cold_users_items):
                cold_lists = served_lists(rec, self.catalogue, self.cold_users_items, k,
                                          only_items=self.test.cold_items,
                                          progress=cfg.progress, desc=f"{name}, new items")
                cold = evaluate_cold_top(cold_lists.top, self.test, self.cold_users_items,
                                         self.ks)
                cold_seconds = cold_lists.seconds
            trained = model is not None
            self.served_info[name] = {"seconds": lists.seconds, "latency_ms": lists.latency_ms,
                                      "new items seconds": cold_seconds}
            rows.append(self._make_row(
                res, family="mosaicrec", tuned=trained,
                val_score=report.manifest.validation.get("ndcg@10") if trained else None,
                params={"ease": report.manifest.ease.model_dump() if report.manifest.ease
                        else None, "blend": report.manifest.blend.weights} if trained else {},
                cold=cold,
                description="Recommender.recommend with the model `mosaicrec train` fits: "
                            "candidates from behaviour vectors, EASE, recent neighbours, "
                            "popular and new items; blend of z-scored signals chosen on "
                            "validation" if trained else
                            "Recommender.recommend with no trained model: the fusion user "
                            "model's content similarity and popularity"))
        self.served_info["training"] = {
            "seconds": report.seconds, "timings": report.timings,
            "validation": {k: v for k, v in report.manifest.validation.items()
                           if k != "trials"}, "model_version": report.manifest.version}
        self.tuning_log["mosaicrec blend (validation)"] = report.manifest.validation.get(
            "trials", [])
        events.close()
        return rows

    # -- verdict ------------------------------------------------------------------------------
    def compare(self, rows: list[MethodRow]) -> dict[str, Any]:
        """mosaicrec as served against ALS, the best baseline and the reference figures."""
        base = [r for r in rows if r.family == "baseline"]
        ours = next(r for r in rows if r.name == SERVED)
        out: dict[str, Any] = {"mosaicrec": ours.name, "ndcg10_mosaicrec": ours.test["ndcg@10"]}
        summary = []
        best = max(base, key=lambda r: r.test["ndcg@10"], default=None)
        for label, other in (("ALS", next((r for r in base if r.name.startswith("ALS")), None)),
                             ("best baseline", best)):
            if other is None:
                continue
            diff = self.per_user[ours.name] - self.per_user[other.name]
            se = float(diff.std(ddof=1) / np.sqrt(len(diff)))
            key = label.replace(" ", "_")
            out.update({f"vs_{key}": other.name, f"paired_difference_{key}": float(diff.mean()),
                        f"paired_se_{key}": se})
            if label != "ALS" and other.name == out.get("vs_ALS"):
                continue  # ALS is the best baseline: its line says so
            summary.append(
                f"mosaicrec as served: test NDCG@10 {ours.test['ndcg@10']:.4f} vs "
                f"{'ALS, the best baseline,' if label == 'ALS' and other is best else label} "
                f"'{other.name}' {other.test['ndcg@10']:.4f}: paired difference "
                f"{diff.mean():+.4f} ± {se:.4f} SE over {len(diff)} users.")
        chance = self.chance.get("ndcg@10", float("nan"))
        if ours.cold_items is not None:
            cold = ours.cold_items["ndcg@10"]
            out.update({"cold_ndcg10": cold, "cold_vs_chance": cold / chance})
            summary.append(f"New items (never seen in training), ranked from their content "
                           f"through the content map: NDCG@10 {cold:.4f}, {cold / chance:.1f}x "
                           f"chance ({chance:.4f}).")
        reference = compare_with_reference(ours)
        out["reference"] = reference
        summary += [line["summary"] for line in reference]
        out["summary"] = summary
        return out
