"""Training: the event store -> a tuned, saved, published :class:`TrainedModel`.

1. Read every event; hold out each user's last ``holdout`` events as validation (users with at
   least ``min_events``), so settings are chosen on the future of the log, never on a test set.
2. Fit the behaviour models on the rest (EASE once per regularisation; ALS; the sequence
   model), and choose the content map on pseudo-new items.
3. Run the *served* candidate and signal code (:class:`~mosaicrec.engine.Recommender` over an
   in-memory retriever holding the validation models' vectors) once per validation user, then
   choose the EASE setting and the blend weights on those cached signals.
4. Refit everything on all events with the chosen settings, save the versioned artefact, and
   write the items' behaviour vectors into the collection as named vectors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from mosaicrec.config import StrictModel
from mosaicrec.engine.models.als import ALSConfig, ALSModel
from mosaicrec.engine.models.artefact import Manifest, new_version, save_model, schema_fingerprint
from mosaicrec.engine.models.blend import BlendConfig
from mosaicrec.engine.models.content_map import ContentMap, ContentMapConfig, choose_content_map
from mosaicrec.engine.models.data import PositiveRule, TrainingData
from mosaicrec.engine.models.ease import EASEConfig, EASEModel
from mosaicrec.engine.models.sequence import SequenceConfig, SequenceModel
from mosaicrec.engine.models.trained import TrainedModel
from mosaicrec.engine.publish import catalogue_vectors, publish_vectors
from mosaicrec.engine.stages.candidates import SourceLimits
from mosaicrec.engine.tuning import Variant, choose, model_from_parts, tuning_sets
from mosaicrec.errors import ConfigError
from mosaicrec.indexing.stores.base import VectorStore

__all__ = ["TrainingConfig", "TrainReport", "train"]


def _default_grid() -> dict[str, list[float]]:
    # trending is left out: on MovieLens its weight won on validation and lost on the future
    return {"sequence": [0.0, 1.0, 2.0, 3.0], "popularity": [-1.0, -0.5, -0.25, 0.0],
            "als": [0.0, 0.5], "content": [0.0, 0.1], "new_item": [0.5], "ease_all": [0.0, 1.0]}


def _default_ease_all() -> EASEConfig:
    # what users watch together, whatever they thought of it: on MovieLens it adds to the
    # positives' EASE on both validation windows (+0.008 NDCG@10)
    return EASEConfig(events="all", lam=300.0, half_life=5.0)


def _default_sequence() -> SequenceConfig:
    # screened on MovieLens validation: small batches and two seeds (logits summed) beat one
    # model at batch 128 by ~0.01 NDCG@10 in the blend; four seeds with disliked next items at
    # half weight lift the sequence model alone from 0.130 to 0.141 (validation NDCG@10)
    return SequenceConfig(batch_size=32, members=4, negative_weight=0.5)


class TrainingConfig(StrictModel):
    positives: PositiveRule = Field(default_factory=PositiveRule)
    holdout: int = Field(5, ge=1, description="each user's last events held out to validate")
    min_events: int = Field(10, ge=2, description="users with fewer keep everything for fit")
    ease: EASEConfig | None = Field(default_factory=EASEConfig)
    ease_lams: list[float] = Field(default_factory=lambda: [300.0, 1000.0, 3000.0])
    ease_tune_max_items: int = Field(
        4000, ge=1, description="above this many items EASE is fitted once, with the median "
        "of ease_lams (each fit inverts an items x items matrix)")
    ease_half_lives: list[float | None] = Field(
        default_factory=lambda: [None, 3.0, 5.0, 10.0, 20.0])
    ease_all: EASEConfig | None = Field(
        default_factory=_default_ease_all, description="EASE over every event (its lam is "
        "fixed; its half-life is chosen on validation among ease_all_half_lives)")
    ease_all_half_lives: list[float | None] = Field(default_factory=lambda: [3.0, 5.0, 10.0])
    als: ALSConfig | None = Field(default_factory=ALSConfig)
    sequence: SequenceConfig | None = Field(default_factory=_default_sequence)
    sequence_positives_only: bool = Field(
        False, description="the sequence model reads positives only (all events read better "
        "on MovieLens once batches are small)")
    content_map: ContentMapConfig | None = Field(default_factory=ContentMapConfig)
    blend_grid: dict[str, list[float]] = Field(default_factory=_default_grid)
    sources: SourceLimits = Field(default_factory=SourceLimits)
    content_space: str = Field("fused", description="space of the fusion user model")
    trend_days: float = Field(14.0, gt=0)
    drop_tolerance: float = Field(
        0.001, description="a sequence model the blend gives no weight still proposes "
        "candidates: it is dropped (not refitted) when leaving its candidates out costs at "
        "most this validation NDCG@10 (negative: never dropped)")
    max_tuning_users: int | None = Field(
        1500, ge=1, description="validation users sampled (seeded) for tuning; None = all")
    seed: int = 0
    progress: bool = True


@dataclass
class TrainReport:
    manifest: Manifest
    path: Path
    model: TrainedModel
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def _timed(into: dict[str, float], name: str) -> Iterator[None]:
    """Seconds spent in the block, stored as ``into[name]``."""
    t0 = time.perf_counter()
    yield
    into[name] = round(time.perf_counter() - t0, 3)


class _Phases:
    """Times each phase and shows one progress bar over the phases."""

    def __init__(self, names: list[str], enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=len(names), desc="training", unit="step", disable=not enabled)
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.bar.set_postfix_str(name)
        with _timed(self.timings, name):
            yield
        self.bar.update(1)

    def detail(self, phase: str, seconds: dict[str, float]) -> None:
        """Time the parts of a phase too (``"fit on train / sequence"``)."""
        self.timings.update({f"{phase} / {name}": s for name, s in seconds.items()})

    def close(self) -> None:
        self.bar.close()


def train(store: VectorStore, events: Any, config: TrainingConfig | None = None, *,
          models_dir: Path, collection: str) -> TrainReport:
    """Fit, tune on validation, refit on everything, save and publish (see module doc)."""
    cfg = config or TrainingConfig()
    start = time.perf_counter()
    phases = _Phases(["read", "fit on train", "tuning signals", "blend", "refit", "save",
                      "publish"], cfg.progress)
    try:
        with phases("read"):
            cols = events.export()
            if not len(cols):
                raise ConfigError("the event store is empty: import events before training "
                                  "(mosaicrec events import FILE)")
            data = TrainingData.from_columns(cols.user_id, cols.item_id, cols.type,
                                             cols.timestamp, cols.value, cfg.positives)
            content = catalogue_vectors(store, _content_spaces(store, cfg))
        with phases("fit on train"):
            reduced, targets = data.holdout(cfg.holdout, cfg.min_events)
            parts = _fit(reduced, cfg, content, _ease_lams(cfg, data.n_items), choose_map=True)
        phases.detail("fit on train", parts["seconds"])
        with phases("tuning signals"):
            tuning = tuning_sets(store, reduced, targets, parts, content, cfg)
        with phases("blend"):
            choice, validation = choose(tuning, cfg)
        with phases("refit"):
            # a model validation gives nothing to is not refitted
            final_cfg = cfg.model_copy(update={"content_map": None,
                                               **dict.fromkeys(choice["drop"])})
            final = _fit(data, final_cfg, content, [choice["lam"]], choose_map=False)
            model = _assemble(final, choice, cfg, data, content, parts.get("map_choice"))
        phases.detail("refit", final["seconds"])
        with phases("save"):
            manifest = _manifest(store, events, data, cfg, model, choice, validation, parts,
                                 collection, phases.timings)
            path = save_model(model, manifest, models_dir)
        with phases("publish"):
            publish_vectors(store, model, content)
    finally:
        phases.close()
    manifest.timings_s = dict(phases.timings)
    (path / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    return TrainReport(manifest, path, model, time.perf_counter() - start, phases.timings)


def _content_spaces(store: VectorStore, cfg: TrainingConfig) -> list[str]:
    wanted = [cfg.content_space, *(cfg.content_map.spaces if cfg.content_map else [])]
    return [s for s in dict.fromkeys(wanted) if s in store.schema.vectors]


def _ease_lams(cfg: TrainingConfig, n_items: int) -> list[float]:
    if n_items <= cfg.ease_tune_max_items or len(cfg.ease_lams) <= 1:
        return list(cfg.ease_lams)
    return [sorted(cfg.ease_lams)[len(cfg.ease_lams) // 2]]


def _fit(data: TrainingData, cfg: TrainingConfig, content: Any, lams: list[float], *,
         choose_map: bool) -> dict[str, Any]:
    """The behaviour models fitted on ``data``; ``parts["seconds"]`` times each of them."""
    parts: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    if cfg.ease is not None:
        with _timed(seconds, "ease"):
            parts["ease"] = {lam: EASEModel(cfg.ease.model_copy(update={"lam": lam})).fit(data)
                             for lam in lams}
    if cfg.ease_all is not None and any(cfg.blend_grid.get("ease_all", [])):
        with _timed(seconds, "ease_all"):
            parts["ease_all"] = EASEModel(cfg.ease_all).fit(data)
    if cfg.als is not None:
        with _timed(seconds, "als"):
            parts["als"] = ALSModel(cfg.als).fit(data)
    if cfg.sequence is not None:
        seqs = data.positive_sequences() if cfg.sequence_positives_only else data.sequences
        liked = [np.ones(len(s), bool) for s in seqs] if cfg.sequence_positives_only \
            else data.positive
        with _timed(seconds, "sequence"):
            parts["sequence"] = SequenceModel(cfg.sequence).fit(
                seqs, data.n_items, liked=liked, progress=cfg.progress)
    if choose_map and cfg.content_map is not None and "als" in parts:
        als: ALSModel = parts["als"]
        spaces = {s: content.aligned(data.items.ids, s) for s in cfg.content_map.spaces
                  if s in content.spaces}
        if spaces:
            with _timed(seconds, "content_map"):
                mapped, trials = choose_content_map(
                    {s: m for s, (m, _) in spaces.items()},
                    {s: h for s, (_, h) in spaces.items()}, als.item_vectors,
                    als.user_vectors(data), data.positives, cfg.content_map)
            parts["content_map"], parts["map_choice"] = mapped, trials
    parts["seconds"] = seconds
    return parts


def _variant(choice: dict[str, Any]) -> Variant:
    return choice["lam"], choice["half_life"], choice["ease_all_half_life"]


def _assemble(parts: dict[str, Any], choice: dict[str, Any], cfg: TrainingConfig,
              data: TrainingData, content: Any, map_trials: Any) -> TrainedModel:
    model = model_from_parts(parts, _variant(choice), cfg, data.items,
                             {k: v for k, v in choice["weights"].items() if v != 0})
    if cfg.content_map is not None and model.als is not None and map_trials:
        best = max(map_trials, key=lambda t: t["pseudo_new_ndcg@10"])
        matrix, has = content.aligned(data.items.ids, best["space"])
        model.content_map = ContentMap.fit(best["space"], matrix[has],
                                           model.als.item_vectors[has], best["ridge"])
    return model


def _manifest(store: VectorStore, events: Any, data: TrainingData, cfg: TrainingConfig,
              model: TrainedModel, choice: dict[str, Any], validation: dict[str, Any],
              parts: dict[str, Any], collection: str, timings: dict[str, float]) -> Manifest:
    import importlib.metadata as md

    libraries = {}
    for lib in ("mosaicrec", "numpy", "torch", "implicit", "qdrant-edge-py", "qdrant-client"):
        try:
            libraries[lib] = md.version(lib)
        except md.PackageNotFoundError:
            continue
    seq = parts.get("sequence")
    return Manifest(
        version=new_version(), created_at=time.time(), collection=collection,
        schema_fingerprint=schema_fingerprint(store.schema),
        data_fingerprint=events.fingerprint(),
        counts={"users": data.n_users, "items": data.n_items, "events": data.n_events},
        positives=cfg.positives,
        # the EASE settings as served (lam and half-lives chosen on validation)
        ease=model.ease.config if model.ease else None,
        ease_all=model.ease_all.config if model.ease_all else None,
        als=cfg.als, sequence=model.sequence.config.model_dump() if model.sequence else None,
        sequence_positives_only=cfg.sequence_positives_only,
        content_map={"trials": parts.get("map_choice")} if parts.get("map_choice") else None,
        blend=BlendConfig(weights={k: v for k, v in choice["weights"].items() if v != 0}),
        validation=validation, settings=cfg.model_dump(mode="json"),
        timings_s=dict(timings), libraries=libraries,
        device=str(seq.device) if seq is not None else "cpu")
