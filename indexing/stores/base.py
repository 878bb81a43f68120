"""The store contract: one thin interface over Qdrant Edge and qdrant-client.

The store owns the collection schema (named vectors, their widths, the encoders that made them,
payload indexes) and checks it on every open. Callers speak in catalogue ids (strings); the
store maps them to stable Qdrant point ids (uuid5) and back.
"""

from __future__ import annotations

import functools
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

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
    "PayloadType",
    "Record",
    "VectorSpace",
    "VectorStore",
    "point_id",
]

# Fixed namespace: the same catalogue id always maps to the same point id, on every machine.
ID_NAMESPACE = uuid.UUID("6f1f6c2e-8d53-5b8a-9a43-3c1d7e0b2f55")
ID_FIELD = "item_id"  # payload field holding the catalogue id
PayloadType = Literal["keyword", "integer", "float", "bool", "text"]
Distance = Literal["cosine", "dot"]
VECTOR_NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # names of spaces added to a live collection


@functools.lru_cache(maxsize=1 << 18)
def point_id(item_id: str) -> str:
    """Stable Qdrant point id (uuid5) for a catalogue id (cached: serving converts the same
    hot ids on every request)."""
    return str(uuid.uuid5(ID_NAMESPACE, str(item_id)))


class VectorSpace(StrictModel):
    """One named vector: its width, the encoder (or model) that produces it, how it is scored.

    ``cosine`` spaces are stored unit-length and refuse zero vectors; ``dot`` spaces (learned
    item vectors, whose norm carries meaning) are stored as given and scored by inner product.
    Schemas written before ``distance`` existed load as cosine.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    dim: int = Field(gt=0)
    encoder: str
    distance: Distance = "cosine"


class CollectionSchema(StrictModel):
    """What a collection holds; recorded with it and checked on every open."""

    model_config = ConfigDict(extra="forbid")
    vectors: dict[str, VectorSpace]
    payload_indexes: dict[str, PayloadType] = Field(default_factory=dict)
    # The encoder profile that built the collection, so readers can rebuild its query encoders.
    profile: dict[str, Any] | None = None
    # Spaces added to the live collection (``add_vector_space``): a requested schema may leave
    # them out, so the indexer can still open a collection a recommender has added vectors to.
    added_vectors: list[str] = Field(default_factory=list)
    # Payload fields points of the collection carry (recorded by writers, see
    # ``VectorStore.note_payload_fields``), so a filter on a field nobody wrote is refused with
    # a clear error instead of matching nothing. Empty in collections from before it existed.
    payload_fields: list[str] = Field(default_factory=list)
    format_version: int = 1

    def check_compatible(self, stored: CollectionSchema, where: str) -> None:
        """Raise ``SchemaMismatchError`` listing every difference in the vector spaces."""
        diffs = []
        for name in sorted(set(self.vectors) | set(stored.vectors)):
            want, have = self.vectors.get(name), stored.vectors.get(name)
            if want is None and name in stored.added_vectors:
                continue
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
    if space is None:
        return "no such vector"
    kind = "" if space.distance == "cosine" else f", {space.distance}"
    return f"{space.encoder} (dim {space.dim}{kind})"


class Condition(StrictModel):
    """One condition: on a payload ``field`` (exactly one of ``match``, ``any`` or range bounds,
    checked when the filter is used) or, alone, ``has_vector`` (the point has that named vector,
    e.g. only items a behaviour model has a vector for)."""

    invalid_error = RequestError

    model_config = ConfigDict(extra="forbid")
    field: str | None = None
    match: str | int | bool | None = None
    any: list[str | int] | None = None
    gte: float | None = None
    gt: float | None = None
    lte: float | None = None
    lt: float | None = None
    has_vector: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        if self.has_vector is None:
            if self.field is None:
                raise ValueError("a condition needs a payload field or has_vector")
            return self
        values = (self.match, self.any, self.gte, self.gt, self.lte, self.lt)
        if self.field is not None or any(v is not None for v in values):
            raise ValueError(
                "has_vector stands alone: no field, match, any or range in the same condition"
            )
        if not VECTOR_NAME.fullmatch(self.has_vector):
            raise ValueError(f"has_vector must match {VECTOR_NAME.pattern}")
        return self


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
    """One search result: catalogue id, score (cosine or inner product, higher is closer)."""

    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # those asked for, if any


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
    def update_vectors(self, name: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Set one named vector (row ``i`` for ``ids[i]``) on stored points, leaving their other
        vectors and payload alone. The whole batch is checked (``InputError`` naming the item,
        ``UnknownItemError`` for the first id not stored) before anything is written."""

    @abstractmethod
    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        """Merge ``payload`` into stored points' payloads (``UnknownItemError`` before any write
        when an id is not stored; ``item_id`` is reserved)."""

    @abstractmethod
    def add_vector_space(self, name: str, space: VectorSpace) -> bool:
        """Add a named vector to the live collection and record it in the schema. False when it
        already exists as defined; a different definition drops the old vectors and replaces it."""

    @abstractmethod
    def drop_vector_space(self, name: str) -> bool:
        """Remove a named vector and all its vectors; False when there is none."""

    @abstractmethod
    def add_payload_index(self, field: str, kind: PayloadType) -> bool:
        """Index a payload field of the live collection and record it; False when it already is.
        Another type for an indexed field is a ``SchemaMismatchError``."""

    @abstractmethod
    def retrieve(
        self, ids: Sequence[str], *, vectors: Sequence[str] | bool = False,
        payload: bool | Sequence[str] = True,
    ) -> list[Record]:
        """Records for the ids that exist, in the order asked; missing ids are left out
        (``payload=False``: records with an empty payload, which is cheaper to read; a list of
        fields: only those)."""

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
        with_vectors: Sequence[str] = (),
        payload: bool | Sequence[str] = True,
    ) -> list[Hit]:
        """Nearest neighbours of ``vector`` in the named space, best first; each hit carries
        its vectors in the ``with_vectors`` spaces (saves a second read for them) and its
        payload (``False``: none, a list of fields: only those; reading fewer is cheaper)."""

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

    def warm(self) -> int:
        """Read what requests will read, ahead of them (a server calls it at start-up); returns
        how many items were read. Servers keep their own caches: nothing to do here."""
        return 0

    @property
    def index_pending(self) -> bool:
        """True when writes since the last ``optimize()`` may be searched without the index.
        Edge persists it, so the run after a killed one knows the build is still owed;
        servers optimise by themselves (False)."""
        return False

    def note_payload_fields(self, fields: Iterable[str]) -> bool:
        """Record payload fields written to the collection in its schema; False when every
        one was recorded already."""
        new = set(fields) - set(self.schema.payload_fields)
        if not new:
            return False
        fields_now = sorted(set(self.schema.payload_fields) | new)
        self._save(self.schema.model_copy(update={"payload_fields": fields_now}))
        return True

    def _save(self, schema: CollectionSchema) -> None:
        """Persist ``schema`` as the collection's schema (each backend implements it)."""
        raise NotImplementedError

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
