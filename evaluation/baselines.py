"""Baseline recommenders behind one small contract: ``fit(history)`` then ``score(users)``.

``score`` returns dense ``(len(users), n_items)`` scores, higher is better; ranking (seen-item
exclusion, seeded tie-break) is the evaluator's job, so every method is ranked the same way.
ALS and BPR come from the ``implicit`` library, forced onto the CPU with a fixed thread count
and a seeded ``random_state`` so that runs repeat bit for bit.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp
from pydantic import ConfigDict, Field

from mosaicrec.engine.models.ease import spd_inverse
from mosaicrec.errors import ConfigError, MissingDependencyError
from mosaicrec.evaluation._config import StrictConfig
from mosaicrec.evaluation.history import History

__all__ = [
    "Recommender",
    "MostPopular",
    "RandomScores",
    "ItemKNN",
    "ItemKNNConfig",
    "EASE",
    "EASEConfig",
    "ALS",
    "ALSConfig",
    "BPR",
    "BPRConfig",
    "ContentKNN",
]


@runtime_checkable
class Recommender(Protocol):
    """What the evaluator needs from a method."""

    name: str

    def fit(self, history: History) -> Recommender: ...

    def score(self, users: np.ndarray) -> np.ndarray: ...


class _Config(StrictConfig):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _require_fit(obj: Any, attr: str) -> Any:
    value = getattr(obj, attr, None)
    if value is None:
        raise ConfigError(f"{type(obj).__name__}.score called before fit")
    return value


class MostPopular:
    """Items by how many users interacted with them (``count="interactions"``, whatever the
    rating) or liked them (``"positives"``): the same list for everybody."""

    name = "popular"

    def __init__(self, count: Literal["interactions", "positives"] = "interactions") -> None:
        self.count = count

    def fit(self, history: History) -> MostPopular:
        counts = history.interaction_counts if self.count == "interactions" else (
            history.item_counts)
        self.counts_ = np.asarray(counts, dtype=np.float64)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        counts = _require_fit(self, "counts_")
        return np.broadcast_to(counts, (len(users), len(counts))).copy()


class RandomScores:
    """Uniform random scores, drawn once per fit from ``seed`` (same user, same scores)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, history: History) -> RandomScores:
        self.scores_ = np.random.default_rng(self.seed).random((history.n_users, history.n_items))
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return _require_fit(self, "scores_")[np.asarray(users)]


class ItemKNNConfig(_Config):
    k: int = Field(200, ge=1, description="neighbours kept per item")


class ItemKNN:
    """Item-based kNN on binary positives: cosine similarity, top-k neighbours per item."""

    name = "item_knn"

    def __init__(self, config: ItemKNNConfig | None = None) -> None:
        self.config = config or ItemKNNConfig()

    def fit(self, history: History) -> ItemKNN:
        x = history.positives
        co = np.asarray((x.T @ x).todense(), dtype=np.float32)  # items^2: half the memory
        norms = np.sqrt(np.diag(co))
        sim = co / np.maximum(np.outer(norms, norms), 1e-12)
        np.fill_diagonal(sim, 0.0)
        k = min(self.config.k, sim.shape[0] - 1)
        # Keep, for each history item (row), only its k most similar items.
        cut = np.argpartition(-sim, k, axis=1)[:, k:]
        np.put_along_axis(sim, cut, 0.0, axis=1)
        self.sim_, self.x_ = sim, x
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        sim = _require_fit(self, "sim_")
        return np.asarray(self.x_[np.asarray(users)] @ sim)


class EASEConfig(_Config):
    lam: float = Field(1000.0, gt=0, description="L2 regularisation")
    half_life: float | None = Field(
        None, gt=0, description="weight the user's history by recency (in interactions)"
    )


class EASE:
    """EASE (Steck 2019): closed-form item-item model on binary positives.

    With ``half_life`` the user's history is weighted ``0.5 ** (rank / half_life)`` when
    scoring (rank 0 = newest positive); the item-item matrix is learned on binary positives.
    """

    name = "ease"

    def __init__(self, config: EASEConfig | None = None) -> None:
        self.config = config or EASEConfig()

    def fit(self, history: History) -> EASE:
        x = history.positives
        # float32 as in the engine's EASE: half the memory and the inversion time
        gram = np.asarray((x.T @ x).todense(), dtype=np.float32)
        gram[np.diag_indices_from(gram)] += self.config.lam
        p = spd_inverse(gram, threads=0)  # a batch job: every core for its one dense step
        b = -p / np.diag(p)
        np.fill_diagonal(b, 0.0)
        self.b_ = b
        self.x_ = history.recency_positives(self.config.half_life)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        b = _require_fit(self, "b_")
        return np.asarray(self.x_[np.asarray(users)] @ b)


