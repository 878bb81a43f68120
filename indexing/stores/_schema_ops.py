"""Collection schema operations: where it is kept, HNSW settings, merging on open, live changes."""

from __future__ import annotations

from typing import Any, get_args

from mosaicrec.errors import RequestError, SchemaMismatchError
from mosaicrec.indexing.stores.base import VECTOR_NAME, CollectionSchema, PayloadType, VectorSpace

SCHEMA_KEY = "mosaicrec_schema"  # where the schema lives (collection metadata / JSON file)


def hnsw_settings(config: Any) -> dict[str, Any]:
    """A StoreConfig's HNSW build settings, named as both Qdrant clients name them."""
    return {"m": config.hnsw_m, "ef_construct": config.hnsw_ef_construct,
            "full_scan_threshold": config.full_scan_threshold_kb, "payload_m": config.payload_m}


def check_space_name(name: Any) -> None:
    if not isinstance(name, str) or not VECTOR_NAME.fullmatch(name):
        raise RequestError(f"vector name {name!r} must match {VECTOR_NAME.pattern}")


def with_space(schema: CollectionSchema, name: str, space: Any) -> CollectionSchema | None:
    """The schema with ``space`` under ``name``; None when it is already there as defined."""
    check_space_name(name)
    if not isinstance(space, VectorSpace):
        raise RequestError(f"space must be a VectorSpace, got {type(space).__name__}")
    if schema.vectors.get(name) == space:
        return None
    added = schema.added_vectors if name in schema.vectors else [*schema.added_vectors, name]
    return schema.model_copy(
        update={"vectors": {**schema.vectors, name: space}, "added_vectors": sorted(added)}
    )


def without_space(schema: CollectionSchema, name: str) -> CollectionSchema | None:
    """The schema without ``name``; None when it has no such space."""
    check_space_name(name)
    if name not in schema.vectors:
        return None
    if len(schema.vectors) == 1:
        raise RequestError(f"cannot drop {name!r}: it is the collection's only vector space")
    vectors = {k: v for k, v in schema.vectors.items() if k != name}
    added = [n for n in schema.added_vectors if n != name]
    return schema.model_copy(update={"vectors": vectors, "added_vectors": added})


def with_index(
    schema: CollectionSchema, field: Any, kind: Any, where: str
) -> CollectionSchema | None:
    """The schema with a payload index on ``field``; None when it already has that one."""
    if not isinstance(field, str) or not field:
        raise RequestError(f"payload index field must be a non-empty string, got {field!r}")
    if kind not in get_args(PayloadType):
        raise RequestError(f"payload index type {kind!r} is not one of {get_args(PayloadType)}")
    have = schema.payload_indexes.get(field)
    if have == kind:
        return None
    if have is not None:
        raise SchemaMismatchError(
            f"collection {where} indexes {field!r} as {have}, requested {kind}"
        )
    return schema.model_copy(update={"payload_indexes": {**schema.payload_indexes, field: kind}})


def merge_schema(requested: CollectionSchema, stored: CollectionSchema, where: str) -> set[str]:
    """Check vector spaces, then return payload indexes the request adds to the stored schema.

    A payload index whose type differs from the stored one is a ``SchemaMismatchError``.
    """
    requested.check_compatible(stored, where)
    clashes = [
        f"{f}: collection has {stored.payload_indexes[f]}, requested {t}"
        for f, t in requested.payload_indexes.items()
        if f in stored.payload_indexes and stored.payload_indexes[f] != t
    ]
    if clashes:
        raise SchemaMismatchError(
            f"collection {where} has other payload index types: " + "; ".join(clashes)
        )
    return set(requested.payload_indexes) - set(stored.payload_indexes)
