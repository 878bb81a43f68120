"""Bulk indexing: stream the catalogue, decode in worker threads, encode in batches, fuse,
upsert, resume, build the search index.

Resumability and idempotence come from the store itself: every point carries the content hash
of its catalogue row. Each chunk of the catalogue is compared with the stored hashes, and only
new or changed items are embedded, so a run killed at any point resumes where it stopped (the
batch in flight is redone; upserts by stable id never duplicate), a re-run of an unchanged
catalogue writes nothing, and an updated catalogue costs only its changes (``prune`` also
deletes items that left it). An unchanged row is never rewritten, so vectors and payload other
code added to its point (behaviour vectors) stay.

The search index is owed after any write: the store persists that (Edge: a marker file written
before the first write), and every run that finds it owed builds it, even when nothing changed,
so a run killed between its last upsert and the build is finished by the next one.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mosaicrec.encoders.profiles import EncoderSet
from mosaicrec.indexing.catalogue import (
    Catalogue,
    CatalogueItem,
    ColumnMapping,
    Rejected,
    load_mapping,
)
from mosaicrec.indexing.checks import INDEXER_FIELDS
from mosaicrec.indexing.distributed import require_ray
from mosaicrec.indexing.fetch import Fetcher
from mosaicrec.indexing.prepare import (
    HASH_FIELD,
    Prepared,
    build_points,
    prepare_item,
    prepared_batches,
)
from mosaicrec.indexing.quarantine import FailedMedia, Quarantine, failed_media_path
from mosaicrec.indexing.run_config import IndexerConfig, IndexReport, RunState
from mosaicrec.indexing.stores.base import CollectionSchema, Point, VectorSpace, VectorStore

__all__ = ["IndexerConfig", "IndexReport", "BulkIndexer", "RunState", "collection_schema",
           "HASH_FIELD", "load_mapping", "index_catalogue"]

Chunk = tuple[Sequence[CatalogueItem], Sequence[Rejected]]


def collection_schema(
    encoders: EncoderSet, payload_indexes: dict[str, str] | None = None
) -> CollectionSchema:
    """The schema a profile produces: one named vector per modality plus ``fused``."""
    spaces = {
        name: VectorSpace(dim=dim, encoder=enc)
        for name, (dim, enc) in encoders.vector_spaces().items()
    }
    indexes = {"modalities": "keyword", **(payload_indexes or {})}
    # 'keywords' (a list) is indexed as keyword: Qdrant matches any element of a list.
    indexes = {k: "keyword" if v == "keywords" else v for k, v in indexes.items()}
    return CollectionSchema(
        vectors=spaces, payload_indexes=indexes, profile=encoders.profile_record()
    )


class BulkIndexer:
    """Indexes catalogue items into a store with the encoders of one profile. ``on_upsert``
    is called with the ids of each batch after it is written (e.g. to re-sync vectors other
    code keeps on those points)."""

    def __init__(
        self, encoders: EncoderSet, store: VectorStore, config: IndexerConfig | None = None, *,
        on_upsert: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.encoders = encoders
        self.store = store
        self.config = config or IndexerConfig()
        self.on_upsert = on_upsert

    def stored_hashes(self) -> dict[str, str | None]:
        return {rec.id: rec.payload.get(HASH_FIELD) for rec in self.store.iter_records()}

    def run(
        self, items: Iterable[CatalogueItem], rejected: Iterable[Rejected] = ()
    ) -> IndexReport:
        """Index in-memory items (and quarantine ``rejected``); see :meth:`run_chunks`."""
        items, rejected = list(items), list(rejected)
        ids = {it.id for it in items} | {r.id for r in rejected if r.id is not None}
        return self.run_chunks([(items, rejected)], catalogue_ids=ids,
                               total=len(items) + len(rejected))

    def run_chunks(
        self, chunks: Iterable[Chunk], *, catalogue_ids: Container[str] | None = None,
        total: int | None = None,
    ) -> IndexReport:
        """Index a stream of ``(items, rejected)`` chunks. ``catalogue_ids`` (every id of the
        catalogue, good rows or not) is what ``prune`` keeps."""
        start = time.perf_counter()
        cfg = self.config
        memory_path = cfg.failed_media_path or (
            failed_media_path(cfg.quarantine_path) if cfg.quarantine_path else None)
        report = IndexReport(quarantine_path=str(cfg.quarantine_path or "") or None)
        run = RunState(Quarantine(cfg.quarantine_path),
                       FailedMedia(memory_path, retry=cfg.retry_failed), Fetcher(cfg.fetch),
                       report, _progress(total, cfg.progress))
        done = False
        try:
            self._embed(self._select(chunks, run), run)
            if cfg.prune and catalogue_ids is not None:
                report.deleted = self._prune(catalogue_ids)
            if cfg.optimize and (report.indexed or report.deleted or self.store.index_pending):
                _test_point("before-optimize")
                self.store.optimize()
                report.optimized = True
                _test_point("after-optimize")
            done = True
        finally:
            run.progress.close()
            run.memory.close(compact=done)
        run.quarantine.write()
        report.quarantined, report.reasons = run.quarantine.count, run.quarantine.rows
        report.search_index = "pending" if self.store.index_pending else str(
            self.store.info().get("search_index", "built"))
        report.seconds = time.perf_counter() - start
        return report

    def _embed(self, todo: Iterator[CatalogueItem], run: RunState) -> None:
        """Prepare, encode and write the items to embed: the engine's stage (here, worker
        threads decode ahead while this thread encodes and writes)."""
        cfg = self.config
        with ThreadPoolExecutor(cfg.decode_workers, "mosaicrec-decode") as pool:
            work = functools.partial(prepare_item, encoders=self.encoders, fetcher=run.fetcher,
                                     memory=run.memory)
            for batch, prepared in prepared_batches(
                todo, pool, work, cfg.batch_size, cfg.prefetch_batches
            ):
                good = [(batch[i], prepared[i].inputs) for i in self._account(batch, prepared,
                                                                              run)]
                self._upsert(build_points(self.encoders, good), run.report)
                run.progress.update(len(batch))

    # -- internals ----------------------------------------------------------------------------
    def _select(self, chunks: Iterable[Chunk], run: RunState) -> Iterator[CatalogueItem]:
        """The items to embed (new, changed, or retried); quarantines the rest's records."""
        quarantine, memory = run.quarantine, run.memory
        for items, rejected in chunks:
            for row in rejected:
                quarantine.add(row)
            run.report.catalogue_items += len(items)
            stored = {r.id: r.payload.get(HASH_FIELD)
                      for r in self.store.retrieve([it.id for it in items])} if items else {}
            skipped = len(rejected)
            for item in items:
                retry = memory.retry and any(map(memory.was_failed, item.media_keys.values()))
                if stored.get(item.id) != item.content_hash or retry:
                    yield item
                    continue
                run.report.unchanged += 1
                skipped += 1
                failed = dict(item.media_errors)
                for modality, key in item.media_keys.items():
                    reason = memory.reason(key)
                    if reason is not None:
                        failed.setdefault(modality, reason)
                _quarantine_media(quarantine, item, failed, indexed=True)
            run.progress.update(skipped)

    def _account(
        self, batch: Sequence[CatalogueItem], prepared: Sequence[Prepared], run: RunState
    ) -> list[int]:
        """Remember and quarantine a prepared batch's media failures (before any of it is
        written); the positions of the items that have something to embed."""
        good: list[int] = []
        for i, (item, prep) in enumerate(zip(batch, prepared, strict=True)):
            for modality in prep.new:
                run.memory.remember(item.media_keys.get(modality) or
                                    f"item:{item.id}:{modality}", modality, prep.failed[modality])
            for modality in prep.recovered:
                run.memory.succeeded(item.media_keys[modality])
            _quarantine_media(run.quarantine, item, prep.failed, indexed=bool(prep.inputs))
            if prep.inputs:
                good.append(i)
                run.report.degraded += bool(prep.failed)
            elif not prep.failed:
                run.quarantine.add(Rejected(item.row, item.id, "has no modality this profile "
                                            "can embed", None, item.line))
        return good

    def _upsert(self, points: list[Point], report: IndexReport, *, written: bool = False
                ) -> None:
        """Write a batch of points (``written``: another process already has) and count it."""
        if not points:
            return
        if not written:
            self.store.note_payload_fields({k for p in points for k in p.payload})
            self.store.upsert(points)
        report.indexed += len(points)
        _test_point("batch-written")
        if self.on_upsert is not None:
            self.on_upsert([p.id for p in points])

    def _prune(self, keep: Container[str]) -> int:
        """Delete stored items whose id the catalogue no longer has (ids collected first:
        deleting while paging would move the pages)."""
        gone: list[str] = []
        page: list[str] = []
        for rec in self.store.iter_records():
            page.append(rec.id)
            if len(page) == 1000:
                gone += _missing(keep, page)
                page = []
        gone += _missing(keep, page)
        for start in range(0, len(gone), 1000):
            self.store.delete(gone[start:start + 1000])
        return len(gone)


