"""``EdgeStore``: the store contract over Qdrant Edge (``qdrant-edge-py``), embedded on disk.

Layout: ``<path>/<collection>/`` is one Edge shard directory; beside Edge's own files it holds
``mosaicrec_schema.json`` (the collection schema, checked on every open). Point ids are the
uuid5 strings of :func:`~mosaicrec.indexing.stores.base.point_id`, which Edge accepts as they
are; the catalogue id is also kept in the payload (``item_id``) and is what callers see.

Edge has no background optimiser: upserts land in a plain segment searched by brute force, and
``optimize()`` builds HNSW (call it after a bulk load). Bulk writes are kept bounded here instead:
every ``segment_points`` points written, upsert builds that segment itself, and every
``release_pages_points`` it flushes and hands the mapped files' pages back to the kernel, so
memory stays flat while a million rows load (benchmarks/results/indexing_memory.json).

Payload indexes are created with the collection, before any ``optimize()``, so the graph gets
filter-aware links; a filter on a field that has no index, or whose index was added after the
graph was built, is searched with ACORN so its recall does not collapse (docs/qdrant-edge.md,
sharp edge 1); so is a ``has_vector`` condition, which no payload index backs. HNSW build
parameters are fixed when the collection is created; ``hnsw_ef`` applies per query.

Vector spaces added later (``add_vector_space``, e.g. learned behaviour vectors) get HNSW from the
next ``optimize()``, measured on 0.9.0 (3,000 points, graph already built): ``create_dense_vector``
plus ``update_vectors`` leaves ``indexed_vectors_count`` unchanged (the updated points move into
the appendable segment, searched by brute force, so results are exact meanwhile); the next
``optimize()`` returns True and indexes them (3,000 -> 5,000 after giving 2,000 points the new
vector; recall@10 0.995 at ef 16). Call ``optimize()`` after writing a new space in bulk.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mosaicrec.errors import StoreError
from mosaicrec.indexing.stores import _edge_helpers as helpers
from mosaicrec.indexing.stores import (
    _edge_queries,
    _filters,
    _points,
    _queries,
    _results,
    _schema_ops,
)
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
    from qdrant_edge import EdgeShard

    from mosaicrec.indexing.stores import StoreConfig


class EdgeStore(VectorStore):
    """One collection = one Qdrant Edge shard directory."""

    def __init__(
        self,
        shard: EdgeShard,
        config: StoreConfig,
        schema: CollectionSchema,
        directory: Path,
        late_indexes: set[str],
    ) -> None:
        self._shard: EdgeShard | None = shard
        self.config = config
        self.schema = schema
        self.directory = directory
        # indexed fields whose index post-dates the HNSW graph: filtered with ACORN
        self._late_indexes = late_indexes
        # writes since the last optimize() (persisted as a marker file, see helpers)
        self._pending = (directory / helpers.PENDING_FILE).is_file()
        self._writes = 0
        # points written since the last build and since pages were last released
        self._unbuilt = self._unreleased = 0
        # one has-id condition per exclusion list: a request's candidate queries all exclude
        # the same seen items, and building the condition parses every uuid again
        self._has_id = functools.lru_cache(maxsize=256)(helpers.has_id_condition)

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls, config: StoreConfig, schema: CollectionSchema | None, *, create: bool = True
    ) -> EdgeStore:
        directory = Path(str(config.path)) / config.collection
        if (directory / helpers.EDGE_CONFIG).is_file():
            return cls._open_existing(config, schema, directory)
        if schema is None:
            raise StoreError(
                f"collection {config.where} does not exist (no Edge shard in {directory}); "
                "creating it needs a schema"
            )
        if not create:
            raise StoreError(f"collection {config.where} does not exist (no shard in {directory})")
        return cls._create(config, schema, directory)

    @classmethod
    def _create(cls, config: StoreConfig, schema: CollectionSchema, directory: Path) -> EdgeStore:
        store = cls(helpers.create_shard(config, schema, directory), config, schema, directory,
                    set())
        store._ensure_indexes()
        return store

    @classmethod
    def _open_existing(
        cls, config: StoreConfig, schema: CollectionSchema | None, directory: Path
    ) -> EdgeStore:
        shard, stored, late = helpers.load_shard(config, schema, directory)
        store = cls(shard, config, stored, directory, late)
        try:
            store._ensure_indexes()
        except BaseException:
            store.close()
            raise
        return store

    def _ensure_indexes(self) -> None:
        """Create every schema payload index the shard lacks (all of them on a new shard)."""
        shard = self._handle()
        with self._errors("read shard info"):
            info = shard.info()
        missing = sorted(set(self.schema.payload_indexes) - set(info.payload_schema))
        if not missing:
            return
        with self._errors(f"create payload indexes {missing}"):
            helpers.create_indexes(shard, self.schema, missing)
        if info.indexed_vectors_count > 0:
            self._late_indexes |= set(missing)
        helpers.write_state(self.directory, self.schema, self._late_indexes)

    # ---- writing -------------------------------------------------------------------------

    def upsert(self, points: Sequence[Point]) -> None:
        import qdrant_edge as qe

        prepared = _points.prepare_points(points, self.schema)  # raises before any write
        shard = self._handle()
        step = self.config.upsert_batch
        self._mark_pending()
        with self._errors("upsert"):
            for start in range(0, len(prepared), step):
                shard.update(qe.UpdateOperation.upsert_points([
                    qe.Point(p.pid, p.vectors, p.payload) for p in prepared[start:start + step]
                ]))
        self._bound_bulk_writes(len(prepared))

    def _bound_bulk_writes(self, written: int) -> None:
        """Build a full segment, or release written pages, when a bulk load has written enough
        (see the module docstring); small writes never reach either threshold."""
        self._unbuilt += written
        self._unreleased += written
        cfg = self.config
        build = cfg.segment_points is not None and self._unbuilt >= cfg.segment_points
        if build:
            self.optimize()
        due = cfg.release_pages_points is not None and self._unreleased >= cfg.release_pages_points
        if not (build or due):  # a build touched every page of its segment: release those too
            return
        with self._errors("flush"):
            self._handle().flush()
        helpers.release_file_pages(self.directory)
        self._unreleased = 0

    def delete(self, ids: Sequence[str]) -> None:
        import qdrant_edge as qe

        if ids:
            self._mark_pending()
            with self._errors("delete"):
                self._handle().update(qe.UpdateOperation.delete_points([point_id(i) for i in ids]))

    def update_vectors(self, name: str, ids: Sequence[str], vectors: np.ndarray) -> None:
        import qdrant_edge as qe

        prepared = _points.prepare_update(name, ids, vectors, self.schema)  # raises before writes
        self._require_stored(ids)  # Edge writes the ids before a missing one, then fails
        shard = self._handle()
        self._mark_pending()
        with self._errors(f"update vectors {name!r}"):
            for batch in _points.batches(prepared, self.config.upsert_batch):
                shard.update(qe.UpdateOperation.update_vectors(
                    [qe.PointVectors(pid, {name: vec}) for pid, vec in batch]
                ))
        self._bound_bulk_writes(len(prepared))  # Edge moves updated points to a new segment

    def set_payload(self, ids: Sequence[str], payload: dict[str, Any]) -> None:
        import qdrant_edge as qe

        values = _points.prepare_payload(ids, payload)
        if not ids or not values:
            return
        self._require_stored(ids)
        shard = self._handle()
        pids = [point_id(i) for i in dict.fromkeys(ids)]
        self.note_payload_fields(values)
        self._mark_pending()  # Edge copies the points into the appendable segment
        with self._errors("set payload"):
            for batch in _points.batches(pids, self.config.upsert_batch):
                shard.update(qe.UpdateOperation.set_payload(list(batch), values))

    def _mark_pending(self) -> None:
        self._writes += 1
        if not self._pending:
            helpers.mark_pending(self.directory)  # before the write: a kill keeps it
            self._pending = True

    @property
    def index_pending(self) -> bool:
        return self._pending

    def _require_stored(self, ids: Sequence[str]) -> None:
        shard = self._handle()

        def stored(pids: list[str]) -> list[Any]:
            with self._errors("look up ids"):
                return [r.id for r in shard.retrieve(pids, with_payload=False, with_vector=False)]

        _points.require_stored(ids, self.config.upsert_batch, stored, self.config.where)

    # ---- schema changes on a live collection ---------------------------------------------

    def add_vector_space(self, name: str, space: VectorSpace) -> bool:
        import qdrant_edge as qe

        schema = _schema_ops.with_space(self.schema, name, space)
        if schema is None:
            return False
        shard = self._handle()
        with self._errors(f"add vector {name!r}"):
            # Drop first: an older definition (Edge refuses to redefine a vector), or one a crash
            # left unrecorded; dropping an absent name is a no-op.
            shard.update(qe.UpdateOperation.delete_vector_name(name))
            dist = helpers.distance(space)
            shard.update(qe.UpdateOperation.create_dense_vector(name, space.dim, dist))
        self._save(schema)  # after the shard: the schema never names a vector it lacks
        return True

    def drop_vector_space(self, name: str) -> bool:
        import qdrant_edge as qe

        schema = _schema_ops.without_space(self.schema, name)
        if schema is None:
            return False
        shard = self._handle()
        self._save(schema)  # first: a crash leaves an unrecorded vector, which a re-add drops
        with self._errors(f"drop vector {name!r}"):
            shard.update(qe.UpdateOperation.delete_vector_name(name))
        return True

    def add_payload_index(self, field: str, kind: PayloadType) -> bool:
        schema = _schema_ops.with_index(self.schema, field, kind, self.config.where)
        if schema is None:
            return False
        old, self.schema = self.schema, schema
        try:
            self._ensure_indexes()  # marks it for ACORN when the graph is already built
        except BaseException:
            self.schema = old
            raise
        self._save(schema)
        return True

    def _save(self, schema: CollectionSchema) -> None:
        helpers.write_state(self.directory, schema, self._late_indexes)
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
                [point_id(i) for i in dict.fromkeys(ids)],
                with_payload=payload,
                with_vector=names or False,
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
        return self._query(_edge_queries.nearest(vector, using, self.schema), limit, filter,
                           exclude_ids, exact=exact, ef=ef, with_vectors=with_vectors,
                           payload=payload)

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
        query = _edge_queries.recommend(positive, negative, using, self.schema, strategy)
        return self._query(query, limit, filter, exclude_ids)

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
        query = _edge_queries.mmr(vector, using, self.schema, diversity=diversity,
                                  candidates_limit=candidates_limit, limit=limit)
        return self._query(query, limit, filter, exclude_ids)

    def _query(self, query: Any, limit: int, filter: Filter | None, exclude_ids: Sequence[str],
               *, exact: bool = False, ef: int | None = None,
               with_vectors: Sequence[str] = (), payload: bool | Sequence[str] = True,
               ) -> list[Hit]:
        _queries.check_limit(limit)
        names = _results.vector_names(list(with_vectors), self.schema)
        unlinked = _filters.filter_fields(filter) - self._filter_ready_fields()
        request = _edge_queries.request(
            query, limit, self._filter(filter, exclude_ids), ef=ef or self.config.hnsw_ef,
            exact=exact, acorn=not exact and bool(unlinked or _filters.filter_vectors(filter)),
            with_vector=names or False, with_payload=_results.hit_payload_selector(payload))
        with self._errors("query"):
            found = self._handle().query(request)
        return [_results.to_hit(p.payload, p.score, p.vector if names else None) for p in found]

    def _filter_ready_fields(self) -> set[str]:
        return set(self.schema.payload_indexes) - self._late_indexes

    def count(self, filter: Filter | None = None) -> int:
        import qdrant_edge as qe

        flt = self._filter(filter, ())
        with self._errors("count"):
            return self._handle().count(qe.CountRequest(exact=True, filter=flt))

    def iter_records(
        self, *, vectors: Sequence[str] | bool = False, batch_size: int = 1000
    ) -> Iterator[Record]:
        names = _results.vector_names(vectors, self.schema)
        for page in self._pages(batch_size, names or False, "scroll"):
            for p in page:
                yield _results.to_record(p.payload, p.vector)

    def _pages(self, batch_size: int, with_vector: Any, action: str) -> Iterator[list[Any]]:
        """Every point with its payload, a scroll page at a time."""
        import qdrant_edge as qe

        offset = None
        while True:
            request = qe.ScrollRequest(offset=offset, limit=batch_size, with_payload=True,
                                       with_vector=with_vector)
            with self._errors(action):
                page, offset = self._handle().scroll(request)
            yield page
            if offset is None:
                return

    def warm(self) -> int:
        """Edge maps its payload storage lazily: the first read of an item's payload cost
        0.13 ms here, later ones 0.02 ms (100k items; ten new ids in a list's final read:
        1.3 ms). One scroll over every payload (0.6 s per 100k items) makes every read a
        later one."""
        return sum(len(page) for page in self._pages(10_000, False, "warm"))

    # ---- maintenance ---------------------------------------------------------------------

    def optimize(self) -> bool:
        writes = self._writes
        with self._errors("optimize"):
            built = bool(self._handle().optimize())
        self._unbuilt = 0
        if self._pending and writes == self._writes:  # nothing was written meanwhile
            helpers.clear_pending(self.directory)
            self._pending = False
        return built

    def info(self) -> dict[str, Any]:
        with self._errors("read shard info"):
            info = self._handle().info()
        return {
            "backend": "edge",
            "location": str(self.directory),
            "collection": self.config.collection,
            "points": info.points_count,
            "indexed_vectors": info.indexed_vectors_count,
            "segments": info.segments_count,
            "payload_indexes": sorted(info.payload_schema),
            "acorn_fields": sorted(self._late_indexes),
            # "pending": written since the last optimize(), so searches may be brute force
            "search_index": "pending" if self._pending else "built",
            "schema": self.schema.model_dump(mode="json"),
        }

    def close(self) -> None:
        if self._shard is not None:
            shard, self._shard = self._shard, None
            with self._errors("close"):
                shard.flush()
                shard.close()

    def _handle(self) -> EdgeShard:
        if self._shard is None:
            raise StoreError(f"store for collection {self.config.where} is closed")
        return self._shard

    def _errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        return helpers.edge_errors(f"{action} in collection {self.config.where}")

    def _filter(self, flt: Filter | None, exclude_ids: Sequence[str]) -> Any:
        import qdrant_edge as qe

        return _filters.build_filter(
            flt,
            exclude_ids,
            leaf=helpers.leaf,
            has_id=lambda pids: self._has_id(tuple(pids)),
            combine=lambda must, must_not, should: qe.Filter(
                must=must or None, must_not=must_not or None, should=should or None
            ),
            vectors=self.schema.vectors,
        )

