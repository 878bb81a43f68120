"""Qdrant Edge query objects: nearest, recommend-by-examples and MMR queries, and the request
that carries one (search parameters, ACORN for filters the HNSW graph has no links for)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mosaicrec.indexing.stores import _queries
from mosaicrec.indexing.stores.base import CollectionSchema


def nearest(vector: np.ndarray, using: str, schema: CollectionSchema) -> Any:
    import qdrant_edge as qe

    return qe.Query.Nearest(_queries.query_vector(vector, using, schema), using=using)


def recommend(positive: Sequence[np.ndarray], negative: Sequence[np.ndarray], using: str,
              schema: CollectionSchema, strategy: str) -> Any:
    import qdrant_edge as qe

    kinds = {"best_score": qe.Query.RecommendBestScore,
             "sum_scores": qe.Query.RecommendSumScores}
    pos, neg, kind = _queries.recommend_examples(positive, negative, using, schema, strategy,
                                                 kinds)
    return kind(qe.RecommendQuery(positives=pos, negatives=neg), using=using)


def mmr(vector: np.ndarray, using: str, schema: CollectionSchema, *, diversity: float,
        candidates_limit: int, limit: int) -> Any:
    import qdrant_edge as qe

    _queries.check_mmr(diversity, candidates_limit, limit)
    # Edge's lambda weighs relevance; Qdrant's public "diversity" is 1 - lambda
    return qe.Mmr(vector=_queries.query_vector(vector, using, schema), lambda_=1.0 - diversity,
                  candidates_limit=candidates_limit, using=using)


def request(query: Any, limit: int, filter: Any, *, ef: int, exact: bool, acorn: bool,
            with_vector: Sequence[str] | bool, with_payload: Any) -> Any:
    """One query request; ``acorn`` searches with ACORN (filters the graph was not built for)."""
    import qdrant_edge as qe

    params = qe.SearchParams(
        hnsw_ef=ef, exact=exact,
        acorn=qe.AcornSearchParams(enable=True, max_selectivity=1.0) if acorn else None)
    return qe.QueryRequest(query=query, limit=limit, filter=filter, params=params,
                           with_payload=with_payload, with_vector=with_vector)
