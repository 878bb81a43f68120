"""Checks of query arguments: query vectors, limits, recommend examples, MMR settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mosaicrec.errors import RequestError
from mosaicrec.indexing.stores.base import CollectionSchema


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
