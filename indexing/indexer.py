"""Bulk indexing: decode in worker threads, encode in batches, fuse, upsert, resume.

Resumability and idempotence come from the store itself: every point carries the content hash
of its catalogue row. A run first reads the stored hashes, then embeds only new or changed
items, so a run killed at any point resumes where it stopped (the batch in flight is redone;
upserts by stable id never duplicate), a re-run of an unchanged catalogue does nothing, and an
updated catalogue costs only its changes (``prune`` also deletes items that left it).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.encoders.base import Modality
from mosaicrec.encoders.profiles import EncoderSet
from mosaicrec.errors import InputError
from mosaicrec.indexing.catalogue import CatalogueItem, Rejected
from mosaicrec.indexing.fetch import FetchConfig, resolve_media
from mosaicrec.indexing.stores.base import (
    ID_FIELD,
    CollectionSchema,
    Point,
    VectorSpace,
    VectorStore,
)

__all__ = ["IndexerConfig", "IndexReport", "BulkIndexer", "collection_schema", "HASH_FIELD"]

HASH_FIELD = "content_hash"


class IndexerConfig(StrictModel):
    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default=32, ge=1)
    decode_workers: int = Field(default=2, ge=1, description="threads decoding media")
    prefetch_batches: int = Field(default=2, ge=1, description="batches decoded ahead")
    prune: bool = Field(default=False, description="delete stored items absent from the catalogue")
    optimize: bool = Field(default=True, description="build the HNSW index after the load")
    progress: bool = True
    quarantine_path: Path | None = None
    fetch: FetchConfig = Field(default_factory=FetchConfig)


@dataclass
class IndexReport:
    catalogue_items: int = 0
    indexed: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    quarantine_path: str | None = None
    reasons: list[Rejected] = field(default_factory=list)

    @property
    def items_per_s(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0


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


class _Quarantine:
    """Appends one JSON line per rejected row, so nothing is lost if the run dies."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self.rows: list[Rejected] = []

    def add(self, rejected: Rejected) -> None:
        self.count += 1
        self.rows.append(rejected)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(rejected.to_json() + "\n")


class BulkIndexer:
    """Indexes catalogue items into a store with the encoders of one profile."""

    def __init__(
        self, encoders: EncoderSet, store: VectorStore, config: IndexerConfig | None = None
    ) -> None:
        self.encoders = encoders
        self.store = store
        self.config = config or IndexerConfig()

    def stored_hashes(self) -> dict[str, str | None]:
        return {rec.id: rec.payload.get(HASH_FIELD) for rec in self.store.iter_records()}

    def run(self, items: Sequence[CatalogueItem], rejected: Sequence[Rejected] = ()) -> IndexReport:
        start = time.perf_counter()
        quarantine = _Quarantine(self.config.quarantine_path)
        for row in rejected:
            quarantine.add(row)
        stored = self.stored_hashes()
        todo = [it for it in items if stored.get(it.id) != it.content_hash]
        report = IndexReport(catalogue_items=len(items), unchanged=len(items) - len(todo))
        if self.config.prune:
            gone = sorted(set(stored) - {it.id for it in items})
            if gone:
                self.store.delete(gone)
            report.deleted = len(gone)
        progress = _progress(len(todo), self.config.progress)
        with ThreadPoolExecutor(self.config.decode_workers, "mosaicrec-decode") as pool:
            for batch, prepared in self._prepared_batches(todo, pool):
                good = []
                for item, result in zip(batch, prepared, strict=True):
                    if isinstance(result, InputError):
                        quarantine.add(Rejected(item.row, item.id, result.reason))
                    else:
                        good.append((item, result))
                if good:
                    self.store.upsert(self._points(good))
                report.indexed += len(good)
                progress.update(len(batch))
        progress.close()
        if self.config.optimize and report.indexed:
            self.store.optimize()
        report.quarantined = quarantine.count
        report.reasons = quarantine.rows
        report.quarantine_path = str(self.config.quarantine_path or "") or None
        report.seconds = time.perf_counter() - start
        return report

    # -- internals ----------------------------------------------------------------------------
    def _prepared_batches(
        self, items: Sequence[CatalogueItem], pool: ThreadPoolExecutor
    ) -> Iterator[tuple[Sequence[CatalogueItem], list[Any]]]:
        """Decode batches ahead in the pool while the caller encodes the current one."""
        size = self.config.batch_size
        batches = [items[i : i + size] for i in range(0, len(items), size)]
        pending: deque[tuple[Sequence[CatalogueItem], list[Future[Any]]]] = deque()
        for batch in batches:
            pending.append((batch, [pool.submit(self._prepare_item, it) for it in batch]))
            if len(pending) > self.config.prefetch_batches:
                done, futures = pending.popleft()
                yield done, [f.result() for f in futures]
        while pending:
            done, futures = pending.popleft()
            yield done, [f.result() for f in futures]

    def _prepare_item(self, item: CatalogueItem) -> dict[Modality, Any] | InputError:
        """CPU-side work for one item; errors are returned, not raised, to reach quarantine."""
        encoders = self.encoders.items
        sources = {"text": item.text, "image": item.image, "audio": item.audio}
        out: dict[Modality, Any] = {}
        try:
            for modality, source in sources.items():
                if source is None or modality not in encoders:
                    continue
                if modality != "text":
                    source = resolve_media(source, self.config.fetch, item.id)
                out[modality] = encoders[modality].prepare(source, item.id)
        except InputError as err:
            return err
        except Exception as err:  # a decoder bug must not sink the run: quarantine the item
            return InputError(f"unexpected {type(err).__name__}: {err}", item=item.id)
        if not out:
            return InputError("has no modality this profile can embed", item=item.id)
        return out

    def _points(self, good: list[tuple[CatalogueItem, dict[Modality, Any]]]) -> list[Point]:
        n = len(good)
        blocks: dict[Modality, np.ndarray] = {}
        present: dict[Modality, np.ndarray] = {}
        for modality, encoder in self.encoders.items.items():
            rows = [i for i, (_, prep) in enumerate(good) if modality in prep]
            if not rows:
                continue
            block = np.zeros((n, encoder.dim), dtype=np.float32)
            block[rows] = encoder.encode_prepared([good[i][1][modality] for i in rows])
            mask = np.zeros(n, dtype=bool)
            mask[rows] = True
            blocks[modality], present[modality] = block, mask
        fused = self.encoders.fuser.fuse_batch(blocks, present, keys=[it.id for it, _ in good])
        points = []
        for i, (item, prep) in enumerate(good):
            vectors = {m: blocks[m][i] for m in prep}
            vectors["fused"] = fused[i]
            payload = {
                **item.payload,
                ID_FIELD: item.id,
                HASH_FIELD: item.content_hash,
                "modalities": sorted(prep),
            }
            for key, value in (
                ("title", item.title),
                ("text", item.text),
                ("image", item.image),
                ("audio", item.audio),
            ):
                if value is not None:
                    payload.setdefault(key, value)
            points.append(Point(item.id, vectors, payload))
        return points


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="item", desc="indexing", disable=not enabled, smoothing=0.1)
