"""The bulk indexer's settings (:class:`IndexerConfig`, engine choice included), its report, and
the state one run collects (:class:`RunState`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.indexing.distributed import RayEngineConfig
from mosaicrec.indexing.fetch import FetchConfig, Fetcher
from mosaicrec.indexing.quarantine import FailedMedia, Quarantine
from mosaicrec.indexing.records import Rejected

__all__ = ["IndexReport", "IndexerConfig", "RunState"]


class IndexerConfig(StrictModel):
    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(default=32, ge=1)
    decode_workers: int = Field(default=2, ge=1, description="threads decoding media")
    prefetch_batches: int = Field(default=2, ge=1, description="batches decoded ahead")
    chunk_size: int = Field(default=1000, ge=1, description="catalogue rows read at a time")
    prune: bool = Field(default=False, description="delete stored items absent from the catalogue")
    optimize: bool = Field(default=True, description="build the search index after the load")
    progress: bool = True
    quarantine_path: Path | None = None
    media_roots: list[Path] = Field(
        default_factory=list, description="folders local media may come from, besides the "
        "catalogue's own folder")
    retry_failed: bool = Field(default=False, description="fetch and decode remembered failures")
    failed_media_path: Path | None = Field(
        default=None, description="memory of failed media (default: beside the quarantine)")
    fetch: FetchConfig = Field(default_factory=FetchConfig)
    engine: Literal["local", "ray"] = Field(
        default="local", description="'local': this process (decode threads, encoders in "
        "turn); 'ray': Ray Data tasks decode, one actor pool per encoder (GPUs when present)")
    ray: RayEngineConfig = Field(default_factory=RayEngineConfig)


@dataclass
class IndexReport:
    catalogue_items: int = 0
    indexed: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0  # quarantine records (bad rows and failed media)
    degraded: int = 0  # indexed without one of their media (the quarantine says which)
    seconds: float = 0.0
    quarantine_path: str | None = None
    reasons: list[Rejected] = field(default_factory=list)
    optimized: bool = False  # the search index was (re)built by this run
    search_index: str = "unknown"

    @property
    def items_per_s(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0


@dataclass
class RunState:
    """What one run collects besides the store: quarantine, failed-media memory, fetcher,
    report and progress bar."""

    quarantine: Quarantine
    memory: FailedMedia
    fetcher: Fetcher
    report: IndexReport
    progress: Any
