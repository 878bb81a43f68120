"""Backend-neutral helpers shared by the Edge and qdrant-client stores.

Both backends validate a batch the same way, turn numpy into plain lists the same way and walk a
:class:`Filter` the same way; only the leaf constructors differ, so each backend passes those in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np

from mosaicrec.errors import InputError, RequestError, SchemaMismatchError, UnknownItemError
from mosaicrec.indexing.stores.base import (
    ID_FIELD,
    VECTOR_NAME,
    CollectionSchema,
    Condition,
    Filter,
    Hit,
    PayloadType,
    Point,
    Record,
    VectorSpace,
    point_id,
)

SCHEMA_KEY = "mosaicrec_schema"  # where the schema lives (collection metadata / JSON file)


@dataclass
class PreparedPoint:
    """A validated point in the form every backend wants: uuid id, plain lists, payload."""

    pid: str
    vectors: dict[str, list[float]]
    payload: dict[str, Any]


def hnsw_settings(config: Any) -> dict[str, Any]:
    """A StoreConfig's HNSW build settings, named as both Qdrant clients name them."""
    return {"m": config.hnsw_m, "ef_construct": config.hnsw_ef_construct,
            "full_scan_threshold": config.full_scan_threshold_kb, "payload_m": config.payload_m}


def prepare_points(points: Sequence[Point], schema: CollectionSchema) -> list[PreparedPoint]:
    """Validate the whole batch before anything is written; ``InputError`` names the item."""
    prepared: list[PreparedPoint] = []
    for pos, point in enumerate(points):
        if not isinstance(point.id, str) or not point.id:
            raise InputError(f"id must be a non-empty string, got {point.id!r}", item=pos)
        if not point.vectors:
            raise InputError("point has no vectors", item=point.id)
        vectors = {}
        for name, vec in point.vectors.items():
            vectors[name] = _check_vector(name, vec, schema, item=point.id)
        payload = to_json(dict(point.payload))
        if payload.get(ID_FIELD, point.id) != point.id:
            raise InputError(
                f"payload field {ID_FIELD!r} is reserved for the catalogue id "
                f"(got {payload[ID_FIELD]!r})",
                item=point.id,
            )
        payload[ID_FIELD] = point.id
        prepared.append(PreparedPoint(point_id(point.id), vectors, payload))
    return prepared


def _check_vector(name: str, vec: Any, schema: CollectionSchema, *, item: object) -> list[float]:
    space = schema.vectors.get(name)
    if space is None:
        raise InputError(
            f"unknown vector {name!r}; the collection has {sorted(schema.vectors)}", item=item
        )
    arr = np.asarray(vec, dtype=np.float32)
    if arr.ndim != 1 or arr.shape[0] != space.dim:
        raise InputError(
            f"vector {name!r} has shape {arr.shape}, expected ({space.dim},) "
            f"from encoder {space.encoder}",
            item=item,
        )
    if not np.all(np.isfinite(arr)):
        raise InputError(f"vector {name!r} contains NaN or infinity", item=item)
    if space.distance == "dot":
        return arr.tolist()  # the norm of a learned vector is part of its score: keep it
    norm = float(np.linalg.norm(arr))
    if norm == 0.0:
        raise InputError(f"vector {name!r} is all zeros (no cosine direction)", item=item)
    # Stored unit-length: cosine is scale-free, and qdrant-client's local mode otherwise reads
    # back raw vectors after a reopen but unit ones before it.
    return (arr / norm).tolist()  # tolist() is ~2x faster through both bindings than ndarray


def prepare_update(
    name: str, ids: Sequence[str], vectors: Any, schema: CollectionSchema
) -> list[tuple[str, list[float]]]:
    """(point id, vector) pairs for ``update_vectors``, every row checked before any write."""
    if name not in schema.vectors:
        raise RequestError(f"unknown vector {name!r}; the collection has {sorted(schema.vectors)}")
    check_ids(ids)
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise RequestError(f"vectors for {name!r} are not a numeric matrix: {exc}") from None
    if not len(ids) and not arr.size:
        return []  # nothing to write, whatever shape the empty input has
    if arr.ndim != 2 or arr.shape[0] != len(ids):
        raise RequestError(
            f"vectors for {name!r} have shape {arr.shape}, expected ({len(ids)}, "
            f"{schema.vectors[name].dim}): one row per id"
        )
    rows = zip(ids, arr, strict=True)
    return [(point_id(i), _check_vector(name, row, schema, item=i)) for i, row in rows]


