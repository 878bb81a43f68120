"""Synthetic clustered catalogues with an obvious right answer, for tests and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SyntheticCatalogue", "clustered_catalogue"]


@dataclass
class SyntheticCatalogue:
    ids: list[str]
    vectors: np.ndarray  # (n, dim) unit rows
    labels: np.ndarray  # cluster of each item
    centers: np.ndarray  # (k, dim) unit cluster centres

    def by_id(self) -> dict[str, np.ndarray]:
        return dict(zip(self.ids, self.vectors, strict=True))

    def cluster(self, k: int) -> list[str]:
        return [i for i, lab in zip(self.ids, self.labels, strict=True) if lab == k]


def clustered_catalogue(
    n_clusters: int, per_cluster: int, dim: int, *, spread: float = 0.2, seed: int = 0,
    prefix: str = "",
) -> SyntheticCatalogue:
    """``n_clusters`` well separated unit centres, items = centre + gaussian noise (``spread``
    per unit of norm), normalised. Ids are ``{prefix}c{cluster}-{i}``."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_clusters, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    noise = rng.normal(size=(len(labels), dim)).astype(np.float32) * (spread / np.sqrt(dim))
    vectors = centers[labels] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"{prefix}c{c}-{i}" for c in range(n_clusters) for i in range(per_cluster)]
    return SyntheticCatalogue(ids, vectors.astype(np.float32), labels, centers)
