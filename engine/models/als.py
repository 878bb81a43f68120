"""Implicit-feedback ALS from the ``implicit`` library, with fold-in at request time.

Fitting uses ``implicit`` (CUDA when ``implicit.gpu.HAS_CUDA``, else its CPU solver). Serving
never uses the fitted user factors: a user's factor is *folded in* from their current history
with the same least-squares step ALS itself alternates (Hu, Koren & Volinsky), so a new event
changes the next list without retraining and a user unseen at training time is served too.
Item factors are the ``als`` named vector in the collection (dot product = the model's score).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from mosaicrec.config import StrictModel
from mosaicrec.engine.models.data import TrainingData, UserHistory
from mosaicrec.errors import ConfigError, MissingDependencyError

__all__ = ["ALSConfig", "ALSModel"]


class ALSConfig(StrictModel):
    # Reference tuning on MovieLens 100K: unweighted (alpha 1) and strongly regularised (10).
    factors: int = Field(32, ge=1)
    regularization: float = Field(10.0, ge=0)
    alpha: float = Field(1.0, gt=0, description="confidence of a positive (implicit's alpha)")
    iterations: int = Field(15, ge=1)
    use_gpu: bool | None = Field(None, description="None: CUDA when implicit has it")
    threads: int = Field(1, ge=0, description="CPU solver threads (0 = all cores)")
    seed: int = 0


class ALSModel:
    name = "als"

    def __init__(self, config: ALSConfig | None = None) -> None:
        self.config = config or ALSConfig()
        self.item_vectors: np.ndarray | None = None
        self._gram: np.ndarray | None = None

    def fit(self, data: TrainingData) -> ALSModel:
        try:
            import implicit.gpu
            from implicit.als import AlternatingLeastSquares
            from threadpoolctl import threadpool_limits
        except ImportError as err:
            raise MissingDependencyError(
                "ALS needs the implicit library: pip install 'mosaicrec[eval]'") from err
        cfg = self.config
        gpu = implicit.gpu.HAS_CUDA if cfg.use_gpu is None else cfg.use_gpu
        # implicit asks for one BLAS thread; it also keeps results identical run to run
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=cfg.factors, regularization=cfg.regularization, alpha=cfg.alpha,
                iterations=cfg.iterations, random_state=cfg.seed, num_threads=cfg.threads,
                use_gpu=gpu)
            model.fit(sp.csr_matrix(data.positives), show_progress=False)
            if gpu:
                model = model.to_cpu()
        self.set_item_vectors(np.asarray(model.item_factors, dtype=np.float32))
        return self

    def set_item_vectors(self, vectors: np.ndarray) -> None:
        self.item_vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        v = self.item_vectors.astype(np.float64)
        self._gram = v.T @ v + self.config.regularization * np.eye(v.shape[1])

    def state(self, history: UserHistory) -> np.ndarray:
        """The user's factor, folded in from their positives (zeros when they have none)."""
        y = self._fitted()
        rows = np.unique(history.known_positive)
        if not len(rows):
            return np.zeros(y.shape[1], np.float32)
        yi = y[rows].astype(np.float64)
        a, alpha = self._gram, self.config.alpha  # (YtY + reg I) + (alpha - 1) Yi^T Yi
        if alpha != 1.0:
            a = a + (alpha - 1.0) * (yi.T @ yi)
        return np.linalg.solve(a, alpha * yi.sum(axis=0)).astype(np.float32)

    def score(self, state: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return self._fitted()[rows] @ state

    def user_vectors(self, data: TrainingData) -> np.ndarray:
        """Every training user's folded-in factor, in one solve (for tuning the content map)."""
        y = self._fitted().astype(np.float64)
        x = data.positives.astype(np.float64)
        if self.config.alpha == 1.0:  # the system matrix is the same for every user
            return np.linalg.solve(self._gram, (x @ y).T).T.astype(np.float32)
        return np.stack([self.state(UserHistory([], x[u].indices, np.ones(x[u].nnz, bool)))
                         for u in range(x.shape[0])])

    def save(self, folder: Path) -> None:
        np.save(folder / "als_items.npy", self._fitted())

    @classmethod
    def load(cls, folder: Path, config: ALSConfig) -> ALSModel:
        model = cls(config)
        model.set_item_vectors(np.load(folder / "als_items.npy"))
        return model

    def _fitted(self) -> np.ndarray:
        if self.item_vectors is None:
            raise ConfigError("ALS model used before fit")
        return self.item_vectors