def _missing(keep: Container[str], ids: list[str]) -> list[str]:
    missing = getattr(keep, "missing", None)
    return missing(ids) if missing is not None else [i for i in ids if i not in keep]


def _quarantine_media(
    quarantine: Quarantine, item: CatalogueItem, failed: dict[str, str], *, indexed: bool
) -> None:
    for modality, reason in failed.items():
        note = "" if indexed else "; the item is not indexed (nothing else could be embedded)"
        quarantine.add(Rejected(item.row, item.id, reason + note, modality, item.line, indexed))


def index_catalogue(
    catalogue: Path,
    store_config: Any,
    profile: Any,
    *,
    mapping: ColumnMapping | None = None,
    indexer: IndexerConfig | None = None,
    device: str | None = None,
    on_upsert: Callable[[list[str]], None] | None = None,
) -> tuple[VectorStore, EncoderSet, IndexReport]:
    """Read, embed and store a catalogue file: the one path from a file to a collection.
    The file and its mapping are checked (``CatalogueError``) before any model is loaded or
    anything written; so is Ray for ``engine="ray"`` (``MissingDependencyError``). Returns the
    open store (the caller closes it), the encoders and the report."""
    from mosaicrec.encoders.profiles import load_profile
    from mosaicrec.indexing.stores import open_store

    config = indexer or IndexerConfig()
    if config.engine == "ray":
        require_ray()
    mapping = mapping or load_mapping(Path(catalogue))
    source = Catalogue(catalogue, mapping, media_roots=config.media_roots,
                       chunk_size=config.chunk_size).scan()
    # the Ray engine encodes in actors: the driver's copy only shapes and fuses (CPU)
    encoders = load_profile(profile, device="cpu" if config.engine == "ray" else device)
    schema = collection_schema(encoders, dict(mapping.payload))
    store = open_store(store_config, schema, create=True)
    try:
        store.note_payload_fields({*INDEXER_FIELDS, *mapping.payload})
        if config.engine == "ray":
            from mosaicrec.indexing.ray_indexer import RayIndexer

            indexer_ = RayIndexer(encoders, store, config, on_upsert=on_upsert,
                                  store_config=store_config, device=device)
        else:
            indexer_ = BulkIndexer(encoders, store, config, on_upsert=on_upsert)
        report = indexer_.run_chunks(source.chunks(), catalogue_ids=source.ids,
                                     total=source.rows)
    except BaseException:
        store.close()
        raise
    return store, encoders, report


def _test_point(name: str) -> None:
    """Test-only hooks for the kill harness: announce a point on stderr and optionally pause
    there (``MOSAICREC_TEST_POINTS=1``, ``MOSAICREC_TEST_PAUSE_BEFORE_OPTIMIZE=seconds``)."""
    if os.environ.get("MOSAICREC_TEST_POINTS"):
        print(f"mosaicrec-test-point {name}", file=sys.stderr, flush=True)
    pause = os.environ.get("MOSAICREC_TEST_PAUSE_" + name.upper().replace("-", "_"))
    if pause:
        time.sleep(float(pause))


def _progress(total: int | None, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="row", desc="indexing", disable=not enabled, smoothing=0.1)