def check_ids(ids: Sequence[str]) -> None:
    if isinstance(ids, str):
        raise RequestError("ids must be a sequence of catalogue ids, not one string")
    for pos, item in enumerate(ids):
        if not isinstance(item, str) or not item:
            raise InputError(f"id must be a non-empty string, got {item!r}", item=pos)


def prepare_payload(ids: Sequence[str], payload: Any) -> dict[str, Any]:
    """The JSON form of a ``set_payload`` payload; the catalogue id field is not for setting."""
    check_ids(ids)
    if not isinstance(payload, dict):
        raise RequestError(f"payload must be a dict, got {type(payload).__name__}")
    if ID_FIELD in payload:
        raise RequestError(f"payload field {ID_FIELD!r} is reserved for the catalogue id")
    return to_json(dict(payload))


def require_stored(
    ids: Sequence[str], step: int, stored: Callable[[list[str]], Iterable[Any]], where: str
) -> None:
    """``UnknownItemError`` for the first id not stored. ``stored(pids)`` returns the point ids
    it finds (a retrieve without payload or vectors), so the check reads no data."""
    for batch in batches(list(dict.fromkeys(ids)), step):
        found = {str(pid) for pid in stored([point_id(i) for i in batch])}
        for item in batch:
            if point_id(item) not in found:
                raise UnknownItemError(item, f"collection {where}")


def batches(items: Sequence[Any], step: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), step):
        yield items[start:start + step]


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


def query_vector(vector: Any, using: str, schema: CollectionSchema) -> list[float]:
    """Check a query vector against the named space; ``RequestError`` when it does not fit."""
    space = schema.vectors.get(using)
    if space is None:
        raise RequestError(f"unknown vector {using!r}; the collection has {sorted(schema.vectors)}")
    arr = np.asarray(vector, dtype=np.float32)
    if arr.ndim != 1 or arr.shape[0] != space.dim:
        raise RequestError(
            f"query vector for {using!r} has shape {arr.shape}, expected ({space.dim},)"
        )
    if not np.all(np.isfinite(arr)):
        raise RequestError(f"query vector for {using!r} contains NaN or infinity")
    return arr.tolist()


def check_limit(limit: int) -> None:
    if not isinstance(limit, int) or limit <= 0:
        raise RequestError(f"limit must be a positive integer, got {limit!r}")


def recommend_examples(
    positive: Sequence[Any],
    negative: Sequence[Any],
    using: str,
    schema: CollectionSchema,
    strategy: str,
    strategies: dict[str, Any],
) -> tuple[list[list[float]], list[list[float]], Any]:
    """Validated example vectors and the backend's strategy object for a recommend query."""
    if not positive:
        raise RequestError("recommend needs at least one positive example")
    if strategy not in strategies:
        raise RequestError(f"unknown strategy {strategy!r}; use one of {sorted(strategies)}")
    return (
        [query_vector(v, using, schema) for v in positive],
        [query_vector(v, using, schema) for v in negative],
        strategies[strategy],
    )


def check_mmr(diversity: float, candidates_limit: int, limit: int) -> None:
    check_limit(limit)
    if not 0.0 <= diversity <= 1.0:
        raise RequestError(f"mmr diversity must be in [0, 1], got {diversity!r}")
    if candidates_limit < limit:
        raise RequestError(
            f"mmr candidates_limit ({candidates_limit}) must be at least limit ({limit})"
        )


def vector_names(vectors: Sequence[str] | bool, schema: CollectionSchema) -> list[str]:
    """Resolve the ``vectors=`` argument of retrieve / iter_records to a list of names."""
    if vectors is True:
        return sorted(schema.vectors)
    if vectors is False:
        return []
    names = list(vectors)
    unknown = [n for n in names if n not in schema.vectors]
    if unknown:
        raise RequestError(
            f"unknown vectors {unknown}; the collection has {sorted(schema.vectors)}"
        )
    return names


