"""Fusion of per-modality vectors into one fused vector per item.

Design: **concatenation of weighted, normalised blocks**. Text, image and audio vectors live in
different spaces with different widths (384, 512, 512 for the defaults), so averaging them is
meaningless and a learned projection would need paired training data we do not have. Instead
each block keeps its own space: the fused vector is ``concat_m(sqrt(w_m) * v_m)`` with the
weights renormalised over the modalities the item actually has, so it is unit-length by
construction. The cosine of two fused vectors is then

    cos(a, b) = sum over shared modalities m of sqrt(w_a,m * w_b,m) * cos(a_m, b_m)

i.e. a weighted mix of per-modality cosines, each in its own space. An item missing a modality
gets a zero block there and its weight moves to what it has (not zeros overall, not a crash);
comparing items with different modality sets only uses the modalities they share, scaled by how
much of each item's weight those carry. That keeps item-to-item cosine meaningful and bounded in
[-1, 1], and lets a query built from one modality search the fused space directly.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.encoders.base import MODALITIES, Modality, l2_normalize
from mosaicrec.errors import ConfigError, InputError

__all__ = ["FusionConfig", "Fuser"]


class FusionConfig(StrictModel):
    """Relative weight of each modality in the fused vector (renormalised per item)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[Modality, float] = Field(
        default_factory=lambda: {"text": 1.0, "image": 1.0, "audio": 1.0}
    )

    def model_post_init(self, __context: object) -> None:
        bad = {m: w for m, w in self.weights.items() if not w > 0}
        if bad:
            raise ConfigError(f"fusion weights must be > 0, got {bad}")


class Fuser:
    """Fuses blocks of the modalities in ``dims`` (in canonical text, image, audio order)."""

    def __init__(self, dims: Mapping[Modality, int], config: FusionConfig | None = None) -> None:
        self.config = config or FusionConfig()
        self.modalities: tuple[Modality, ...] = tuple(m for m in MODALITIES if m in dims)
        if not self.modalities:
            raise ConfigError("fusion needs at least one modality")
        missing = [m for m in self.modalities if m not in self.config.weights]
        if missing:
            raise ConfigError(f"fusion weights missing for modalities {missing}")
        self.dims = {m: int(dims[m]) for m in self.modalities}
        offsets = np.cumsum([0] + [self.dims[m] for m in self.modalities])
        self.slices = {
            m: slice(int(offsets[i]), int(offsets[i + 1])) for i, m in enumerate(self.modalities)
        }
        self.dim = int(offsets[-1])
        self._w = np.array([self.config.weights[m] for m in self.modalities], dtype=np.float64)

    def fuse_batch(
        self,
        blocks: Mapping[Modality, np.ndarray],
        present: Mapping[Modality, np.ndarray] | None = None,
        keys: list[object] | None = None,
    ) -> np.ndarray:
        """Fuse ``n`` items. ``blocks[m]`` is ``(n, dims[m])``; ``present[m]`` a bool mask.

        A modality absent from ``blocks`` is missing for every item; rows whose mask is False
        are ignored. Raises ``InputError`` naming the first item with no modality at all.
        """
        # With no blocks at all, ``keys`` still says how many items there are (all empty).
        n = next(len(v) for v in blocks.values()) if blocks else len(keys or [])
        mask = np.zeros((n, len(self.modalities)), dtype=bool)
        for j, m in enumerate(self.modalities):
            if m in blocks:
                block = np.asarray(blocks[m])
                if block.shape != (n, self.dims[m]):
                    raise InputError(
                        f"{m} block has shape {block.shape}, expected {(n, self.dims[m])}"
                    )
                mask[:, j] = True if present is None or m not in present else present[m]
        empty = np.flatnonzero(~mask.any(axis=1))
        if len(empty):
            key = keys[empty[0]] if keys is not None else int(empty[0])
            raise InputError("has no modality to fuse (no text, image or audio)", item=key)
        w = mask * self._w
        scale = np.sqrt(w / w.sum(axis=1, keepdims=True)).astype(np.float32)
        out = np.zeros((n, self.dim), dtype=np.float32)
        for j, m in enumerate(self.modalities):
            if m in blocks:
                out[:, self.slices[m]] = l2_normalize(blocks[m]) * scale[:, j : j + 1]
        return out

    def fuse(self, vectors: Mapping[Modality, np.ndarray | None], key: object = None) -> np.ndarray:
        """Fuse one item from whichever modality vectors it has (``None`` = missing)."""
        blocks = {
            m: np.asarray(v, np.float32)[None, :]
            for m, v in vectors.items()
            if v is not None and m in self.dims
        }
        return self.fuse_batch(blocks, keys=[key])[0]

    def split(self, fused: np.ndarray) -> dict[Modality, np.ndarray]:
        """The weighted blocks of fused vector(s), by modality."""
        return {m: fused[..., s] for m, s in self.slices.items()}
