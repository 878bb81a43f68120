"""Vector stores: one contract (``base``) over Qdrant Edge and qdrant-client.

``open_store(StoreConfig(...), schema)`` is the only entry point callers need::

    store = open_store(StoreConfig(backend="edge", path="data/index"), schema)
    store = open_store(StoreConfig(backend="qdrant", path=":memory:"), schema)   # tests
    store = open_store(StoreConfig(backend="qdrant", url="https://...", api_key="..."))
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from mosaicrec.config import StrictModel
from mosaicrec.indexing.stores.base import (
    ID_FIELD,
    ID_NAMESPACE,
    CollectionSchema,
    Condition,
    Filter,
    Hit,
    PayloadType,
    Point,
    Record,
    VectorSpace,
    VectorStore,
    point_id,
)

__all__ = [
    "ID_FIELD",
    "ID_NAMESPACE",
    "CollectionSchema",
    "Condition",
    "Filter",
    "Hit",
    "PayloadType",
    "Point",
    "Record",
    "StoreConfig",
    "VectorSpace",
    "VectorStore",
    "open_store",
    "point_id",
]


class StoreConfig(StrictModel):
    """Where a collection lives and how its HNSW index is built and searched.

    ``backend="edge"``: embedded Qdrant Edge; ``path`` is a directory, the collection is the
    shard directory ``<path>/<collection>/``. ``backend="qdrant"``: qdrant-client, either a
    server or cluster (``url`` plus optional ``api_key``) or its local mode (``path`` is a
    directory or ``":memory:"``; local mode is exact search only, fine for tests).
    """

    model_config = ConfigDict(extra="forbid")

    backend: Literal["edge", "qdrant"] = "edge"
    path: str | None = None
    url: str | None = None
    api_key: str | None = Field(None, repr=False)
    collection: str = Field("items", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    hnsw_m: int = Field(16, gt=0)
    hnsw_ef_construct: int = Field(100, gt=3)
    # Search-time ef (None = ef_construct). 64: recall@10 0.999 on real MiniLM embeddings
    # (0.993 at 32, 0.969 at 16) and >= 0.97 at 1M synthetic in docs/qdrant-edge.md, at ~20%
    # less latency than ef 100. See benchmarks/results/indexing_store.json.
    hnsw_ef: int | None = Field(64, gt=0)
    # Below this many KB of vectors in a segment, search is brute force (no graph walk).
    full_scan_threshold_kb: int = Field(10_000, gt=0)
    # Segments smaller than this (KB of vectors) get no HNSW at all; None = backend default.
    indexing_threshold_kb: int | None = Field(None, ge=0)
    # Filter-aware HNSW links per payload index; None = hnsw_m.
    payload_m: int | None = Field(None, gt=0)
    upsert_batch: int = Field(1000, gt=0)
    # Edge only. Edge has no background optimiser: once this many points were written since the
    # last build, upsert builds their segment's HNSW before returning, as Qdrant's server
    # optimiser does in the background, so a bulk load builds bounded segments as it goes
    # instead of one graph over everything at the end. None: only optimize() builds.
    segment_points: int | None = Field(200_000, gt=0)
    # Edge only: segments are merged when there are more than this (Qdrant's
    # default_segment_number); set when the collection is created.
    default_segment_number: int = Field(16, gt=0)
    # Edge only: after this many points written, flush and hand the pages of the shard's mapped
    # files back to the kernel (Linux), so the writer's RSS stays flat. None: never.
    release_pages_points: int | None = Field(20_000, gt=0)
    timeout_s: int | None = Field(None, gt=0)  # server requests only

    @model_validator(mode="after")
    def _check_location(self) -> StoreConfig:
        if self.backend == "edge":
            if self.url or self.api_key:
                raise ValueError(
                    "backend 'edge' is an embedded store on disk: give path, not url/api_key "
                    "(use backend 'qdrant' for a server)"
                )
            if not self.path or self.path == ":memory:":
                raise ValueError("backend 'edge' needs path, a directory on disk")
        else:
            if self.url and self.path:
                raise ValueError(
                    "backend 'qdrant' takes either url (server) or path (local mode), not both"
                )
            if not self.url and not self.path:
                raise ValueError(
                    "backend 'qdrant' needs url (server) or path (local mode: a directory "
                    "or ':memory:')"
                )
            if self.api_key and not self.url:
                raise ValueError("api_key is only used with url (a Qdrant server)")
        return self

    @property
    def where(self) -> str:
        """Human-readable location of the collection, for error messages."""
        return f"{self.collection!r} at {self.url or self.path}"


def open_store(
    config: StoreConfig, schema: CollectionSchema | None = None, *, create: bool = True
) -> VectorStore:
    """Open (or create) the collection ``config`` points at.

    ``schema=None`` opens an existing collection with the schema recorded in it. With a schema,
    an existing collection is checked against it (``SchemaMismatchError`` on any difference in
    the vector spaces) and a missing one is created when ``create`` is true. A missing collection
    that cannot be created raises ``StoreError`` naming it.
    """
    if config.backend == "edge":
        from mosaicrec.indexing.stores.edge import EdgeStore

        return EdgeStore.open(config, schema, create=create)
    from mosaicrec.indexing.stores.qdrant import QdrantStore

    return QdrantStore.open(config, schema, create=create)
