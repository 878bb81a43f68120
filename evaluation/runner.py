"""One evaluation run: load and split the log, index the catalogue, tune the baselines on
validation, train and serve mosaicrec, score everything once on test.

``run_evaluation(EvaluationConfig(...))`` returns an :class:`EvaluationReport`; the CLI writes
it with :func:`~mosaicrec.evaluation.report.write_report`. Item vectors come from the collection
the indexer writes (one catalogue and embedding path for evaluation and serving).
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

__all__ = ["EvaluationConfig", "run_evaluation", "open_collection"]


class EvaluationConfig(StrictConfig):
    """Inputs, split, seeds, grids and training settings of one run."""

    ratings: Path = Field(description="interaction log: MovieLens u.data, or CSV/TSV")
    movielens: Path | None = Field(None, description="a MovieLens 100K folder (its catalogue "
                                   "is written and indexed in the work folder)")
    catalogue: Path | None = Field(None, description="a catalogue file, indexed in workdir")
    mapping: Path | None = Field(None, description="column mapping of --catalogue")
    profile: str = Field("offline", description="encoder profile the catalogue is indexed with")
    collection: str = "evaluation"
    workdir: Path = Path("mosaicrec-data/evaluation")
    out: Path = Path("benchmarks/results/evaluation")
    ks: list[int] = Field(default_factory=lambda: [10, 20])
    positive_threshold: float = 4.0
    split: SplitConfig = Field(default_factory=SplitConfig)
    seed: int = 0
    quick: bool = False
    baselines: list[str] | None = Field(
        None, description="baseline names to run (None: all); content-only rows by space")
    diversity_space: str = Field("fused", description="space of intra-list diversity")
    cold_user_max_positives: int = 20
    few_positives_max: int = 5
    grids: TuningGrids | None = None
    training: dict[str, Any] = Field(
        default_factory=dict, description="overrides of mosaicrec's TrainingConfig")
    progress: bool = False
    backend: Literal["edge"] = "edge"
    command: str = ""

    @model_validator(mode="after")
    def _check(self) -> EvaluationConfig:
        if (self.movielens is None) == (self.catalogue is None):
            raise ConfigError("give exactly one source of items: movielens (a MovieLens 100K "
                              "folder) or catalogue (a catalogue file)")
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"cut-offs must be >= 1, got {self.ks}")
        if 10 not in self.ks:
            raise ConfigError("the cut-offs must include 10 (tuning and the verdict use @10)")
        return self

    def effective_grids(self, n_items: int) -> TuningGrids:
        grids = self.grids or (TuningGrids.quick() if self.quick else TuningGrids())
        return grids.for_catalogue(n_items)

    def training_config(self) -> Any:
        """mosaicrec's training settings: the defaults, seeded, smaller when ``quick``."""
        from mosaicrec.engine.training import TrainingConfig

        defaults = TrainingConfig()
        # the run keeps BLAS to one thread; EASE's inversions get every core
        every_core = {"threads": 0}
        base: dict[str, Any] = {
            "seed": self.seed, "progress": self.progress,
            "ease": defaults.ease.model_copy(update=every_core) if defaults.ease else None,
            "ease_all": defaults.ease_all.model_copy(update=every_core)
            if defaults.ease_all else None}
        if self.quick:
            base.update(ease_lams=[1000.0], ease_half_lives=[None, 5.0],
                        blend_grid={"sequence": [0.0, 2.0], "popularity": [-0.5, 0.0],
                                    "new_item": [0.5]},
                        sequence={"epochs": 10, "seed": self.seed})
        base.update(self.training)
        return TrainingConfig.model_validate(base)


