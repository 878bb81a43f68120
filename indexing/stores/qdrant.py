"""``QdrantStore``: the store contract over qdrant-client (a server, a cluster, or local mode).

The schema is recorded in the collection's own metadata (``metadata["mosaicrec_schema"]``,
supported by qdrant-client 1.20 in local mode and on the server), so it travels with the
collection and is checked on every open. Local mode (``":memory:"`` or a directory) searches by
brute force and ignores payload indexes; it is how tests exercise the server code path.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mosaicrec.errors import MosaicError, StoreError
from mosaicrec.indexing.stores import _common as common
from mosaicrec.indexing.stores.base import (
    CollectionSchema,
    Condition,
    Filter,
    Hit,
    Point,
    Record,
    VectorStore,
    point_id,
)

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from mosaicrec.indexing.stores import StoreConfig

_PAYLOAD_TYPES = {
    "keyword": "KEYWORD",
    "integer": "INTEGER",
    "float": "FLOAT",
    "bool": "BOOL",
    "text": "TEXT",
}


class QdrantStore(VectorStore):
    """One collection in a Qdrant server or in qdrant-client's local mode."""

    def __init__(self, client: QdrantClient, config: StoreConfig, schema: CollectionSchema):
        self._client: QdrantClient | None = client
        self.config = config
        self.schema = schema
        self.name = config.collection

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls, config: StoreConfig, schema: CollectionSchema | None, *, create: bool = True
    ) -> QdrantStore:
        client = _connect(config)
        try:
            if client.collection_exists(config.collection):
                stored = _stored_schema(client, config)
                if schema is not None:
                    added = common.merge_schema(schema, stored, config.where)
                    if added:
                        stored = stored.model_copy(
                            update={"payload_indexes": {**stored.payload_indexes,
                                                        **schema.payload_indexes}}
                        )
                        _create_indexes(client, config.collection, stored, added)
                        client.update_collection(
                            config.collection,
                            metadata={common.SCHEMA_KEY: stored.model_dump(mode="json")},
                        )
                return cls(client, config, stored)
            if schema is None:
                raise StoreError(
                    f"collection {config.where} does not exist; creating it needs a schema"
                )
            if not create:
                raise StoreError(f"collection {config.where} does not exist")
            _create_collection(client, config, schema)
            return cls(client, config, schema)
        except MosaicError:
            client.close()
            raise
        except Exception as exc:  # unreachable server, bad api key, ...
            client.close()
            raise StoreError(f"cannot open collection {config.where}: {exc}") from exc

    # ---- writing -------------------------------------------------------------------------

    def upsert(self, points: Sequence[Point]) -> None:
        from qdrant_client import models

        prepared = common.prepare_points(points, self.schema)  # raises before any write
        client = self._handle()
        step = self.config.upsert_batch
        for start in range(0, len(prepared), step):
            client.upsert(
                self.name,
                points=[
                    models.PointStruct(id=p.pid, vector=p.vectors, payload=p.payload)
                    for p in prepared[start:start + step]
                ],
                wait=True,
            )

    def delete(self, ids: Sequence[str]) -> None:
        from qdrant_client import models

        if ids:
            pids = [point_id(i) for i in ids]
            self._handle().delete(self.name, models.PointIdsList(points=pids), wait=True)

    # ---- reading -------------------------------------------------------------------------

    def retrieve(
        self, ids: Sequence[str], *, vectors: Sequence[str] | bool = False
    ) -> list[Record]:
        names = common.vector_names(vectors, self.schema)
        if not ids:
            return []
        found = self._handle().retrieve(
            self.name,
            ids=[point_id(i) for i in ids],
            with_payload=True,
            with_vectors=names or False,
        )
        by_id = {r.id: r for r in (common.to_record(p.payload, p.vector) for p in found)}
        return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]

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
        from qdrant_client import models

        vec = common.query_vector(vector, using, self.schema)
        params = models.SearchParams(hnsw_ef=ef or self.config.hnsw_ef, exact=exact)
        return self._query(vec, using, limit, filter, exclude_ids, params)

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
        from qdrant_client import models

        strategies = {
            "best_score": models.RecommendStrategy.BEST_SCORE,
            "sum_scores": models.RecommendStrategy.SUM_SCORES,
        }
        pos, neg, kind = common.recommend_examples(
            positive, negative, using, self.schema, strategy, strategies
        )
        query = models.RecommendQuery(
            recommend=models.RecommendInput(positive=pos, negative=neg, strategy=kind)
        )
        params = models.SearchParams(hnsw_ef=self.config.hnsw_ef)
        return self._query(query, using, limit, filter, exclude_ids, params)

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
        from qdrant_client import models

        common.check_mmr(diversity, candidates_limit, limit)
        query = models.NearestQuery(
            nearest=common.query_vector(vector, using, self.schema),
            mmr=models.Mmr(diversity=diversity, candidates_limit=candidates_limit),
        )
        params = models.SearchParams(hnsw_ef=self.config.hnsw_ef)
        return self._query(query, using, limit, filter, exclude_ids, params)

    def _query(
        self,
        query: Any,
        using: str,
        limit: int,
        filter: Filter | None,
        exclude_ids: Sequence[str],
        params: Any,
    ) -> list[Hit]:
        common.check_limit(limit)
        if not self.config.url:
            params = None  # local mode is brute force and warns about any search params
        response = self._handle().query_points(
            self.name,
            query=query,
            using=using,
            limit=limit,
            query_filter=_filter(filter, exclude_ids),
            search_params=params,
            with_payload=True,
        )
        return [common.to_hit(p.payload, p.score) for p in response.points]

    def count(self, filter: Filter | None = None) -> int:
        return self._handle().count(self.name, count_filter=_filter(filter, ()), exact=True).count

    def iter_records(
        self, *, vectors: Sequence[str] | bool = False, batch_size: int = 1000
    ) -> Iterator[Record]:
        names = common.vector_names(vectors, self.schema)
        offset = None
        while True:
            page, offset = self._handle().scroll(
                self.name,
                limit=batch_size,
                offset=offset,
                with_payload=True,
                with_vectors=names or False,
            )
            for p in page:
                yield common.to_record(p.payload, p.vector)
            if offset is None:
                return

    # ---- maintenance ---------------------------------------------------------------------

    def optimize(self) -> bool:
        # A server builds HNSW in the background by itself; local mode has no index to build.
        return False

    def info(self) -> dict[str, Any]:
        info = self._handle().get_collection(self.name)
        return {
            "backend": "qdrant",
            "mode": "server" if self.config.url else "local",
            "location": self.config.url or self.config.path,
            "collection": self.name,
            "points": self.count(),
            "indexed_vectors": info.indexed_vectors_count,
            "status": str(info.status.value if hasattr(info.status, "value") else info.status),
            "schema": self.schema.model_dump(mode="json"),
        }

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _handle(self) -> QdrantClient:
        if self._client is None:
            raise StoreError(f"store for collection {self.config.where} is closed")
        return self._client


