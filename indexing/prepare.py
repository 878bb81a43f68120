"""CPU-side preparation of items for the bulk indexer: fetch and decode each modality on its own,
so that a bad medium costs that medium, not the item. Runs in worker threads; touches no store.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mosaicrec.encoders.base import Modality
from mosaicrec.encoders.fusion import Fuser
from mosaicrec.encoders.profiles import EncoderSet
from mosaicrec.errors import InputError
from mosaicrec.indexing.catalogue import CatalogueItem
from mosaicrec.indexing.fetch import Fetcher, resolve_media
from mosaicrec.indexing.quarantine import FailedMedia
from mosaicrec.indexing.stores.base import ID_FIELD, Point

__all__ = ["HASH_FIELD", "Prepared", "assemble_points", "build_points", "encode_blocks",
           "prepare_item", "prepared_batches"]

HASH_FIELD = "content_hash"


@dataclass
class Prepared:
    """What the encoders need per modality, and each modality that failed with its reason
    (``new``: failed in this run, so it is to be remembered)."""

    inputs: dict[Modality, Any] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    new: set[str] = field(default_factory=set)
    recovered: set[str] = field(default_factory=set)  # remembered as failed, fine this time


def prepare_item(
    item: CatalogueItem, encoders: EncoderSet, fetcher: Fetcher, memory: FailedMedia
) -> Prepared:
    """Every modality the profile embeds is prepared on its own; a failure is recorded (from
    the failed-media memory when it failed before, so it is neither fetched nor decoded)."""
    out = Prepared(failed=dict(item.media_errors))
    sources = {"text": item.text, "image": item.image, "audio": item.audio}
    for modality, source in sources.items():
        if source is None or modality not in encoders.items:
            continue
        key = item.media_keys.get(modality)
        remembered = memory.reason(key) if key else None
        if remembered is not None:
            out.failed[modality] = remembered
            continue
        try:
            data = source if modality == "text" else resolve_media(source, fetcher, item.id)
            out.inputs[modality] = encoders.items[modality].prepare(data, item.id)
        except InputError as err:
            out.failed[modality] = err.reason
            out.new.add(modality)
        except Exception as err:  # a decoder bug must not sink the run
            out.failed[modality] = f"unexpected {type(err).__name__}: {err}"
            out.new.add(modality)
        else:
            if key and memory.was_failed(key):
                out.recovered.add(modality)
    return out


def prepared_batches(
    items: Iterable[CatalogueItem],
    pool: ThreadPoolExecutor,
    work: Any,
    batch_size: int,
    ahead: int,
) -> Iterator[tuple[list[CatalogueItem], list[Prepared]]]:
    """Batches of ``items`` with ``work(item)`` done in the pool, ``ahead`` batches in flight
    while the caller encodes the current one; pulls ``items`` lazily (a stream)."""
    pending: deque[tuple[list[CatalogueItem], list[Future[Prepared]]]] = deque()
    batch: list[CatalogueItem] = []

    def submit(group: list[CatalogueItem]) -> None:
        pending.append((group, [pool.submit(work, it) for it in group]))

    for item in items:
        batch.append(item)
        if len(batch) == batch_size:
            submit(batch)
            batch = []
            if len(pending) > ahead:
                done, futures = pending.popleft()
                yield done, [f.result() for f in futures]
    if batch:
        submit(batch)
    while pending:
        done, futures = pending.popleft()
        yield done, [f.result() for f in futures]


def build_points(
    encoders: EncoderSet, good: list[tuple[CatalogueItem, dict[Modality, Any]]]
) -> list[Point]:
    """Encode each modality in one batch, fuse, and make the points with their payload."""
    blocks, present = encode_blocks(encoders, good)
    return assemble_points(encoders.fuser, good, blocks, present)


def encode_blocks(
    encoders: EncoderSet, good: list[tuple[CatalogueItem, dict[Modality, Any]]]
) -> tuple[dict[Modality, np.ndarray], dict[Modality, np.ndarray]]:
    """One ``(n, dim)`` block per modality some item has (zero rows where it has none) and
    the mask of the items that have it."""
    n = len(good)
    blocks: dict[Modality, np.ndarray] = {}
    present: dict[Modality, np.ndarray] = {}
    for modality, encoder in encoders.items.items():
        rows = [i for i, (_, prep) in enumerate(good) if modality in prep]
        if not rows:
            continue
        block = np.zeros((n, encoder.dim), dtype=np.float32)
        block[rows] = encoder.encode_prepared([good[i][1][modality] for i in rows])
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        blocks[modality], present[modality] = block, mask
    return blocks, present


def assemble_points(
    fuser: Fuser, good: Sequence[tuple[CatalogueItem, Collection[Modality]]],
    blocks: dict[Modality, np.ndarray], present: dict[Modality, np.ndarray],
) -> list[Point]:
    """Fuse the encoded blocks and make the points with their payload; ``good[i][1]`` holds
    the modalities item ``i`` was embedded in (both engines build their points here)."""
    # missing or failed modalities: the fused vector is renormalised over what is present
    fused = fuser.fuse_batch(blocks, present, keys=[it.id for it, _ in good])
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
            ("image", item.shown.get("image", item.image)),
            ("audio", item.shown.get("audio", item.audio)),
        ):
            if value is not None:
                payload.setdefault(key, value)
        points.append(Point(item.id, vectors, payload))
    return points