def open_collection(config: EvaluationConfig) -> Any:
    """Index the configured catalogue into the work folder (unchanged rows are skipped) and
    return the open store."""
    from mosaicrec.indexing.indexer import IndexerConfig, index_catalogue, load_mapping
    from mosaicrec.indexing.stores import StoreConfig

    workdir = Path(config.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if config.movielens is not None:
        from mosaicrec.indexing.movielens import movielens_catalogue

        catalogue, _ = movielens_catalogue(config.movielens, workdir / "movielens.csv")
    else:
        catalogue = Path(config.catalogue)  # type: ignore[arg-type]
    store_config = StoreConfig(path=str(workdir / "index"), collection=config.collection)
    indexer = IndexerConfig(progress=config.progress,
                            quarantine_path=workdir / f"{config.collection}.quarantine.jsonl")
    store, _, _ = index_catalogue(catalogue, store_config, config.profile,
                                  mapping=load_mapping(catalogue, config.mapping),
                                  indexer=indexer)
    return store


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

    BLAS runs on one thread: on a busy machine multi-threaded BLAS spends its time waiting
    (small matrix products got 10x slower). EASE's inversions are the exception: one long
    dense factorisation that every core speeds up (repeatable run to run on one machine).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        return _run(config)


def _run(config: EvaluationConfig) -> EvaluationReport:
    from mosaicrec.indexing.vectors import ItemVectors

    timings: dict[str, float] = {}
    start = time.perf_counter()
    log = load_interactions(config.ratings, InteractionConfig(
        positive_threshold=config.positive_threshold))
    split = split_interactions(log, config.split)
    catalogue = Catalogue.from_frame(split.frame)
    timings["load_and_split"] = time.perf_counter() - start

    t = time.perf_counter()
    store = open_collection(config)
    try:
        timings["index"] = time.perf_counter() - t
        vectors = ItemVectors.read(store, [s for s in store.schema.vectors
                                           if s not in ("als", "sequence")])
        spaces = {name: vectors.aligned([str(i) for i in catalogue.items], name)[0]
                  for name in vectors.spaces}
        missing = {name: int((np.linalg.norm(m, axis=1) == 0).sum())
                   for name, m in spaces.items()}
        # a space no item has a vector in (audio on MovieLens) has nothing to evaluate
        spaces = {name: m for name, m in spaces.items() if missing[name] < len(m)}
        if config.diversity_space not in spaces:
            raise ConfigError(f"no vector space {config.diversity_space!r}; the collection "
                              f"has {sorted(spaces)} (set diversity_space)")
        suite = Suite(split, catalogue, spaces, config, config.effective_grids(
            catalogue.n_items))
        rows = suite.run(timings, store, Path(config.workdir))
    finally:
        store.close()
    comparison = suite.compare(rows)
    vector_info: dict[str, Any] = {f"{n} encoder": e for n, e in vectors.encoders.items()}
    vector_info["items without a vector"] = missing
    timings["total"] = time.perf_counter() - start
    timings.update({f"served {k}": v["seconds"] for k, v in suite.served_info.items()
                    if "seconds" in v})
    return EvaluationReport(
        settings=_settings(config), split=_split_summary(suite), vectors=vector_info,
        rows=rows, chance=suite.chance, comparison=comparison, tuning=suite.tuning_log,
        notes=_notes(config, suite, vectors), timings=timings, command=config.command,
        served={k: v for k, v in suite.served_info.items()},
    )


def _notes(config: EvaluationConfig, suite: Suite, vectors: Any) -> list[str]:
    notes = [
        "Baselines: each setting chosen by NDCG@10 on the validation split (models fitted on "
        "train), refitted on train+validation, evaluated once on test, ranking every item with "
        "at least one interaction, each user's train+validation items excluded.",
        "mosaicrec: train+validation went into an event store; `mosaicrec train`'s code fitted "
        "the models, chose its settings on its own validation window (each user's last events "
        "of that log, never the test split), refitted on all of it and published the vectors; "
        "each test user's list is what Recommender.recommend returned.",
        f"The ≤ {config.few_positives_max}-training-positive slice has only "
        f"{int(suite.user_slices['few_positives'].sum())} test users: read it as anecdotal.",
    ]
    image = vectors.encoders.get("image", "")
    if "tiny" in image or "random" in image:
        notes.append(f"Poster vectors come from the CLIP architecture with RANDOM weights "
                     f"({image}): no pretrained CLIP weights are available offline, so the "
                     f"image block carries pixel statistics, not semantics.")
    return notes


def _settings(config: EvaluationConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json", exclude={"command", "grids", "progress"})
    data["grids"] = (config.grids or (TuningGrids.quick() if config.quick
                                      else TuningGrids())).model_dump(mode="json")
    data["training"] = config.training_config().model_dump(mode="json", exclude={"progress"})
    for key in ("ratings", "movielens", "catalogue", "mapping", "workdir", "out"):
        if data.get(key):
            data[key] = Path(data[key]).as_posix()
    return data