# ---- module helpers ------------------------------------------------------------------------


def _connect(config: StoreConfig) -> QdrantClient:
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


def _stored_schema(client: QdrantClient, config: StoreConfig) -> CollectionSchema:
    metadata = client.get_collection(config.collection).config.metadata or {}
    if common.SCHEMA_KEY not in metadata:
        raise StoreError(
            f"collection {config.where} exists but was not created by mosaicrec "
            f"(no {common.SCHEMA_KEY!r} in its metadata); use another collection name"
        )
    return CollectionSchema.model_validate(metadata[common.SCHEMA_KEY])


def _create_collection(client: QdrantClient, config: StoreConfig, schema: CollectionSchema) -> None:
    from qdrant_client import models

    optimizers = None
    if config.indexing_threshold_kb is not None:
        optimizers = models.OptimizersConfigDiff(indexing_threshold=config.indexing_threshold_kb)
    client.create_collection(
        config.collection,
        vectors_config={
            name: models.VectorParams(size=space.dim, distance=models.Distance.COSINE)
            for name, space in schema.vectors.items()
        },
        hnsw_config=models.HnswConfigDiff(
            m=config.hnsw_m,
            ef_construct=config.hnsw_ef_construct,
            full_scan_threshold=config.full_scan_threshold_kb,
            payload_m=config.payload_m,
        ),
        optimizers_config=optimizers,
        metadata={common.SCHEMA_KEY: schema.model_dump(mode="json")},
    )
    _create_indexes(client, config.collection, schema, set(schema.payload_indexes))


def _create_indexes(
    client: QdrantClient, name: str, schema: CollectionSchema, fields: set[str]
) -> None:
    from qdrant_client import models

    with warnings.catch_warnings():
        # local mode warns that indexes have no effect there; it filters correctly regardless
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        for field in sorted(fields):
            kind = getattr(models.PayloadSchemaType, _PAYLOAD_TYPES[schema.payload_indexes[field]])
            client.create_payload_index(name, field, field_schema=kind, wait=True)


def _leaf(cond: Condition) -> Any:
    from qdrant_client import models

    if cond.match is not None:
        return models.FieldCondition(key=cond.field, match=models.MatchValue(value=cond.match))
    if cond.any is not None:
        return models.FieldCondition(key=cond.field, match=models.MatchAny(any=cond.any))
    rng = models.Range(gte=cond.gte, gt=cond.gt, lte=cond.lte, lt=cond.lt)
    return models.FieldCondition(key=cond.field, range=rng)


def _filter(flt: Filter | None, exclude_ids: Sequence[str]) -> Any:
    from qdrant_client import models

    return common.build_filter(
        flt,
        exclude_ids,
        leaf=_leaf,
        has_id=lambda pids: models.HasIdCondition(has_id=pids),
        combine=lambda must, must_not, should: models.Filter(
            must=must or None, must_not=must_not or None, should=should or None
        ),
    )
