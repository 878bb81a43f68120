"""The Ray engine's settings, its session and how it sizes the encoder actor pools.

``IndexerConfig(engine="ray")`` runs bulk indexing on Ray Data (``mosaicrec[distributed]``):
media are fetched and decoded in parallel tasks, each encoder runs in its own actor pool (one GPU
per actor when the cluster has GPUs, CPU actors otherwise) and the driver keeps everything that
must happen once: catalogue validation, the skip of unchanged rows, the quarantine, the memory
of failed media, the writes to an embedded store, prune and the index build. The pipeline is in
:mod:`mosaicrec.indexing.ray_indexer`; this module imports no Ray until a run needs it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.errors import MissingDependencyError

__all__ = ["ActorPool", "RayEngineConfig", "plan_pools", "ray_session", "require_ray"]

# Relative cost of one item per modality on the same hardware (MiniLM on a catalogue text vs
# ViT-B-32 on a 224 px image vs CLAP on a 10 s clip; docs/performance-facts.md): how the CPU
# actors of a cluster are shared out between the encoders.
COST = {"text": 1.0, "image": 5.0, "audio": 6.0}


class RayEngineConfig(StrictModel):
    """How the Ray engine uses a cluster. Every ``None`` is planned from what the cluster has."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        default=None, description="Ray cluster to join ('auto', 'HOST:6379', 'ray://HOST:10001'"
        "); None: the Ray this process already joined, else a local one started for the run")
    num_cpus: int | None = Field(default=None, ge=1, description="CPUs of a local Ray")
    gpus_per_actor: float | None = Field(
        default=None, ge=0, description="None: 1 when the cluster has GPUs (a share of one when "
        "it has fewer GPUs than encoders), else CPU actors; 0: CPU actors even where there are "
        "GPUs; 0.5: two actors share a GPU")
    actors: dict[str, int] = Field(
        default_factory=dict, description="actors per encoder (modality -> count); default: "
        "the GPUs (each pool may grow to all of them), or the CPUs shared by cost")
    cpus_per_actor: float | None = Field(default=None, gt=0)
    gpu_batch_size: int = Field(default=256, ge=1, description="items per forward on a GPU")
    decode_cpus: float = Field(default=0.25, gt=0, description="CPU per decoding task")
    block_rows: int = Field(
        default=128, ge=1, description="items per block sent to Ray: the unit the driver "
        "receives (progress, writes to an embedded store) and what a killed run redoes")
    writers: int | None = Field(
        default=None, ge=0, description="actors upserting to a Qdrant server in parallel; None: "
        "4 with a server, 0 otherwise (the driver writes: an embedded store has one writer)")


def require_ray() -> Any:
    """``ray`` with Ray Data, or ``MissingDependencyError`` naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise MissingDependencyError(
            f"the Ray engine (--engine ray) needs Ray Data, which is not installed ({err}): "
            "pip install 'mosaicrec[distributed]' (ray[data]>=2.40), on every node of the "
            "cluster") from None
    return ray


@contextlib.contextmanager
def ray_session(config: RayEngineConfig) -> Iterator[Any]:
    """Ray, joined for the run: the session this process already has, the cluster at
    ``address``, or a local Ray started here (and shut down after)."""
    ray = require_ray()
    started = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.WARNING, "configure_logging": True}
        if config.address:
            ray.init(address=config.address, **options)
        else:
            ray.init(num_cpus=config.num_cpus or os.cpu_count(), **options)
        started = True
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the indexer draws its own bar
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


@dataclass(frozen=True)
class ActorPool:
    """One encoder's actors: how many (``min_size``..``max_size``), what each holds, and the
    items it encodes per call."""

    min_size: int
    max_size: int
    num_cpus: float
    num_gpus: float
    batch_size: int
    threads: int  # torch threads per actor


def plan_pools(
    config: RayEngineConfig, resources: dict[str, float], modalities: Sequence[str],
    batch_size: int, *, force_cpu: bool = False,
) -> dict[str, ActorPool]:
    """Actor pools per encoder for a cluster with ``resources`` (``ray.cluster_resources()``).

    GPUs: one actor per GPU (``gpus_per_actor``; a share of one when there are fewer GPUs than
    encoders, so that every pool starts), each pool free to grow to every GPU (Ray Data scales
    the pools by their backlog), batches of ``gpu_batch_size``. CPUs: one single-threaded
    actor per core, shared between the encoders by :data:`COST` (at least one each), their
    logical CPUs scaled to what the decoding tasks leave; batches of ``batch_size``.
    """
    gpus = 0.0 if force_cpu else float(resources.get("GPU", 0))
    per_gpu = config.gpus_per_actor
    if per_gpu is None:  # every pool must get its first actor: fewer GPUs than pools share
        per_gpu = min(1.0, gpus / max(1, len(modalities)))
    pools: dict[str, ActorPool] = {}
    if gpus > 0 and per_gpu > 0:
        most = max(1, int(gpus // per_gpu))
        for m in modalities:
            n = config.actors.get(m)
            pools[m] = ActorPool(n or 1, n or most, config.cpus_per_actor or 1.0, per_gpu,
                                 config.gpu_batch_size, max(1, int(config.cpus_per_actor or 1)))
        return pools
    cpus = float(resources.get("CPU", 1))
    free = max(cpus - config.decode_cpus, 0.5)
    weight = sum(COST.get(m, 1.0) for m in modalities)
    # one single-threaded actor per core, shared by cost; a cheap tower's actor mostly waits,
    # so its core goes to the others (the actors' logical CPUs below still fit the cluster)
    counts = {m: config.actors.get(m) or max(1, round(cpus * COST.get(m, 1.0) / weight))
              for m in modalities}
    each = config.cpus_per_actor or min(1.0, free / sum(counts.values()))
    for m in modalities:
        pools[m] = ActorPool(counts[m], counts[m], each, 0.0, batch_size, max(1, int(each)))
    return pools
