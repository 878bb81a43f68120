"""The methods of one run, each tuned on validation and evaluated once on test.

:class:`Suite` owns the two stages, the user slices and the cold-item slice, runs baselines and
mosaicrec's methods through the same code path, and states the verdict.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mosaicrec.evaluation import baselines as bl
from mosaicrec.evaluation.evaluator import (
    cold_item_users,
    evaluate_cold_items,
    evaluate_method,
    make_stage,
)
from mosaicrec.evaluation.grids import TuningGrids
from mosaicrec.evaluation.history import Catalogue
from mosaicrec.evaluation.mosaic import (
    ColdItemConfig,
    FusionContent,
    Hybrid,
    HybridConfig,
)
from mosaicrec.evaluation.report import MethodRow
from mosaicrec.evaluation.split import Split
from mosaicrec.evaluation.tuning import (
    TuningResult,
    expand_grid,
    grid_search,
    tune_cold_map,
    tune_hybrid,
    validation_ndcg,
)

if TYPE_CHECKING:
    from mosaicrec.evaluation.runner import EvaluationConfig
    from mosaicrec.evaluation.vectors import ItemVectors

__all__ = ["Suite"]

Builder = Callable[[dict[str, Any]], bl.Recommender]


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

    def _row(self, method: bl.Recommender, *, family: str, description: str,
             params: dict[str, Any], tuned: bool, val_score: float | None,
             new_items: Callable[[np.ndarray], np.ndarray] | None = None) -> MethodRow:
        """Evaluate a method (fitted here on train+validation) on test and the slices."""
        res = evaluate_method(method, self.test, ks=self.ks,
                              diversity_vectors=self.spaces[self.config.diversity_space],
                              user_slices=self.user_slices)
        cold = None
        if new_items is not None and len(self.cold_users_items):
            scores = new_items(self.cold_users_items)[:, self.test.cold_items]
            cold = evaluate_cold_items(scores, self.test, self.cold_users_items, self.ks)
        ndcg = res.per_user["ndcg@10"]
        self._per_user[method.name] = ndcg
        return MethodRow(
            name=method.name, family=family, description=description, params=params,
            tuned=tuned, validation_ndcg=val_score, test=res.metrics,
            ndcg_se=float(ndcg.std(ddof=1) / np.sqrt(len(ndcg))), beyond=res.beyond,
            slices=res.slices, cold_items=cold,
        )

    def _tuned(self, name: str, build: Builder, grid: list[dict[str, Any]], *, family: str,
               description: str) -> MethodRow:
        result = grid_search(build, grid, self.val)
        self._log(name, result)
        method = build(result.best)
        method.name = name
        return self._row(method, family=family, description=description, params=result.best,
                         tuned=len(grid) > 1, val_score=result.best_score)

    # -- the run ------------------------------------------------------------------------------
    def run(self, timings: dict[str, float]) -> list[MethodRow]:
        self._per_user: dict[str, np.ndarray] = {}
        rows: list[MethodRow] = []
        for step in (self._baselines, self._content_baselines, self._fusion, self._hybrid):
            t = time.perf_counter()
            rows.extend(step())
            timings[step.__name__.strip("_")] = time.perf_counter() - t
        return rows

    def _baselines(self) -> list[MethodRow]:
        g, seed = self.grids, self.config.seed
        rows = [
            self._tuned("random", lambda p: bl.RandomScores(seed), [{}], family="baseline",
                        description="uniform random scores (seeded)"),
            self._tuned("popular", lambda p: bl.MostPopular(), [{}], family="baseline",
                        description="most interacted-with items"),
            self._tuned("item-kNN", lambda p: bl.ItemKNN(bl.ItemKNNConfig(**p)),
                        expand_grid(k=g.item_knn_k), family="baseline",
                        description="item-item cosine on binary positives, top-k neighbours"),
            self._tuned("EASE", lambda p: bl.EASE(bl.EASEConfig(**p)),
                        expand_grid(lam=g.ease_lam), family="baseline",
                        description="EASE on binary positives"),
        ]
        als_grid = expand_grid(factors=g.als_factors, regularization=g.als_regularization,
                               alpha=g.als_alpha, iterations=[g.als_iterations], seed=[seed])
        rows.append(self._tuned("ALS (implicit)", lambda p: bl.ALS(bl.ALSConfig(**p)), als_grid,
                                family="baseline", description="implicit ALS, CPU, 1 thread"))
        self.als_best = bl.ALSConfig(**rows[-1].params)
        bpr_grid = expand_grid(factors=g.bpr_factors, learning_rate=g.bpr_learning_rate,
                               regularization=g.bpr_regularization,
                               iterations=[g.bpr_iterations], seed=[seed])
        rows.append(self._tuned("BPR (implicit)", lambda p: bl.BPR(bl.BPRConfig(**p)), bpr_grid,
                                family="baseline", description="implicit BPR, CPU, 1 thread"))
        return rows

    def _content_baselines(self) -> list[MethodRow]:
        rows = []
        for space, matrix in self.spaces.items():
            method = bl.ContentKNN(matrix, name=f"content-only ({space})")
            val_score = validation_ndcg(method.fit(self.val.history).score(self.val.users),
                                        self.val)
            rows.append(self._row(
                method, family="baseline", params={"space": space}, tuned=False,
                val_score=val_score, new_items=method.score,
                description=f"mean of the user's positive items' {space} vectors, cosine"))
        return rows

    def _fusion(self) -> list[MethodRow]:
        rows, best = [], (-np.inf, None)
        for label, cfg in self.grids.fusion_variants.items():
            cfg = cfg.model_copy(update={"space": self.config.content_space,
                                         "seed": self.config.seed})
            method = FusionContent(self.spaces[cfg.space], cfg, name=label)
            val_score = validation_ndcg(method.fit(self.val.history).score(self.val.users),
                                        self.val)
            if val_score > best[0]:
                best = (val_score, cfg)
            rows.append(self._row(
                method, family="mosaicrec", params=cfg.model_dump(exclude_defaults=True),
                tuned=False, val_score=val_score, new_items=method.score,
                description="engine FusionUserModel profile, cosine in the fused space"))
        self.fusion_best = best[1]
        self.tuning_log["fusion variants"] = [
            {"params": r.name, "ndcg@10": r.validation_ndcg} for r in rows]
        return rows

    def _hybrid(self) -> list[MethodRow]:
        g = self.grids
        cold = tune_cold_map(
            self.spaces, self.val, self.als_best,
            expand_grid(space=[s for s in g.cold_spaces if s in self.spaces], ridge=g.cold_ridge),
            n_folds=g.cold_folds, seed=self.config.seed)
        self._log("cold-item map (pseudo-new items on validation)", cold)
        base = HybridConfig(content=self.fusion_best,
                            cold=ColdItemConfig(als=self.als_best, **cold.best))
        blend = tune_hybrid(self.spaces, self.val, base,
                            expand_grid(half_life=g.hybrid_half_life, lam=g.hybrid_lam),
                            g.content_weights, g.popularity_weights, g.mapped_weights)
        self._log("hybrid", blend)
        p = blend.best
        cfg = base.model_copy(update={
            "cf": base.cf.model_copy(update={"half_life": p["half_life"], "lam": p["lam"]}),
            "content_weight": p["content_weight"], "popularity_weight": p["popularity_weight"],
            "mapped_weight": p["mapped_weight"],
        })
        hybrid = Hybrid(self.spaces, cfg)
        row = self._row(
            hybrid, family="mosaicrec", params={**p, "cold_map": cold.best}, tuned=True,
            val_score=blend.best_score, new_items=lambda users: hybrid.score_cold(users),
            description="z(EASE on recency-weighted history) + w·z(fusion profile) + "
                        "w·z(content mapped to ALS factors) + w·z(log popularity); new items: "
                        "ridge map content -> ALS factors")
        row.name = "mosaicrec hybrid"
        self._per_user[row.name] = self._per_user.pop(hybrid.name)
        rows = [row]
        if p["content_weight"] != 0 or p["mapped_weight"] != 0:
            # Ablation with every other setting as chosen on validation: what content adds.
            plain = {**p, "content_weight": 0.0, "mapped_weight": 0.0}
            no_content = Hybrid(self.spaces, cfg.model_copy(update={
                "content_weight": 0.0, "mapped_weight": 0.0, "cold": None}))
            val_score = next((s for q, s in blend.trials if q == plain), None)
            ablation = self._row(
                no_content, family="mosaicrec", params=plain, tuned=False, val_score=val_score,
                description="ablation: the hybrid without its two content terms")
            ablation.name = "ablation: hybrid without content"
            self._per_user[ablation.name] = self._per_user.pop(no_content.name)
            rows.append(ablation)
        return rows

    # -- verdict ------------------------------------------------------------------------------
    def compare(self, rows: list[MethodRow]) -> dict[str, Any]:
        """Best mosaicrec method (chosen on validation) against the best baseline on test."""
        base = [r for r in rows if r.family == "baseline"]
        ours = [r for r in rows if r.family == "mosaicrec"]
        best_base = max(base, key=lambda r: r.test["ndcg@10"])
        best_ours = max((r for r in ours if not r.name.startswith("ablation")),
                        key=lambda r: r.validation_ndcg or -np.inf)
        diff = self._per_user[best_ours.name] - self._per_user[best_base.name]
        se = float(diff.std(ddof=1) / np.sqrt(len(diff)))
        popular = next(r for r in rows if r.name == "popular")
        chance = self.chance.get("ndcg@10", float("nan"))
        cold_best = best_ours if best_ours.cold_items is not None else max(
            (r for r in ours if r.cold_items is not None), key=lambda r: r.validation_ndcg or 0)
        cold_score = cold_best.cold_items["ndcg@10"] if cold_best.cold_items else float("nan")
        beats = bool(diff.mean() > 0)
        summary = [
            f"mosaicrec's best method on validation is '{best_ours.name}': test NDCG@10 "
            f"{best_ours.test['ndcg@10']:.4f} vs the best baseline '{best_base.name}' "
            f"{best_base.test['ndcg@10']:.4f} (paired difference {diff.mean():+.4f} ± {se:.4f} "
            f"SE over {len(diff)} users): it {'beats' if beats else 'does NOT beat'} it.",
            f"Cold-item slice ('{cold_best.name}'): NDCG@10 {cold_score:.4f} vs popularity, "
            f"which cannot rank new items ({chance:.4f}, chance level): "
            f"{cold_score / chance:.1f}x chance.",
        ]
        extra: dict[str, Any] = {}
        ablation = next((r for r in ours if r.name.startswith("ablation")), None)
        if ablation is not None and best_ours.name == "mosaicrec hybrid":
            gain = self._per_user[best_ours.name] - self._per_user[ablation.name]
            gain_se = float(gain.std(ddof=1) / np.sqrt(len(gain)))
            val_gain = (best_ours.validation_ndcg or 0.0) - (ablation.validation_ndcg or 0.0)
            extra = {"content_gain_validation": val_gain, "content_gain_test": float(gain.mean()),
                     "content_gain_test_se": gain_se}
            verdict = (
                "a real gain (over 2 SE)" if gain.mean() > 2 * gain_se else
                "a real loss (over 2 SE)" if gain.mean() < -2 * gain_se else
                "within noise on test: on warm users the hybrid's figure comes from its "
                "collaborative part (EASE on a recency-weighted history) and the popularity "
                "term, and content's measurable value is on new items")
            summary.append(
                f"What content adds to the hybrid on warm users (same settings without the "
                f"two content terms): {val_gain:+.4f} NDCG@10 on validation, "
                f"{gain.mean():+.4f} ± {gain_se:.4f} on test, {verdict}.")
        return {**extra,
            "best_mosaicrec": best_ours.name, "best_baseline": best_base.name,
            "ndcg10_mosaicrec": best_ours.test["ndcg@10"],
            "ndcg10_best_baseline": best_base.test["ndcg@10"],
            "paired_difference": float(diff.mean()), "paired_se": se, "beats_best_baseline": beats,
            "cold_method": cold_best.name, "cold_ndcg10": cold_score,
            "cold_ndcg10_popularity": chance if popular.cold_items is None else
            popular.cold_items["ndcg@10"], "cold_vs_chance": cold_score / chance,
            "summary": summary,
        }

    def notes(self, config: EvaluationConfig, vectors: ItemVectors) -> list[str]:
        notes = [
            "Settings of every tuned method were chosen by NDCG@10 on the validation split "
            "(models fitted on train), then refitted on train+validation and evaluated once on "
            "test. The cold-item map was tuned on pseudo-new items hidden from train, scored on "
            "validation.",
            "Ranking is over every item with at least one interaction; each user's train "
            "(validation) or train+validation (test) items are excluded whatever their rating; "
            "ties are broken by a permutation of items seeded with the run seed.",
            f"The ≤ {config.few_positives_max}-training-positive slice has only "
            f"{int(self.user_slices['few_positives'].sum())} test users: read it as anecdotal.",
        ]
        image = vectors.encoders.get("image", "")
        if "random" in image:
            notes.append(f"Poster vectors come from the CLIP architecture with RANDOM weights "
                         f"({image}): no pretrained CLIP weights are available offline, so the "
                         f"image block carries pixel statistics, not semantics.")
        return notes