def _blas_single_thread() -> Any:
    from threadpoolctl import threadpool_limits

    # implicit asks for single-threaded BLAS; it also keeps results identical run to run.
    return threadpool_limits(1, "blas")


def _implicit(module: str) -> Any:
    try:
        import importlib

        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            "ALS and BPR need the implicit library: pip install 'mosaicrec[eval]'"
        ) from err


class _FactorModel:
    """Shared scoring for the two matrix factorisation models from ``implicit``."""

    def score(self, users: np.ndarray) -> np.ndarray:
        user_factors = _require_fit(self, "user_factors_")
        return user_factors[np.asarray(users)] @ self.item_factors_.T


class ALSConfig(_Config):
    factors: int = Field(32, ge=1)
    regularization: float = Field(10.0, ge=0)
    alpha: float = Field(1.0, gt=0)
    iterations: int = Field(15, ge=1)
    seed: int = 0
    num_threads: int = Field(0, ge=0, description="0: every core. Each user's and item's "
                             "solve is independent, so the factors do not depend on it")


class ALS(_FactorModel):
    """Implicit-feedback ALS (Hu, Koren & Volinsky) from ``implicit``, on the CPU."""

    name = "als"

    def __init__(self, config: ALSConfig | None = None) -> None:
        self.config = config or ALSConfig()

    def fit(self, history: History) -> ALS:
        cfg = self.config
        als = _implicit("implicit.cpu.als")
        with _blas_single_thread():
            model = als.AlternatingLeastSquares(
                factors=cfg.factors, regularization=cfg.regularization, alpha=cfg.alpha,
                iterations=cfg.iterations, random_state=cfg.seed, num_threads=cfg.num_threads,
            )
            model.fit(sp.csr_matrix(history.positives), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float64)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float64)
        return self


class BPRConfig(_Config):
    factors: int = Field(128, ge=1)
    learning_rate: float = Field(0.01, gt=0)
    regularization: float = Field(0.001, ge=0)
    iterations: int = Field(100, ge=1)
    seed: int = 0
    num_threads: int = Field(1, ge=1, description="1 keeps SGD updates in a fixed order")


class BPR(_FactorModel):
    """Bayesian personalised ranking from ``implicit``, on the CPU."""

    name = "bpr"

    def __init__(self, config: BPRConfig | None = None) -> None:
        self.config = config or BPRConfig()

    def fit(self, history: History) -> BPR:
        cfg = self.config
        bpr = _implicit("implicit.cpu.bpr")
        with _blas_single_thread():
            model = bpr.BayesianPersonalizedRanking(
                factors=cfg.factors, learning_rate=cfg.learning_rate,
                regularization=cfg.regularization, iterations=cfg.iterations,
                random_state=cfg.seed, num_threads=cfg.num_threads,
            )
            model.fit(sp.csr_matrix(history.positives), show_progress=False)
        # implicit's BPR keeps a bias as the last factor: dot products include it.
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float64)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float64)
        return self


class ContentKNN:
    """Content-only: the mean of the user's positive items' vectors, cosine to every item.

    ``vectors`` is ``(n_items, dim)`` in catalogue order; items without a vector are zero rows
    and score 0.
    """

    def __init__(self, vectors: np.ndarray, name: str = "content") -> None:
        self.name = name
        v = np.asarray(vectors, dtype=np.float64)
        self.vectors = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def fit(self, history: History) -> ContentKNN:
        x = history.positives
        if x.shape[1] != len(self.vectors):
            raise ConfigError(
                f"{self.name}: {len(self.vectors)} item vectors for {x.shape[1]} catalogue items"
            )
        counts = np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0)
        profiles = np.asarray(x @ self.vectors) / counts[:, None]
        self.profiles_ = profiles / np.maximum(
            np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12
        )
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        profiles = _require_fit(self, "profiles_")
        return profiles[np.asarray(users)] @ self.vectors.T
