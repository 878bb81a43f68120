"""The baselines' tuning grids that one evaluation run searches on validation.

Grids are small and fixed, so a full run stays within minutes on two CPU cores; ``quick()``
shrinks them for CI, and ``for_catalogue`` keeps EASE to one setting above a few thousand
items (each EASE fit inverts an items x items matrix). ALS regularisation goes up to 30 with
alpha 1 included: a grid that stops at 1 under-tunes ALS on MovieLens.
"""

from __future__ import annotations

from pydantic import Field

from mosaicrec.evaluation._config import StrictConfig

__all__ = ["TuningGrids"]


class TuningGrids(StrictConfig):
    """Every baseline grid searched on validation."""

    item_knn_k: list[int] = Field(default_factory=lambda: [50, 100, 200, 400])
    ease_lam: list[float] = Field(default_factory=lambda: [100.0, 300.0, 1000.0, 3000.0])
    als_factors: list[int] = Field(default_factory=lambda: [32, 64, 128])
    als_regularization: list[float] = Field(default_factory=lambda: [0.1, 1.0, 10.0, 30.0])
    als_alpha: list[float] = Field(default_factory=lambda: [1.0, 10.0])
    als_iterations: int = 15
    bpr_factors: list[int] = Field(default_factory=lambda: [64, 128])
    bpr_learning_rate: list[float] = Field(default_factory=lambda: [0.01, 0.05])
    bpr_regularization: list[float] = Field(default_factory=lambda: [0.001, 0.01])
    bpr_iterations: int = 100

    @classmethod
    def quick(cls) -> TuningGrids:
        """A reduced run for CI: one or two points per grid, fewer BPR epochs."""
        return cls(item_knn_k=[200], ease_lam=[1000.0], als_factors=[32],
                   als_regularization=[1.0, 10.0], als_alpha=[1.0], bpr_factors=[64],
                   bpr_learning_rate=[0.05], bpr_regularization=[0.001], bpr_iterations=30)

    def for_catalogue(self, n_items: int, dense_limit: int = 4000) -> TuningGrids:
        """Above ``dense_limit`` items, EASE and item-kNN keep one setting each."""
        if n_items <= dense_limit:
            return self
        return self.model_copy(update={"ease_lam": [max(self.ease_lam[-1], 1000.0)][:1],
                                       "item_knn_k": self.item_knn_k[-1:]})
