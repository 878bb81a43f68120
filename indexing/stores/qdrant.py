"""``QdrantStore``: the store contract over qdrant-client (a server, a cluster, or local mode).

The schema is recorded in the collection's own metadata (``metadata["mosaicrec_schema"]``,
supported by qdrant-client 1.20 in local mode and on the server), so it travels with the
collection and is checked on every open. Local mode (``":memory:"`` or a directory) searches by
brute force and ignores payload indexes; it is how tests exercise the server code path.

Every client call after opening runs under ``_errors``: whatever the client raises (a dead
server, a refused request, local mode's ``ValueError``/``KeyError``) becomes a ``StoreError``
naming the action and the collection; mosaicrec's own errors pass through unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mosaicrec.errors import MosaicError, StoreError
from mosaicrec.indexing.stores import _filters, _points, _queries, _results, _schema_ops
from mosaicrec.indexing.stores import _qdrant_helpers as helpers
from mosaicrec.indexing.stores.base import (
    CollectionSchema,
    Filter,
    Hit,
    PayloadType,
    Point,
    Record,
    VectorSpace,
    VectorStore,
    point_id,
)

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from mosaicrec.indexing.stores import StoreConfig


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
        client = helpers.connect(config)
        try:
            if client.collection_exists(config.collection):
                stored = helpers.stored_schema(client, config)
                if schema is not None:
                    added = _schema_ops.merge_schema(schema, stored, config.where)
                    if added:
                        stored = stored.model_copy(
                            update={"payload_indexes": {**stored.payload_indexes,
                                                        **schema.payload_indexes}}
                        )
                        helpers.create_indexes(client, config.collection, stored, added)
                        client.update_collection(
                            config.collection,
                            metadata={_schema_ops.SCHEMA_KEY: stored.model_dump(mode="json")},
                        )
                return cls(client, config, stored)
            if schema is None:
                raise StoreError(
                    f"collection {config.where} does not exist; creating it needs a schema"
                )
            if not create:
                raise StoreError(f"collection {config.where} does not exist")
            helpers.create_collection(client, config, schema)
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

        prepared = _points.prepare_points(points, self.schema)  # raises before any write
        client = self._handle()
        with self._errors("upsert"):
            for batch in _points.batches(prepared, self.config.upsert_batch):
                client.upsert(
                    self.name,
                    points=[
                        models.PointStruct(id=p.pid, vector=p.vectors, payload=p.payload)
                        for p in batch
                    ],
                    wait=True,
                )

    def delete(self, ids: Sequence[str]) -> None:
        from qdrant_client import models

        if ids:
            pids = [point_id(i) for i in ids]
            with self._errors("delete"):
                self._handle().delete(self.name, models.PointIdsList(points=pids), wait=True)

    def update_vectors(self, name: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        from qdrant_client import models

        prepared = _points.prepare_update(name, ids, vectors, self.schema)  # raises before writes
        self._require_stored(ids)  # the client writes the ids before a missing one, then fails
        client = self._handle()
        with self._errors(f"update vectors {name!r}"):
            for batch in _points.batches(prepared, self.config.upsert_batch):
                client.update_vectors(
                    self.name,
                    points=[models.PointVectors(id=pid, vector={name: v}) for pid, v in batch],
                    wait=True,
                )

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        values = _points.prepare_payload(ids, payload)
        if not ids or not values:
            return
        self._require_stored(ids)
        client = self._handle()
        pids = [point_id(i) for i in dict.fromkeys(ids)]
        self.note_payload_fields(values)
        with self._errors("set payload"):
            for batch in _points.batches(pids, self.config.upsert_batch):
                client.set_payload(self.name, payload=values, points=list(batch), wait=True)

    def _require_stored(self, ids: Sequence[str]) -> None:
        client = self._handle()

        def stored(pids: list[str]) -> list[Any]:
            with self._errors("look up ids"):
                found = client.retrieve(self.name, pids, with_payload=False, with_vectors=False)
            return [r.id for r in found]

        _points.require_stored(ids, self.config.upsert_batch, stored, self.config.where)

    # ---- schema changes on a live collection ---------------------------------------------

    def add_vector_space(self, name: str, space: VectorSpace) -> bool:
        from qdrant_client import models

        schema = _schema_ops.with_space(self.schema, name, space)
        if schema is None:
            return False
        client = self._handle()
        config = models.DenseVectorNameConfig(
            dense=models.DenseVectorConfig(size=space.dim, distance=helpers.distance(space))
        )
        with self._errors(f"add vector {name!r}"):
            have = client.get_collection(self.name).config.params.vectors
            if isinstance(have, dict) and name in have:  # an older definition, or unrecorded
                client.delete_vector_name(self.name, name, wait=True)
            client.create_vector_name(self.name, name, config, wait=True)
        self._save(schema)  # after the vector exists: the schema never names a missing one
        return True

    def drop_vector_space(self, name: str) -> bool:
        schema = _schema_ops.without_space(self.schema, name)
        if schema is None:
            return False
        client = self._handle()
        self._save(schema)  # first: a failure leaves an unrecorded vector, which a re-add drops
        with self._errors(f"drop vector {name!r}"):
            client.delete_vector_name(self.name, name, wait=True)
        return True

    def add_payload_index(self, field: str, kind: PayloadType) -> bool:
        schema = _schema_ops.with_index(self.schema, field, kind, self.config.where)
        if schema is None:
            return False
        with self._errors(f"create payload index {field!r}"):
            helpers.create_indexes(self._handle(), self.name, schema, {field})
        self._save(schema)
        return True

    def _save(self, schema: CollectionSchema) -> None:
        metadata = {_schema_ops.SCHEMA_KEY: schema.model_dump(mode="json")}
        with self._errors("record the schema"):
            self._handle().update_collection(self.name, metadata=metadata)
        self.schema = schema

    # ---- reading -------------------------------------------------------------------------

    def retrieve(
        self, ids: Sequence[str], *, vectors: Sequence[str] | bool = False,
        payload: bool | Sequence[str] = True,
    ) -> list[Record]:
        names = _results.vector_names(vectors, self.schema)
        payload = _results.payload_selector(payload)
        if not ids:
            return []
        with self._errors("retrieve"):
            found = self._handle().retrieve(
                self.name,
                ids=[point_id(i) for i in dict.fromkeys(ids)],
                with_payload=payload,
                with_vectors=names or False,
            )
        return _results.records_in_order(found, ids, payload)

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
        from qdrant_client import models

        vec = _queries.query_vector(vector, using, self.schema)
        params = models.SearchParams(hnsw_ef=ef or self.config.hnsw_ef, exact=exact)
        return self._query(vec, using, limit, filter, exclude_ids, params,
                           with_vectors=with_vectors, payload=payload)

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
        pos, neg, kind = _queries.recommend_examples(
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

        _queries.check_mmr(diversity, candidates_limit, limit)
        query = models.NearestQuery(
            nearest=_queries.query_vector(vector, using, self.schema),
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
        *,
        with_vectors: Sequence[str] = (),
        payload: bool | Sequence[str] = True,
    ) -> list[Hit]:
        _queries.check_limit(limit)
        names = _results.vector_names(list(with_vectors), self.schema)
        if not self.config.url:
            params = None  # local mode is brute force and warns about any search params
        flt = self._filter(filter, exclude_ids)
        with self._errors("query"):
            response = self._handle().query_points(
                self.name,
                query=query,
                using=using,
                limit=limit,
                query_filter=flt,
                search_params=params,
                with_payload=_results.hit_payload_selector(payload),
                with_vectors=names or False,
            )
        return [_results.to_hit(p.payload, p.score, p.vector if names else None)
                for p in response.points]

    def count(self, filter: Filter | None = None) -> int:
        flt = self._filter(filter, ())
        with self._errors("count"):
            return self._handle().count(self.name, count_filter=flt, exact=True).count

    def iter_records(
        self, *, vectors: Sequence[str] | bool = False, batch_size: int = 1000
    ) -> Iterator[Record]:
        names = _results.vector_names(vectors, self.schema)
        offset = None
        while True:
            with self._errors("scroll"):
                page, offset = self._handle().scroll(
                    self.name,
                    limit=batch_size,
                    offset=offset,
                    with_payload=True,
                    with_vectors=names or False,
                )
            for p in page:
                yield _results.to_record(p.payload, p.vector)
            if offset is None:
                return

    # ---- maintenance ---------------------------------------------------------------------

    def optimize(self) -> bool:
        # A server builds HNSW in the background by itself; local mode has no index to build.
        return False

    def info(self) -> dict[str, Any]:
        with self._errors("read collection info"):
            info = self._handle().get_collection(self.name)
        return {
            "backend": "qdrant",
            "mode": "server" if self.config.url else "local",
            "location": self.config.url or self.config.path,
            "collection": self.name,
            "points": self.count(),
            "indexed_vectors": info.indexed_vectors_count,
            "status": str(info.status.value if hasattr(info.status, "value") else info.status),
            "search_index": helpers.search_index_state(info, bool(self.config.url)),
            "schema": self.schema.model_dump(mode="json"),
        }

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            with self._errors("close"):
                client.close()

    def _handle(self) -> QdrantClient:
        if self._client is None:
            raise StoreError(f"store for collection {self.config.where} is closed")
        return self._client

    def _errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        return helpers.client_errors(f"{action} in collection {self.config.where}")

    def _filter(self, flt: Filter | None, exclude_ids: Sequence[str]) -> Any:
        from qdrant_client import models

        return _filters.build_filter(
            flt,
            exclude_ids,
            leaf=helpers.leaf,
            has_id=lambda pids: models.HasIdCondition(has_id=pids),
            combine=lambda must, must_not, should: models.Filter(
                must=must or None, must_not=must_not or None, should=should or None
            ),
            vectors=self.schema.vectors,
        )
