"""One evaluation run: load, split, embed or read item vectors, tune on validation, test once.

``run_evaluation(EvaluationConfig(...))`` returns an :class:`EvaluationReport`; the CLI writes
it with :func:`~mosaicrec.evaluation.report.write_report`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from mosaicrec.errors import ConfigError
from mosaicrec.evaluation._config import StrictConfig
from mosaicrec.evaluation.grids import TuningGrids
from mosaicrec.evaluation.history import Catalogue
from mosaicrec.evaluation.interactions import InteractionConfig, load_interactions
from mosaicrec.evaluation.report import EvaluationReport
from mosaicrec.evaluation.split import SplitConfig, split_interactions
from mosaicrec.evaluation.suite import Suite
from mosaicrec.evaluation.vectors import ItemVectors, embed_movielens

__all__ = ["EvaluationConfig", "run_evaluation", "load_vectors"]


class EvaluationConfig(StrictConfig):
    """Inputs, split, seeds and grids of one run."""

    ratings: Path = Field(description="interaction log: MovieLens u.data, or CSV/TSV")
    movielens: Path | None = Field(None, description="embed this MovieLens 100K folder's items")
    catalogue: Path | None = Field(None, description="a catalogue index (store directory)")
    collection: str = "items"
    backend: Literal["edge", "qdrant"] = "edge"
    vectors_npz: Path | None = Field(None, description="item vectors saved by ItemVectors.save")
    cache_dir: Path = Path("mosaicrec-data/cache/evaluation")
    out: Path = Path("benchmarks/results/evaluation")
    ks: list[int] = Field(default_factory=lambda: [10, 20])
    positive_threshold: float = 4.0
    split: SplitConfig = Field(default_factory=SplitConfig)
    seed: int = 0
    quick: bool = False
    text_encoder: str = "minilm"
    image_encoder: str | None = "tiny-clip"
    content_space: str = Field("fused", description="space of the fusion user model")
    diversity_space: str = Field("fused", description="space of intra-list diversity")
    cold_user_max_positives: int = 20
    few_positives_max: int = 5
    grids: TuningGrids | None = None
    command: str = ""

    @model_validator(mode="after")
    def _check(self) -> EvaluationConfig:
        sources = [s for s in (self.movielens, self.catalogue, self.vectors_npz) if s]
        if len(sources) != 1:
            raise ConfigError("give exactly one source of item vectors: movielens (embed the "
                              "folder), catalogue (a store) or vectors_npz")
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"cut-offs must be >= 1, got {self.ks}")
        if 10 not in self.ks:
            raise ConfigError("the cut-offs must include 10 (tuning and the verdict use @10)")
        return self

    def effective_grids(self) -> TuningGrids:
        return self.grids or (TuningGrids.quick() if self.quick else TuningGrids())


def load_vectors(config: EvaluationConfig) -> ItemVectors:
    """Item vectors from the configured source."""
    if config.movielens is not None:
        return embed_movielens(config.movielens, config.cache_dir,
                               text_encoder=config.text_encoder,
                               image_encoder=config.image_encoder)
    if config.vectors_npz is not None:
        return ItemVectors.load(config.vectors_npz)[0]
    from mosaicrec.indexing.stores import StoreConfig

    store = StoreConfig(backend=config.backend, path=str(config.catalogue),
                        collection=config.collection)
    return ItemVectors.from_store(store)


def _split_summary(suite: Suite) -> dict[str, Any]:
    return {
        "config": suite.split.config.model_dump(mode="json"),
        "counts": suite.split.counts(),
        "n_users": suite.catalogue.n_users,
        "n_items": suite.catalogue.n_items,
        "n_cold_items": int(len(suite.split.cold_items)),
        "val_users": int(len(suite.val.users)),
        "test_users": int(len(suite.test.users)),
        "cold_item_users": int(len(suite.cold_users_items)),
        "cold_users": int(suite.user_slices["cold_users"].sum()),
        "few_positives_users": int(suite.user_slices["few_positives"].sum()),
    }


def run_evaluation(config: EvaluationConfig) -> EvaluationReport:
    """Run every method; tune on validation, refit on train+validation, evaluate once on test.

    BLAS runs on one thread: results do not depend on the thread count, and on a busy machine
    multi-threaded BLAS spends its time waiting (small matrix products got 10x slower).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the eval extra
        return _run(config)
    with threadpool_limits(1, "blas"):
        return _run(config)


def _run(config: EvaluationConfig) -> EvaluationReport:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    log = load_interactions(config.ratings, InteractionConfig(
        positive_threshold=config.positive_threshold))
    split = split_interactions(log, config.split)
    catalogue = Catalogue.from_frame(split.frame)
    timings["load_and_split"] = time.perf_counter() - start

    t = time.perf_counter()
    vectors = load_vectors(config)
    spaces = {name: vectors.aligned(catalogue.items, name) for name in vectors.spaces}
    missing = {name: int((np.linalg.norm(m, axis=1) == 0).sum()) for name, m in spaces.items()}
    timings["item_vectors"] = time.perf_counter() - t
    for needed in (config.content_space, config.diversity_space):
        if needed not in spaces:
            raise ConfigError(f"no vector space {needed!r}; the item vectors have "
                              f"{sorted(spaces)} (set content_space / diversity_space)")

    suite = Suite(split, catalogue, spaces, config, config.effective_grids())
    rows = suite.run(timings)
    comparison = suite.compare(rows)
    vector_info: dict[str, Any] = {f"{n} encoder": e for n, e in vectors.encoders.items()}
    vector_info["items without a vector"] = missing
    notes = suite.notes(config, vectors)
    timings["total"] = time.perf_counter() - start
    return EvaluationReport(
        settings=_settings(config), split=_split_summary(suite), vectors=vector_info,
        rows=rows, chance=suite.chance, comparison=comparison, tuning=suite.tuning_log,
        notes=notes, timings=timings, command=config.command,
    )


def _settings(config: EvaluationConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json", exclude={"command", "grids"})
    data["grids"] = config.effective_grids().model_dump(mode="json")
    for key in ("ratings", "movielens", "catalogue", "vectors_npz", "cache_dir", "out"):
        if data.get(key):
            data[key] = Path(data[key]).as_posix()
    return data