def to_json(value: Any) -> Any:
    """numpy scalars and arrays to plain Python, recursively (payloads are stored as JSON)."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; a missing value is what it means in a catalogue
    return value


def build_filter(
    flt: Filter | None,
    exclude_ids: Iterable[str],
    *,
    leaf: Callable[[Condition], Any],
    has_id: Callable[[list[str]], Any],
    combine: Callable[[list[Any], list[Any], list[Any]], Any],
    vectors: Collection[str],
) -> Any | None:
    """Translate a :class:`Filter` plus excluded catalogue ids with backend constructors.

    ``leaf`` builds one field or has-vector condition (after :func:`check_condition`),
    ``has_id`` a has-id condition over point ids, ``combine(must, must_not, should)`` the
    backend's filter. ``vectors`` are the collection's vector names, for ``has_vector``.
    """
    excluded = [point_id(i) for i in exclude_ids]
    if flt is None and not excluded:
        return None
    flt = flt or Filter()
    for cond in (*flt.must, *flt.must_not, *flt.should):
        check_condition(cond)
        if cond.has_vector is not None and cond.has_vector not in vectors:
            # backends differ on unknown names (empty result or error): refuse it here
            raise RequestError(
                f"has_vector {cond.has_vector!r}: the collection has {sorted(vectors)}"
            )

    def one(cond: Condition) -> Any:
        ids = id_values(cond)
        return leaf(cond) if ids is None else has_id([point_id(i) for i in ids])

    must = [one(c) for c in flt.must]
    must_not = [one(c) for c in flt.must_not]
    should = [one(c) for c in flt.should]
    if excluded:
        must_not.append(has_id(excluded))
    return combine(must, must_not, should)


def id_values(cond: Condition) -> list[str] | None:
    """The catalogue ids a condition on the id field matches, when it is one: it becomes a
    has-id condition, which Qdrant answers from its id index (a scan of the id payload took
    200 ms over 100k items, for 460 ids)."""
    if cond.field != ID_FIELD:
        return None
    values = cond.any if cond.any is not None else [cond.match] if cond.match is not None \
        else None
    # a number never equals a stored id, which is a string: keep such a condition as it is
    if values is None or not all(isinstance(v, str) for v in values):
        return None
    return list(values)


def check_condition(cond: Condition) -> None:
    """Exactly one of match / any / a range (range bounds may be combined)."""
    if cond.has_vector is not None:
        return  # its shape is checked when the Condition is built
    kinds = [
        cond.match is not None,
        cond.any is not None,
        any(b is not None for b in (cond.gte, cond.gt, cond.lte, cond.lt)),
    ]
    if sum(kinds) != 1:
        raise RequestError(
            f"condition on {cond.field!r} needs exactly one of match, any or a range, got {cond}"
        )
    if cond.any is not None and not cond.any:
        raise RequestError(f"condition on {cond.field!r}: 'any' needs at least one value")


def filter_fields(flt: Filter | None) -> set[str]:
    """Payload fields a filter reads (not ``has_vector`` names)."""
    if flt is None:
        return set()
    return {c.field for c in (*flt.must, *flt.must_not, *flt.should) if c.field is not None}


def filter_vectors(flt: Filter | None) -> set[str]:
    """Vector names a filter tests with ``has_vector``."""
    if flt is None:
        return set()
    return {c.has_vector for c in (*flt.must, *flt.must_not, *flt.should) if c.has_vector}


def to_hit(payload: dict[str, Any] | None, score: float, vectors: Any = None) -> Hit:
    payload = dict(payload or {})
    vecs = {k: np.asarray(v, dtype=np.float32) for k, v in vectors.items()} if vectors else {}
    return Hit(id=str(payload.pop(ID_FIELD)), score=float(score), payload=payload, vectors=vecs)


def payload_selector(payload: bool | Sequence[str]) -> bool | list[str]:
    """What to ask the backend for: every field, none, or the named fields and the id."""
    if isinstance(payload, bool):
        return payload
    bad = [f for f in payload if not isinstance(f, str) or not f]
    if isinstance(payload, str) or bad:
        raise RequestError(f"payload fields must be a list of field names, got {payload!r}")
    return [ID_FIELD, *dict.fromkeys(f for f in payload if f != ID_FIELD)]


def hit_payload_selector(payload: bool | Sequence[str]) -> bool | list[str]:
    """``payload_selector`` for query hits: even "no payload" reads the id field, which is
    where a hit's catalogue id comes from."""
    return payload_selector(payload or [])


def records_in_order(found: Iterable[Any], ids: Sequence[str], payload: bool | list[str],
                     ) -> list[Record]:
    """Backend points (``id``, ``payload``, ``vector``) as records in the order of ``ids``
    (each once); without payload, the catalogue id comes from the point id."""
    wanted = list(dict.fromkeys(ids))
    if payload:
        by_id = {r.id: r for r in (to_record(p.payload, p.vector) for p in found)}
    else:
        of_point = {point_id(i): i for i in wanted}
        by_id = {}
        for p in found:
            item = of_point[str(p.id)]
            by_id[item] = to_record({ID_FIELD: item}, p.vector)
    return [by_id[i] for i in wanted if i in by_id]


def to_record(payload: dict[str, Any] | None, vectors: dict[str, Any] | None) -> Record:
    payload = dict(payload or {})
    vecs = {k: np.asarray(v, dtype=np.float32) for k, v in (vectors or {}).items()}
    return Record(id=str(payload.pop(ID_FIELD)), payload=payload, vectors=vecs)


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
