"""Edge-only helpers of :mod:`~mosaicrec.indexing.stores.edge`: error mapping, the schema file,
payload index creation, condition translation. Kept apart so the store module stays readable."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mosaicrec.errors import MosaicError, StoreError
from mosaicrec.indexing.stores import _schema_ops
from mosaicrec.indexing.stores.base import CollectionSchema, Condition, VectorSpace

if TYPE_CHECKING:
    from qdrant_edge import EdgeShard

    from mosaicrec.indexing.stores import StoreConfig

SCHEMA_FILE = "mosaicrec_schema.json"
# Present while writes since the last optimize() may be unindexed: written (atomically, synced)
# before the first write after a build, removed after optimize() returns. A run killed between
# its last upsert and the build leaves it, and the next run builds even if nothing changed.
PENDING_FILE = "mosaicrec_index_pending"
EDGE_CONFIG = "edge_config.json"  # written by Edge when a shard exists in a directory
PAYLOAD_TYPES = {
    "keyword": "Keyword",
    "integer": "Integer",
    "float": "Float",
    "bool": "Bool",
    "text": "Text",
}
DISTANCES = {"cosine": "Cosine", "dot": "Dot"}
MADV_PAGEOUT = 21  # Linux >= 5.4: reclaim the pages (dirty ones are written back first)


@contextlib.contextmanager
def edge_errors(action: str) -> Iterator[None]:
    """Edge raises bare ``Exception`` with a Rust message; turn it into a ``StoreError``."""
    try:
        yield
    except MosaicError:
        raise
    except Exception as exc:
        text = str(exc)
        if "WouldBlock" in text:
            raise StoreError(
                f"cannot {action}: it is already open in another store handle (Qdrant Edge "
                "allows one open handle per directory; close the other one first)"
            ) from exc
        raise StoreError(f"cannot {action}: Qdrant Edge said: {text}") from exc


def write_state(directory: Path, schema: CollectionSchema, late: set[str]) -> None:
    state = {_schema_ops.SCHEMA_KEY: schema.model_dump(mode="json"), "acorn_fields": sorted(late)}
    tmp = directory / (SCHEMA_FILE + ".tmp")
    try:
        with open(tmp, "w") as fh:
            fh.write(json.dumps(state, indent=2))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, directory / SCHEMA_FILE)  # atomic: never a half-written schema
    except OSError as exc:
        raise StoreError(f"cannot write the schema file in {directory}: {exc}") from exc


def mark_pending(directory: Path) -> None:
    try:
        tmp = directory / (PENDING_FILE + ".tmp")
        with open(tmp, "w") as fh:
            fh.write("writes since the last optimize() may be unindexed\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, directory / PENDING_FILE)
        _sync_dir(directory)
    except OSError as exc:
        raise StoreError(f"cannot mark the search index pending in {directory}: {exc}") from exc


def clear_pending(directory: Path) -> None:
    try:
        (directory / PENDING_FILE).unlink(missing_ok=True)
        _sync_dir(directory)
    except OSError as exc:
        raise StoreError(f"cannot mark the search index built in {directory}: {exc}") from exc


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def release_file_pages(directory: Path) -> int:
    """Hand the resident pages of every file mapped from ``directory`` back to the kernel and
    return how many mappings took the advice. Edge memory-maps its segment files and a bulk load
    touches every page, so without this the process's RSS grows with the collection; the data
    stays on disk and is read again on the next touch. Linux only; elsewhere it returns 0."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    prefix = str(directory.resolve()) + os.sep
    released = 0
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)  # address perms offset dev inode path
        if len(fields) == 6 and fields[5].startswith(prefix):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            released += libc.madvise(start, end - start, MADV_PAGEOUT) == 0
    return released


def create_shard(config: StoreConfig, schema: CollectionSchema, directory: Path) -> EdgeShard:
    """A new shard in ``directory`` with the schema's vectors and the config's build settings."""
    import qdrant_edge as qe

    edge_config = qe.EdgeConfig(
        vectors={
            name: qe.EdgeVectorParams(size=space.dim, distance=distance(space))
            for name, space in schema.vectors.items()
        },
        hnsw_config=qe.HnswIndexConfig(**_schema_ops.hnsw_settings(config)),
        optimizers=qe.EdgeOptimizersConfig(
            indexing_threshold=config.indexing_threshold_kb,
            default_segment_number=config.default_segment_number,
        ),
    )
    directory.mkdir(parents=True, exist_ok=True)
    # schema first: a crash before the shard exists leaves a directory that reads as absent
    write_state(directory, schema, set())
    with edge_errors(f"create collection {config.where}"):
        return qe.EdgeShard.create(str(directory), edge_config)


def load_shard(
    config: StoreConfig, schema: CollectionSchema | None, directory: Path
) -> tuple[EdgeShard, CollectionSchema, set[str]]:
    """The shard in ``directory``, its stored schema (with the payload indexes ``schema`` adds)
    and its ACORN fields; a vector-space mismatch is refused before the shard is touched."""
    import qdrant_edge as qe

    stored, late = read_state(directory, config)
    if schema is not None and _schema_ops.merge_schema(schema, stored, config.where):
        stored = stored.model_copy(
            update={"payload_indexes": {**stored.payload_indexes, **schema.payload_indexes}}
        )
    with edge_errors(f"open collection {config.where}"):
        shard = qe.EdgeShard.load(str(directory))  # persisted build config is kept as is
    return shard, stored, late


def create_indexes(shard: EdgeShard, schema: CollectionSchema, fields: list[str]) -> None:
    """Create the schema's payload indexes on ``fields`` (the caller maps Edge's errors)."""
    import qdrant_edge as qe

    for field in fields:
        type_name = PAYLOAD_TYPES[schema.payload_indexes[field]]
        kind = getattr(qe.PayloadSchemaType, type_name)
        shard.update(qe.UpdateOperation.create_field_index(field, kind))


def read_state(directory: Path, config: StoreConfig) -> tuple[CollectionSchema, set[str]]:
    path = directory / SCHEMA_FILE
    if not path.is_file():
        raise StoreError(
            f"collection {config.where} has an Edge shard but no {SCHEMA_FILE}: it was not "
            "created by mosaicrec; use another collection name"
        )
    try:
        state = json.loads(path.read_text())
        schema = CollectionSchema.model_validate(state[_schema_ops.SCHEMA_KEY])
    except (ValueError, KeyError) as exc:
        raise StoreError(f"unreadable schema file {path}: {exc}") from exc
    return schema, set(state.get("acorn_fields", []))


def distance(space: VectorSpace) -> Any:
    import qdrant_edge as qe

    return getattr(qe.Distance, DISTANCES[space.distance])


def leaf(cond: Condition) -> Any:
    import qdrant_edge as qe

    if cond.has_vector is not None:
        return qe.HasVectorCondition(cond.has_vector)
    if cond.match is not None:
        return qe.FieldCondition(key=cond.field, match=qe.MatchValue(cond.match))
    if cond.any is not None:
        return qe.FieldCondition(key=cond.field, match=qe.MatchAny(cond.any))
    rng = qe.RangeFloat(gte=cond.gte, gt=cond.gt, lte=cond.lte, lt=cond.lt)
    return qe.FieldCondition(key=cond.field, range=rng)


def has_id_condition(pids: tuple[str, ...]) -> Any:
    import qdrant_edge as qe

    return qe.HasIdCondition(set(pids))
