"""The store contract: one thin interface over Qdrant Edge and qdrant-client.

The store owns the collection schema (named vectors, their widths, the encoders that made them,
payload indexes) and checks it on every open. Callers speak in catalogue ids (strings); the
store maps them to stable Qdrant point ids (uuid5) and back.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.errors import RequestError, SchemaMismatchError

__all__ = [
    "ID_NAMESPACE",
    "ID_FIELD",
    "CollectionSchema",
    "Condition",
    "Filter",
    "Hit",
    "Point",
    "Record",
    "VectorSpace",
    "VectorStore",
    "point_id",
]

# Fixed namespace: the same catalogue id always maps to the same point id, on every machine.
ID_NAMESPACE = uuid.UUID("6f1f6c2e-8d53-5b8a-9a43-3c1d7e0b2f55")
ID_FIELD = "item_id"  # payload field holding the catalogue id
PayloadType = Literal["keyword", "integer", "float", "bool", "text"]


def point_id(item_id: str) -> str:
    """Stable Qdrant point id (uuid5) for a catalogue id."""
    return str(uuid.uuid5(ID_NAMESPACE, str(item_id)))


class VectorSpace(StrictModel):
    """One named vector: its width and the encoder (or fusion) that produces it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dim: int = Field(gt=0)
    encoder: str


class CollectionSchema(StrictModel):
    """What a collection holds; recorded with it and checked on every open."""

    model_config = ConfigDict(extra="forbid")
    vectors: dict[str, VectorSpace]
    payload_indexes: dict[str, PayloadType] = Field(default_factory=dict)
    # The encoder profile that built the collection, so readers can rebuild its query encoders.
    profile: dict[str, Any] | None = None
    format_version: int = 1

    def check_compatible(self, stored: CollectionSchema, where: str) -> None:
        """Raise ``SchemaMismatchError`` listing every difference in the vector spaces."""
        diffs = []
        for name in sorted(set(self.vectors) | set(stored.vectors)):
            want, have = self.vectors.get(name), stored.vectors.get(name)
            if want != have:
                diffs.append(
                    f"{name}: collection has {_describe(have)}, requested {_describe(want)}"
                )
        if diffs:
            raise SchemaMismatchError(
                f"collection {where} was built with other encoders: " + "; ".join(diffs)
                + ". Open it with the encoders it was built with, or index into a new collection."
            )


def _describe(space: VectorSpace | None) -> str:
    return "no such vector" if space is None else f"{space.encoder} (dim {space.dim})"


class Condition(StrictModel):
    """One payload condition: exactly one of ``match``, ``any`` or a range bound."""

    invalid_error = RequestError

    model_config = ConfigDict(extra="forbid")
    field: str
    match: str | int | bool | None = None
    any: list[str | int] | None = None
    gte: float | None = None
    gt: float | None = None
    lte: float | None = None
    lt: float | None = None


class Filter(StrictModel):
    """Payload filter: all of ``must``, none of ``must_not``, at least one of ``should``."""

    invalid_error = RequestError

    model_config = ConfigDict(extra="forbid")
    must: list[Condition] = Field(default_factory=list)
    must_not: list[Condition] = Field(default_factory=list)
    should: list[Condition] = Field(default_factory=list)


@dataclass
class Point:
    """One item to upsert: catalogue id, the named vectors it has, payload."""

    id: str
    vectors: dict[str, np.ndarray]
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Record:
    """A stored item as read back."""

    id: str
    payload: dict[str, Any]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Hit:
    """One search result: catalogue id, score (cosine, higher is closer), payload."""

    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


class VectorStore(ABC):
    """What every backend implements. All ids are catalogue ids."""

    schema: CollectionSchema

    @abstractmethod
    def upsert(self, points: Sequence[Point]) -> None:
        """Insert or replace points (idempotent). Wrong widths or unknown vector names raise
        ``InputError`` naming the item, before anything is written."""

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None:
        """Remove points; unknown ids are ignored."""

    @abstractmethod
    def retrieve(
        self, ids: Sequence[str], *, vectors: Sequence[str] | bool = False
    ) -> list[Record]:
        """Records for the ids that exist, in the order asked; missing ids are left out."""

    @abstractmethod
    def query(
        self,
        vector: np.ndarray,
        *,
        using: str,
        limit: int,
        filter: Filter | None = None,
        exclude_ids: Sequence[str] = (),
        exact: bool = False,
        ef: int | None = None,
    ) -> list[Hit]:
        """Nearest neighbours of ``vector`` in the named space, best first."""

    @abstractmethod
    def recommend(
        self,
        positive: Sequence[np.ndarray],
        negative: Sequence[np.ndarray] = (),
        *,
        using: str,
        limit: int,
        filter: Filter | None = None,
        exclude_ids: Sequence[str] = (),
        strategy: Literal["best_score", "sum_scores"] = "best_score",
    ) -> list[Hit]:
        """Qdrant's recommend query over example vectors."""

    @abstractmethod
    def mmr(
        self,
        vector: np.ndarray,
        *,
        using: str,
        limit: int,
        diversity: float = 0.5,
        candidates_limit: int = 100,
        filter: Filter | None = None,
        exclude_ids: Sequence[str] = (),
    ) -> list[Hit]:
        """Maximal marginal relevance (Qdrant's MMR; ``diversity`` in [0, 1])."""

    @abstractmethod
    def count(self, filter: Filter | None = None) -> int:
        """Exact number of points (matching ``filter``)."""

    @abstractmethod
    def iter_records(
        self, *, vectors: Sequence[str] | bool = False, batch_size: int = 1000
    ) -> Iterator[Record]:
        """Every stored record, in pages."""

    @abstractmethod
    def optimize(self) -> bool:
        """Build indexes after a bulk load (HNSW on Edge); True if anything was built."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Counts, schema and backend details for ``mosaicrec info``."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the collection (one open handle per directory on Edge)."""

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
