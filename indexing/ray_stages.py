"""The stages the Ray engine runs on the cluster, and the rows that travel between them.

A row starts as a catalogue item the driver chose to embed (``item``: the pickled
:class:`~mosaicrec.indexing.records.CatalogueItem`; ``memo``: what the failed-media memory says
about its media). :func:`prepare_batch` (Ray Data tasks) fetches and decodes it with the same
:func:`~mosaicrec.indexing.prepare.prepare_item` as the single-process engine, leaving ``meta``
(failures, the modalities it has) and one ``in_<modality>`` input per encoder.
:class:`EncodeActor` (one actor pool per encoder) turns ``in_<m>`` into ``vec_<m>`` and
``has_<m>``. :class:`WriteActor` (servers only) upserts the rows nothing is to be remembered
for, and marks them ``written``. Points are built by
:func:`~mosaicrec.indexing.prepare.assemble_points`, as in the single-process engine.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import time
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mosaicrec.encoders.fusion import Fuser
from mosaicrec.encoders.profiles import EncoderSet
from mosaicrec.indexing.fetch import FetchConfig, Fetcher
from mosaicrec.indexing.prepare import Prepared, assemble_points, prepare_item
from mosaicrec.indexing.quarantine import FailedMedia
from mosaicrec.indexing.records import CatalogueItem
from mosaicrec.indexing.stores.base import Point

__all__ = ["EncodeActor", "ShippedMemory", "WriteActor", "decode_rows", "memo_of",
           "points_of", "prepare_batch", "preparers", "ship_block"]

Batch = dict[str, np.ndarray]
SOURCES = ("text", "image", "audio")


class ShippedMemory:
    """The failed-media memory as one item's media see it (``reason``, ``was_failed``), sent
    with the item so that decoding tasks need no file of the driver's."""

    def __init__(self, remembered: dict[str, str], previous: Collection[str]) -> None:
        self.remembered, self.previous = remembered, set(previous)

    def reason(self, key: str) -> str | None:
        return self.remembered.get(key)

    def was_failed(self, key: str) -> bool:
        return key in self.previous


def memo_of(item: CatalogueItem, modalities: Collection[str], memory: FailedMedia
            ) -> tuple[dict[str, str], set[str]]:
    """What ``prepare_item`` would ask ``memory`` about ``item`` (asked here, in the driver,
    so that the same entries are marked as still in use)."""
    remembered: dict[str, str] = {}
    previous: set[str] = set()
    for modality in SOURCES:
        key = item.media_keys.get(modality)
        if getattr(item, modality) is None or modality not in modalities or not key:
            continue
        reason = memory.reason(key)
        if reason is not None:
            remembered[key] = reason
        elif memory.was_failed(key):
            previous.add(key)
    return remembered, previous


def ship_block(items: Sequence[CatalogueItem], memos: Sequence[tuple[dict[str, str], set[str]]]
               ) -> Any:
    """One block of rows for Ray Data (an Arrow table of pickled items and memos)."""
    import pyarrow as pa

    return pa.table({"item": pa.array([pickle.dumps(i) for i in items], pa.binary()),
                     "memo": pa.array([pickle.dumps(m) for m in memos], pa.binary())})


def preparers(encoders: EncoderSet) -> EncoderSet:
    """The encoders without their models: what decoding needs (image transforms, audio
    feature extractor, text checks), small enough to send to every decoding task."""
    items = {}
    for modality, encoder in encoders.items.items():
        clone = copy.copy(encoder)
        if hasattr(clone, "model"):
            clone.model = None
        items[modality] = clone
    return dataclasses.replace(encoders, items=items, text_queries={})


