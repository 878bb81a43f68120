"""qdrant-client-only helpers of :mod:`~mosaicrec.indexing.stores.qdrant`: connecting, error
mapping, creating collections and indexes, condition translation."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mosaicrec.errors import MosaicError, StoreError
from mosaicrec.indexing.stores import _schema_ops
from mosaicrec.indexing.stores.base import CollectionSchema, Condition, VectorSpace

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from mosaicrec.indexing.stores import StoreConfig

PAYLOAD_TYPES = {
    "keyword": "KEYWORD",
    "integer": "INTEGER",
    "float": "FLOAT",
    "bool": "BOOL",
    "text": "TEXT",
}
DISTANCES = {"cosine": "COSINE", "dot": "DOT"}


@contextlib.contextmanager
def client_errors(action: str) -> Iterator[None]:
    try:
        yield
    except MosaicError:
        raise
    except Exception as exc:  # UnexpectedResponse, connection errors, local mode's ValueError
        raise StoreError(f"cannot {action}: qdrant-client said: {exc}") from exc


def connect(config: StoreConfig) -> QdrantClient:
    from qdrant_client import QdrantClient

    try:
        if config.url:
            return QdrantClient(url=config.url, api_key=config.api_key, timeout=config.timeout_s)
        if config.path == ":memory:":
            return QdrantClient(location=":memory:")
        return QdrantClient(path=config.path)
    except RuntimeError as exc:  # local mode: "already accessed by another instance"
        raise StoreError(
            f"cannot open {config.where}: {exc} Close the other store first."
        ) from exc


def stored_schema(client: QdrantClient, config: StoreConfig) -> CollectionSchema:
    metadata = client.get_collection(config.collection).config.metadata or {}
    if _schema_ops.SCHEMA_KEY not in metadata:
        raise StoreError(
            f"collection {config.where} exists but was not created by mosaicrec "
            f"(no {_schema_ops.SCHEMA_KEY!r} in its metadata); use another collection name"
        )
    return CollectionSchema.model_validate(metadata[_schema_ops.SCHEMA_KEY])


def create_collection(client: QdrantClient, config: StoreConfig, schema: CollectionSchema) -> None:
    from qdrant_client import models

    optimizers = None
    if config.indexing_threshold_kb is not None:
        optimizers = models.OptimizersConfigDiff(indexing_threshold=config.indexing_threshold_kb)
    client.create_collection(
        config.collection,
        vectors_config={
            name: models.VectorParams(size=space.dim, distance=distance(space))
            for name, space in schema.vectors.items()
        },
        hnsw_config=models.HnswConfigDiff(**_schema_ops.hnsw_settings(config)),
        optimizers_config=optimizers,
        metadata={_schema_ops.SCHEMA_KEY: schema.model_dump(mode="json")},
    )
    create_indexes(client, config.collection, schema, set(schema.payload_indexes))


def create_indexes(
    client: QdrantClient, name: str, schema: CollectionSchema, fields: set[str]
) -> None:
    from qdrant_client import models

    with warnings.catch_warnings():
        # local mode warns that indexes have no effect there; it filters correctly regardless
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        for field in sorted(fields):
            kind = getattr(models.PayloadSchemaType, PAYLOAD_TYPES[schema.payload_indexes[field]])
            client.create_payload_index(name, field, field_schema=kind, wait=True)


def search_index_state(info: Any, server: bool) -> str:
    """What ``info()`` reports as ``search_index``: a server optimises by itself, so its
    collection status says it (green: built; yellow: building; grey: waiting for the next
    update to trigger the optimiser; red: failed). Local mode has no index: every search is
    exact."""
    if not server:
        return "exact (local mode has no index)"
    status = str(getattr(info.status, "value", info.status)).lower()
    return {"green": "built", "yellow": "building", "grey": "pending", "red": "failed"}.get(
        status, status)


def distance(space: VectorSpace) -> Any:
    from qdrant_client import models

    return getattr(models.Distance, DISTANCES[space.distance])


def leaf(cond: Condition) -> Any:
    from qdrant_client import models

    if cond.has_vector is not None:
        return models.HasVectorCondition(has_vector=cond.has_vector)
    if cond.match is not None:
        return models.FieldCondition(key=cond.field, match=models.MatchValue(value=cond.match))
    if cond.any is not None:
        return models.FieldCondition(key=cond.field, match=models.MatchAny(any=cond.any))
    rng = models.Range(gte=cond.gte, gt=cond.gt, lte=cond.lte, lt=cond.lt)
    return models.FieldCondition(key=cond.field, range=rng)
