"""What reads return: vector and payload selectors, hits and records from backend points."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from mosaicrec.errors import RequestError
from mosaicrec.indexing.stores.base import ID_FIELD, CollectionSchema, Hit, Record, point_id


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