def _one_thread() -> None:
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def prepare_batch(batch: Batch, *, encoders: EncoderSet, fetch: FetchConfig, started: float,
                  workers: int) -> Batch:
    """Fetch and decode a batch of rows (``workers`` threads overlap the downloads). The run's
    download deadline counts from ``started`` (the driver's wall clock)."""
    _one_thread()
    fetcher = Fetcher(fetch)
    fetcher.started = time.monotonic() - max(0.0, time.time() - started)
    items = [pickle.loads(b) for b in batch["item"]]
    memos = [ShippedMemory(*pickle.loads(b)) for b in batch["memo"]]

    def work(pair: tuple[CatalogueItem, ShippedMemory]) -> Prepared:
        return prepare_item(pair[0], encoders, fetcher, pair[1])  # type: ignore[arg-type]

    with ThreadPoolExecutor(max(1, workers), "mosaicrec-decode") as pool:
        prepared = list(pool.map(work, zip(items, memos, strict=True)))
    out: Batch = {"item": batch["item"], "meta": _objects(
        pickle.dumps((p.failed, p.new, p.recovered, sorted(p.inputs))) for p in prepared)}
    for modality in encoders.items:
        out[f"in_{modality}"] = _objects(
            pickle.dumps(p.inputs[modality], protocol=5) if modality in p.inputs else b""
            for p in prepared)
    return out


class EncodeActor:
    """One encoder, loaded once per actor from its spec; encodes the ``in_<modality>`` column
    of each batch into ``vec_<modality>`` (zeros where an item has none) and ``has_<m>``."""

    def __init__(self, spec: Any, modality: str, device: str, batch_size: int, threads: int
                 ) -> None:
        import torch

        from mosaicrec.encoders.registry import default_registry

        torch.set_num_threads(threads)
        spec = spec.model_copy(update={"device": device, "batch_size": batch_size})
        self.modality = modality
        self.encoder = default_registry().create(spec)

    def __call__(self, batch: Batch) -> Batch:
        column = batch.pop(f"in_{self.modality}")
        rows = [i for i, blob in enumerate(column) if len(blob)]
        vectors = np.zeros((len(column), self.encoder.dim), dtype=np.float32)
        if rows:
            vectors[rows] = self.encoder.encode_prepared([pickle.loads(column[i]) for i in rows])
        has = np.zeros(len(column), dtype=bool)
        has[rows] = True
        batch[f"vec_{self.modality}"], batch[f"has_{self.modality}"] = vectors, has
        return batch


def decode_rows(batch: Batch) -> tuple[list[CatalogueItem], list[Prepared]]:
    """The items of a batch and what their preparation found (inputs stand for modalities)."""
    items = [pickle.loads(b) for b in batch["item"]]
    prepared = []
    for blob in batch["meta"]:
        failed, new, recovered, modalities = pickle.loads(blob)
        prepared.append(Prepared(dict.fromkeys(modalities, True), failed, new, recovered))
    return items, prepared


def points_of(batch: Batch, rows: Sequence[int], items: Sequence[CatalogueItem],
              prepared: Sequence[Prepared], fuser: Fuser) -> list[Point]:
    """The points of ``rows`` of an encoded batch, fused."""
    if not rows:
        return []
    blocks, present = {}, {}
    for modality in fuser.modalities:
        mask = batch[f"has_{modality}"][list(rows)] if f"has_{modality}" in batch else None
        if mask is not None and mask.any():
            blocks[modality] = batch[f"vec_{modality}"][list(rows)]
            present[modality] = mask
    good = [(items[i], prepared[i].inputs) for i in rows]
    return assemble_points(fuser, good, blocks, present)  # type: ignore[arg-type]


class WriteActor:
    """Upserts to a Qdrant server from the cluster: the rows with something to embed and
    nothing for the driver to remember first (no new or recovered media failure: those the
    driver writes after recording them, so that a kill never loses a failure)."""

    def __init__(self, store_config: Any, schema: Any, fuser: Fuser) -> None:
        from mosaicrec.indexing.stores import open_store

        self.store = open_store(store_config, schema, create=False)
        self.fuser = fuser

    def __call__(self, batch: Batch) -> Batch:
        items, prepared = decode_rows(batch)
        mine = [i for i, p in enumerate(prepared) if p.inputs and not (p.new or p.recovered)]
        points = points_of(batch, mine, items, prepared, self.fuser)
        if points:
            self.store.upsert(points)
        written = np.zeros(len(items), dtype=bool)
        written[mine] = True
        batch["written"] = written
        return batch


def _objects(values: Any) -> np.ndarray:
    out = list(values)
    array = np.empty(len(out), dtype=object)
    array[:] = out
    return array
