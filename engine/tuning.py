"""Choosing a trained model's settings on validation, through the serving code.

:func:`tuning_sets` runs the served candidate and signal stages (a
:class:`~mosaicrec.engine.Recommender` over an in-memory retriever holding the validation
models' vectors) once per validation user and keeps every raw signal; :func:`choose` then
searches EASE's setting, ease_all's half-life and the blend weights on those cached signals,
so each fitted model scores each user once, whatever the number of blends tried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mosaicrec.engine.models.blend import BlendConfig, TuningSet, tune_blend
from mosaicrec.engine.models.data import TrainingData
from mosaicrec.engine.models.ease import EASEModel
from mosaicrec.engine.models.trained import TrainedModel
from mosaicrec.errors import ConfigError
from mosaicrec.indexing.stores.base import VectorStore

if TYPE_CHECKING:
    from mosaicrec.engine.training import TrainingConfig

__all__ = ["Variant", "choose", "model_from_parts", "tuning_sets"]

_DAY = 86400.0
# a blend's EASE setting: EASE's lam and query half-life, and ease_all's query half-life
Variant = tuple[float, float | None, float | None]


def model_from_parts(parts: dict[str, Any], variant: Variant, cfg: TrainingConfig, items: Any,
                     weights: dict[str, float] | None = None) -> TrainedModel:
    lam, half_life, all_half_life = variant
    ease = parts["ease"][lam].with_half_life(half_life) if "ease" in parts else None
    ease_all = parts["ease_all"].with_half_life(all_half_life) if "ease_all" in parts else None
    return TrainedModel(items, cfg.positives, BlendConfig(weights=weights or {}), ease=ease,
                        ease_all=ease_all, als=parts.get("als"), sequence=parts.get("sequence"),
                        sequence_positives_only=cfg.sequence_positives_only,
                        content_map=parts.get("content_map"))


def tuning_sets(store: VectorStore, reduced: TrainingData, targets: list[np.ndarray],
                parts: dict[str, Any], content: Any, cfg: TrainingConfig,
                ) -> dict[Variant, TuningSet]:
    """Per EASE setting, each validation user's candidates and raw signals, computed by the
    serving code over the models fitted on the reduced log."""
    from mosaicrec.engine.pipeline import Recommender, RecommenderConfig
    from mosaicrec.engine.popularity import FixedPopularity
    from mosaicrec.engine.retrieval import MemoryRetriever

    # validation users: held-out positives and some history left to recommend from
    users = [u for u, t in enumerate(targets) if len(t) and len(reduced.sequences[u])]
    if cfg.max_tuning_users is not None and len(users) > cfg.max_tuning_users:
        rng = np.random.default_rng(cfg.seed)
        users = sorted(rng.choice(users, cfg.max_tuning_users, replace=False).tolist())
    if not users:
        raise ConfigError(f"no user has {cfg.min_events} events or more: nothing to validate "
                          "on (lower min_events, or import more events)")
    lams = list(parts.get("ease", {1.0: None}))
    base = cfg.ease.lam if cfg.ease and cfg.ease.lam in lams else lams[0]
    base_hl = cfg.ease.half_life if cfg.ease else None
    model = model_from_parts(parts, (base, base_hl, _all_half_life(cfg)), cfg, reduced.items)
    memory = MemoryRetriever(_memory_spaces(model, content, reduced),
                             new_ids=[i for i in content.ids if i not in reduced.items])
    counts = reduced.interaction_counts
    newest = max((float(t.max()) for t in reduced.timestamps if len(t)), default=0.0)
    popularity = FixedPopularity(dict(zip(reduced.items.ids, counts.astype(int), strict=True)),
                                 _recent_counts(reduced, newest - cfg.trend_days * _DAY),
                                 catalogue_size=len(content.ids))
    space = cfg.content_space if cfg.content_space in content.spaces else \
        next(iter(store.schema.vectors))
    # every source proposes while the weights are being chosen
    sources = cfg.sources.model_copy(update={"content_only_when_weighted": False})
    rec = Recommender(store, None, config=RecommenderConfig(space=space, sources=sources,
                                                            explain=False),
                      model=model, retriever=memory, popularity=popularity)
    wants_content = any(w for w in cfg.blend_grid.get("content", [0.0]))
    ease_models = {(lam, hl): parts["ease"][lam].with_half_life(hl) for lam in lams
                   for hl in cfg.ease_half_lives} if "ease" in parts else {}
    all_models = {hl: parts["ease_all"].with_half_life(hl) for hl in cfg.ease_all_half_lives
                  } if "ease_all" in parts else {}
    sets = {(*e, a): TuningSet() for e in (ease_models or [(base, base_hl)])
            for a in (all_models or [None])}
    for u in users:
        ids, signals, state, proposed = rec.candidate_signals(reduced.events_of(u),
                                                              content=wants_content)
        sole = np.array([s[0] if len(s) == 1 else "" for s in proposed], dtype=object)
        rows = reduced.items.rows(ids)
        hit = np.isin(rows, targets[u]) & (rows >= 0)
        # each EASE variant scores the candidates once; the sets share those arrays
        ease = {v: _known_scores(m, state.history, rows) for v, m in ease_models.items()}
        ease_all = {hl: _known_scores(m, state.history, rows) for hl, m in all_models.items()}
        for (lam, hl, all_hl), tuning in sets.items():
            sig = dict(signals)
            if ease:
                sig["ease"] = ease[(lam, hl)]
            if ease_all:
                sig["ease_all"] = ease_all[all_hl]
            tuning.signals.append(sig)
            tuning.relevant.append(hit)
            tuning.n_relevant.append(len(targets[u]))
            tuning.sole_source.append(sole)
    return sets


def _all_half_life(cfg: TrainingConfig) -> float | None:
    return cfg.ease_all.half_life if cfg.ease_all else None


def _known_scores(model: EASEModel, history: Any, rows: np.ndarray) -> np.ndarray:
    """An EASE model's scores of candidate rows (NaN on the items it does not know)."""
    known = rows >= 0
    values = np.full(len(rows), np.nan)
    values[known] = model.score(model.state(history), rows[known])
    return values


