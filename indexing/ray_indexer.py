"""Bulk indexing on Ray Data: the :class:`RayIndexer` driver.

It is the single-process :class:`~mosaicrec.indexing.indexer.BulkIndexer` with another embed
stage. Everything that must happen once stays in the driver and is the same code: the catalogue
is read and validated there (ids, payloads, content hashes, duplicates, quarantine), rows whose
stored hash matches are skipped before anything is decoded, media failures are remembered before
their item is written, and prune and the index build follow the load. What is costly runs on the
cluster:

1. the rows to embed are sent to the object store in blocks (with what the failed-media memory
   says about their media), so workers on other machines read them as well;
2. Ray Data tasks fetch and decode them (:func:`~mosaicrec.indexing.ray_stages.prepare_batch`);
3. one actor pool per encoder embeds its modality (a GPU per actor when the cluster has GPUs);
4. with a Qdrant server, writer actors upsert in parallel; with an embedded store (one writer)
   or qdrant-client's local mode, the driver fuses and upserts each batch as it arrives.

A run killed at any point resumes like the single-process one: what was written carries its
content hash, and whatever was in flight is embedded again by the next run.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

from mosaicrec.encoders.profiles import EncoderSet
from mosaicrec.indexing.distributed import plan_pools, ray_session
from mosaicrec.indexing.indexer import BulkIndexer
from mosaicrec.indexing.records import CatalogueItem
from mosaicrec.indexing.run_config import IndexerConfig, RunState
from mosaicrec.indexing.stores.base import Point, VectorStore

__all__ = ["RayIndexer"]


class RayIndexer(BulkIndexer):
    """Indexes with Ray Data (see the module); ``store_config`` lets writer actors open a
    Qdrant server; ``device="cpu"`` keeps the encoders on CPU actors."""

    def __init__(
        self, encoders: EncoderSet, store: VectorStore, config: IndexerConfig | None = None, *,
        on_upsert: Callable[[list[str]], None] | None = None, store_config: Any = None,
        device: str | None = None,
    ) -> None:
        super().__init__(encoders, store, config or IndexerConfig(engine="ray"),
                         on_upsert=on_upsert)
        self.store_config = store_config
        self.device = device
        self.plan: dict[str, Any] = {}  # the pools and writers of the last run, for reports

    def _embed(self, todo: Iterator[CatalogueItem], run: RunState) -> None:
        first = next(todo, None)
        if first is None:  # nothing new or changed: no cluster needed
            return
        with ray_session(self.config.ray) as ray:
            refs, modalities = self._ship(ray, itertools.chain([first], todo), run)
            dataset = self._pipeline(ray, refs, modalities)
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                self._receive(batch, run)

    # -- stages -------------------------------------------------------------------------------
    def _ship(self, ray: Any, todo: Iterator[CatalogueItem], run: RunState
              ) -> tuple[list[Any], list[str]]:
        """Blocks of the rows to embed, in the object store (the whole selection is made
        before the pipeline starts: Ray Data plans over a known input), and the modalities
        they have (an encoder no row needs gets no actors)."""
        from mosaicrec.indexing.ray_stages import SOURCES, memo_of, ship_block

        size, modalities = self.config.ray.block_rows, set(self.encoders.items)
        refs: list[Any] = []
        present: set[str] = set()
        while block := list(itertools.islice(todo, size)):
            memos = [memo_of(item, modalities, run.memory) for item in block]
            present |= {m for item in block for m in SOURCES if getattr(item, m) is not None}
            refs.append(ray.put(ship_block(block, memos)))
        return refs, [m for m in self.encoders.items if m in present]

    def _pipeline(self, ray: Any, refs: list[Any], modalities: list[str]) -> Any:
        from mosaicrec.indexing.ray_stages import (
            EncodeActor,
            WriteActor,
            prepare_batch,
            preparers,
        )

        cfg, rcfg = self.config, self.config.ray
        pools = plan_pools(rcfg, ray.cluster_resources(), modalities, cfg.batch_size,
                           force_cpu=self.device == "cpu")
        dataset = ray.data.from_arrow_refs(refs).map_batches(
            prepare_batch, batch_size=cfg.batch_size,
            batch_format="numpy", num_cpus=rcfg.decode_cpus,
            fn_kwargs={"encoders": preparers(self.encoders), "fetch": cfg.fetch,
                       "started": time.time(), "workers": cfg.decode_workers})
        for modality, pool in pools.items():
            device = "cuda" if pool.num_gpus > 0 else "cpu"
            dataset = dataset.map_batches(
                EncodeActor, batch_size=pool.batch_size, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(min_size=pool.min_size,
                                                   max_size=pool.max_size),
                num_cpus=pool.num_cpus, num_gpus=pool.num_gpus or None,
                fn_constructor_args=(self.encoders.specs[modality], modality, device,
                                     pool.batch_size, pool.threads))
        writers = self._writers()
        if writers:
            dataset = dataset.map_batches(
                WriteActor, batch_size=cfg.batch_size, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=writers), num_cpus=0.1,
                fn_constructor_args=(self.store_config, self.store.schema, self.encoders.fuser))
        self.plan = {"pools": pools, "writers": writers, "blocks": len(refs),
                     "cluster": ray.cluster_resources()}
        return dataset

    def _writers(self) -> int:
        """Writer actors: only for a Qdrant server (Edge and local mode have one writer)."""
        server = getattr(self.store_config, "url", None) is not None
        wanted = self.config.ray.writers
        if not server:
            return 0
        return 4 if wanted is None else wanted

    def _receive(self, batch: dict[str, Any], run: RunState) -> None:
        """Account for a batch the cluster embedded: failures remembered and quarantined first,
        then the points the writers have not written are fused and written here."""
        from mosaicrec.indexing.ray_stages import decode_rows, points_of

        items, prepared = decode_rows(batch)
        good = self._account(items, prepared, run)
        written = batch.get("written")
        mine = [i for i in good if written is None or not written[i]]
        theirs = [i for i in good if written is not None and written[i]]
        self._upsert(points_of(batch, mine, items, prepared, self.encoders.fuser), run.report)
        # payload fields of writers' points: index_catalogue noted the mapping's and the
        # indexer's fields before the run, and a point has no others
        self._upsert([Point(items[i].id, {}) for i in theirs], run.report, written=True)
        run.progress.update(len(items))
