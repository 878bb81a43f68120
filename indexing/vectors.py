"""A collection's item vectors in memory: named spaces over one list of item ids.

Training reads the content vectors it maps from and the evaluation reads the vectors its
content baselines and diversity metric use, both from the collection the indexer wrote: one
catalogue and embedding path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mosaicrec.errors import CatalogueError
from mosaicrec.indexing.stores.base import VectorStore

__all__ = ["ItemVectors"]


@dataclass
class ItemVectors:
    """Named spaces over ``ids`` (strings); ``present[name][i]`` says item i has a vector."""

    ids: list[str]
    spaces: dict[str, np.ndarray]
    present: dict[str, np.ndarray] = field(default_factory=dict)
    encoders: dict[str, str] = field(default_factory=dict)  # provenance, for reports

    def __post_init__(self) -> None:
        for name, matrix in self.spaces.items():
            if matrix.shape[0] != len(self.ids):
                raise CatalogueError(
                    f"vector space {name!r} has {matrix.shape[0]} rows for {len(self.ids)} ids")
            self.present.setdefault(name, np.linalg.norm(matrix, axis=1) > 0)
        self._row = {item: i for i, item in enumerate(self.ids)}

    def _check(self, name: str) -> None:
        if name not in self.spaces:
            raise CatalogueError(f"no vector space {name!r}; available: {sorted(self.spaces)}")

    def aligned(self, item_ids: Sequence[object], name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(len(item_ids), dim)`` rows of one space in the given order (zeros where an item
        has none) and the mask of the rows that have one."""
        self._check(name)
        src, have = self.spaces[name], self.present[name]
        rows = np.fromiter((self._row.get(str(i), -1) for i in item_ids), np.int64,
                           len(item_ids))
        ok = rows >= 0
        ok[ok] = have[rows[ok]]
        out = np.zeros((len(item_ids), src.shape[1]), dtype=np.float32)
        out[ok] = src[rows[ok]]
        return out, ok

    def present_ids(self, name: str) -> tuple[list[str], np.ndarray]:
        """Ids of the items with a vector in ``name`` and their rows."""
        self._check(name)
        rows = np.flatnonzero(self.present[name])
        return [self.ids[r] for r in rows], rows

    def by_id(self, name: str) -> dict[str, np.ndarray]:
        ids, rows = self.present_ids(name)
        matrix = self.spaces[name]
        return {i: matrix[r] for i, r in zip(ids, rows, strict=True)}

    def save(self, path: str | Path, meta: dict[str, object] | None = None) -> None:
        arrays = {f"space__{n}": m for n, m in self.spaces.items()}
        arrays.update({f"present__{n}": m for n, m in self.present.items()})
        info = {"encoders": self.encoders, "meta": meta or {}}
        np.savez_compressed(path, ids=np.array(self.ids), info=np.array(json.dumps(info)),
                            **arrays)

    @classmethod
    def load(cls, path: str | Path) -> tuple[ItemVectors, dict[str, object]]:
        with np.load(path, allow_pickle=False) as data:
            info = json.loads(str(data["info"]))
            spaces = {k[7:]: data[k] for k in data.files if k.startswith("space__")}
            present = {k[9:]: data[k] for k in data.files if k.startswith("present__")}
            ids = [str(i) for i in data["ids"]]
        return cls(ids, spaces, present, info["encoders"]), info["meta"]

    @classmethod
    def read(cls, store: VectorStore, names: Sequence[str] | None = None) -> ItemVectors:
        """Every record's named vectors (sorted by id) from an open collection."""
        wanted = list(names) if names is not None else sorted(store.schema.vectors)
        unknown = sorted(set(wanted) - set(store.schema.vectors))
        if unknown:
            raise CatalogueError(
                f"collection has no vectors {unknown}; it has {sorted(store.schema.vectors)}")
        records = sorted(store.iter_records(vectors=wanted), key=lambda r: r.id)
        spaces, present = {}, {}
        for name in wanted:
            dim = store.schema.vectors[name].dim
            matrix = np.zeros((len(records), dim), dtype=np.float32)
            has = np.zeros(len(records), dtype=bool)
            for i, rec in enumerate(records):
                vec = rec.vectors.get(name)
                if vec is not None:
                    matrix[i], has[i] = np.asarray(vec, dtype=np.float32), True
            spaces[name], present[name] = matrix, has
        encoders = {n: store.schema.vectors[n].encoder for n in wanted}
        return cls([r.id for r in records], spaces, present, encoders)

    @classmethod
    def read_ids(cls, store: VectorStore, ids: Sequence[str], names: Sequence[str],
                 ) -> ItemVectors:
        """The named vectors of some items (those stored), in the order asked."""
        records = store.retrieve(list(ids), vectors=list(names))
        spaces, present = {}, {}
        for name in names:
            dim = store.schema.vectors[name].dim
            spaces[name] = np.zeros((len(records), dim), dtype=np.float32)
            present[name] = np.zeros(len(records), dtype=bool)
            for i, rec in enumerate(records):
                if name in rec.vectors:
                    spaces[name][i], present[name][i] = rec.vectors[name], True
        return cls([r.id for r in records], spaces, present)

    @classmethod
    def from_store(cls, config: object, names: Sequence[str] | None = None) -> ItemVectors:
        """Open the collection ``config`` (a ``StoreConfig``) points at and read it."""
        from mosaicrec.indexing.stores import open_store

        store = open_store(config, None, create=False)  # type: ignore[arg-type]
        try:
            return cls.read(store, names)
        finally:
            store.close()
