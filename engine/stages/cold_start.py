"""Cold start: what a user with no usable history gets.

Popular items made diverse by MMR; when there are too few events for that, Qdrant's MMR around
the catalogue's centroid. The popular items' vectors are re-read only when the counts change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from mosaicrec.config import StrictModel
from mosaicrec.engine.context import Candidate, RecContext
from mosaicrec.engine.payload import matches
from mosaicrec.engine.popularity import Popularity
from mosaicrec.engine.stages.rank import mmr_select
from mosaicrec.indexing.stores.base import ID_FIELD, VectorStore

__all__ = ["ColdStartConfig", "ColdStartStage"]


class ColdStartConfig(StrictModel):
    popular_pool: int = Field(200, ge=1, description="most popular items MMR picks from")
    diversity: float = Field(0.5, ge=0, le=1)
    centroid_sample: int = Field(1000, ge=1, description="records averaged for the centroid")


class ColdStartStage:
    name = "cold_start"

    def __init__(self, config: ColdStartConfig | None, *, store: VectorStore,
                 popularity: Popularity, space: str) -> None:
        self.config = config or ColdStartConfig()
        self.store, self.popularity, self.space = store, popularity, space
        self._centroid: np.ndarray | None = None
        self._popular: tuple[object, list[Any]] | None = None  # (counts seen, records)

    def run(self, ctx: RecContext) -> None:
        cfg, space = self.config, self.space
        chosen: list[Candidate] = []
        records = [r for r in self._popular_records()
                   if r.id not in ctx.exclude
                   and matches(ctx.filter, {**r.payload, ID_FIELD: r.id})]
        div = ctx.diversity if ctx.diversity is not None else cfg.diversity
        if records:
            z = self.popularity.z([r.id for r in records])
            rel = (z - z.min()) / (np.ptp(z) or 1.0)
            order = mmr_select(rel, np.stack([r.vectors[space] for r in records]), ctx.n, div)
            chosen = [Candidate(records[j].id, records[j].payload, -1, 0.0, float(z[j]),
                                {"popularity": float(z[j])}, "popular") for j in order]
        ctx.reason = "popular" if chosen else "catalogue"
        if len(chosen) < ctx.n:  # not enough popular items (or no events): catalogue MMR
            hits = self.store.mmr(
                self._catalogue_centroid(), using=space, limit=ctx.n - len(chosen),
                diversity=cfg.diversity, candidates_limit=max(100, 10 * ctx.n),
                filter=ctx.filter, exclude_ids=sorted(ctx.exclude | {c.id for c in chosen}))
            chosen += [Candidate(h.id, h.payload, -1, h.score, h.score, {"similarity": h.score},
                                 "catalogue") for h in hits]
        ctx.candidates = chosen

    def forget_cache(self) -> None:
        """Drop the cached popular records (an item was deleted)."""
        self._popular = None

    def _popular_records(self) -> list[Any]:
        self.popularity.refresh()
        if self._popular is None or self._popular[0] is not self.popularity.counts:
            ids = self.popularity.top(self.config.popular_pool)
            records = [r for r in self.store.retrieve(ids, vectors=[self.space])
                       if self.space in r.vectors] if ids else []
            self._popular = (self.popularity.counts, records)
        return self._popular[1]

    def _catalogue_centroid(self) -> np.ndarray:
        if self._centroid is None:
            space, rows = self.space, []
            for r in self.store.iter_records(vectors=[space],
                                             batch_size=self.config.centroid_sample):
                if space in r.vectors:
                    rows.append(r.vectors[space])
                if len(rows) >= self.config.centroid_sample:
                    break
            if not rows:
                dim = self.store.schema.vectors[space].dim
                return np.ones(dim, np.float32) / np.sqrt(dim)
            c = np.mean(rows, axis=0)
            self._centroid = (c / max(float(np.linalg.norm(c)), 1e-12)).astype(np.float32)
        return self._centroid