def _memory_spaces(model: TrainedModel, content: Any, data: TrainingData,
                   ) -> dict[str, tuple[list[str], np.ndarray, str]]:
    spaces: dict[str, tuple[list[str], np.ndarray, str]] = {
        name: (ids, content.spaces[name][rows], "cosine")
        for name in content.spaces for ids, rows in [content.present_ids(name)]}
    vectors = model.behaviour_vectors(content.ids, content.by_id(
        model.content_map.space) if model.content_map is not None else None)
    for name, (ids, matrix) in vectors.items():
        spaces[name] = (ids, matrix, "dot")
    return spaces


def _recent_counts(data: TrainingData, since: float) -> dict[str, int]:
    counts: dict[str, set[int]] = {}
    for u, (seq, ts) in enumerate(zip(data.sequences, data.timestamps, strict=True)):
        for r in seq[ts >= since]:
            counts.setdefault(data.items.ids[r], set()).add(u)
    return {i: len(us) for i, us in counts.items()}


def choose(sets: dict[Variant, TuningSet], cfg: TrainingConfig,
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """EASE's setting and the blend weights (at ease_all's default half-life), then ease_all's
    half-life with that setting: two short searches instead of one over their product."""
    grid = {k: v for k, v in cfg.blend_grid.items() if k != "ease_all" or cfg.ease_all}
    if cfg.ease is not None:
        grid["ease"] = [1.0]  # the anchor: other weights are relative to it
    best: tuple[float, Any, Any] = (-np.inf, None, None)
    trials: list[dict[str, Any]] = []

    def search(variants: list[Variant]) -> None:
        nonlocal best
        for v in variants:
            weights, score, _ = tune_blend(sets[v], grid)
            trials.append({"lam": v[0], "half_life": v[1], "ease_all_half_life": v[2],
                           "weights": weights, "ndcg@10": score})
            if score > best[0]:
                best = (score, v, weights)

    present = [v[2] for v in sets]
    default = _all_half_life(cfg) if _all_half_life(cfg) in present else present[0]
    search([v for v in sets if v[2] == default])
    search([v for v in sets if v[:2] == best[1][:2] and v[2] != default])
    score, variant, weights = best
    tuning = sets[variant]
    singles = {name: tune_blend(tuning, {name: [1.0]})[1] for name in
               ("ease", "ease_all", "als", "sequence", "popularity", "content") if name in grid}
    recall = float(np.mean([r.sum() / max(n, 1) for r, n in
                            zip(tuning.relevant, tuning.n_relevant, strict=True)]))
    validation = {"ndcg@10": score, "users": len(tuning.relevant), "single_signals": singles,
                  "candidate_recall": recall, "trials": trials}
    # models not refitted: ease_all with no weight (it proposes no candidates) and ...
    drop = [] if weights.get("ease_all") else ["ease_all"]
    # ... a sequence model with none: it still proposes candidates; drop it when validation
    # does not need them
    # (with ALS: without it, the recent-items source searches the sequence space and would go
    # too, which leaving out the sequence model's own candidates does not measure)
    if cfg.sequence is not None and cfg.als is not None and not weights.get("sequence") and \
            cfg.drop_tolerance >= 0:
        without = tune_blend(tuning.without_source("sequence"),
                             {k: [v] for k, v in weights.items()})[1]
        validation["ndcg@10 without the sequence model's candidates"] = without
        if without >= score - cfg.drop_tolerance:
            drop.append("sequence")
    lam, hl, all_hl = variant
    return {"lam": lam, "half_life": hl, "ease_all_half_life": all_hl,
            "weights": weights, "drop": drop}, validation
