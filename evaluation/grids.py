"""The tuning grids and the fusion user model variants that one evaluation run tries.

Grids are small and fixed, so a full run stays within minutes on two CPU cores; ``quick()``
shrinks them for CI. ALS regularisation goes up to 30 with alpha 1 included: a grid that stops
at 1 under-tunes ALS on MovieLens.
"""

from __future__ import annotations

from pydantic import Field

from mosaicrec.evaluation._config import StrictConfig
from mosaicrec.evaluation.mosaic import FusionContentConfig

__all__ = ["TuningGrids", "default_fusion_variants"]


def default_fusion_variants(space: str = "fused") -> dict[str, FusionContentConfig]:
    """The fusion user model's settings, one change at a time from the plain mean."""
    base = FusionContentConfig(space=space, aggregation="interaction", negatives=False)
    rating = base.model_copy(update={"aggregation": "rating", "negatives": True})
    recency = rating.model_copy(update={"half_life_events": 10.0})
    multi = recency.model_copy(update={"max_interests": 3})
    return {
        "fusion: mean of positives": base,
        "fusion: + rating weights, negatives push away": rating,
        "fusion: + recency (half-life 10)": recency,
        "fusion: + 3 interests": multi,
        "fusion: + MMR (diversity 0.3)": multi.model_copy(update={"mmr_diversity": 0.3}),
    }


class TuningGrids(StrictConfig):
    """Every grid searched on validation."""

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
    hybrid_half_life: list[float | None] = Field(
        default_factory=lambda: [None, 3.0, 5.0, 10.0, 20.0])
    hybrid_lam: list[float] = Field(default_factory=lambda: [300.0, 1000.0, 3000.0])
    content_weights: list[float] = Field(default_factory=lambda: [0.0, 0.05, 0.1, 0.2])
    popularity_weights: list[float] = Field(
        default_factory=lambda: [-1.0, -0.75, -0.5, -0.25, 0.0])
    mapped_weights: list[float] = Field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.5])
    cold_spaces: list[str] = Field(default_factory=lambda: ["text", "fused"])
    cold_ridge: list[float] = Field(default_factory=lambda: [1.0, 10.0, 100.0])
    cold_folds: int = 3
    fusion_variants: dict[str, FusionContentConfig] = Field(
        default_factory=default_fusion_variants)

    @classmethod
    def quick(cls) -> TuningGrids:
        """A reduced run for CI: two or three points per grid, fewer BPR epochs."""
        variants = default_fusion_variants()
        keep = ["fusion: mean of positives", "fusion: + 3 interests"]
        return cls(
            item_knn_k=[200], ease_lam=[1000.0], als_factors=[32],
            als_regularization=[1.0, 10.0], als_alpha=[1.0], bpr_factors=[64],
            bpr_learning_rate=[0.05], bpr_regularization=[0.001], bpr_iterations=30,
            hybrid_half_life=[None, 5.0], hybrid_lam=[1000.0], content_weights=[0.0, 0.1],
            popularity_weights=[-0.5, 0.0], mapped_weights=[0.0, 0.3], cold_spaces=["text"],
            cold_ridge=[10.0],
            cold_folds=1, fusion_variants={k: variants[k] for k in keep},
        )
