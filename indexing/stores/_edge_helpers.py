"""Edge-only helpers of :mod:`~mosaicrec.indexing.stores.edge`: error mapping, the schema file,
condition translation. Kept apart so the store module stays readable."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mosaicrec.errors import MosaicError, StoreError
from mosaicrec.indexing.stores import _common as common
from mosaicrec.indexing.stores.base import CollectionSchema, Condition, VectorSpace

if TYPE_CHECKING:
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
    state = {common.SCHEMA_KEY: schema.model_dump(mode="json"), "acorn_fields": sorted(late)}
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


def read_state(directory: Path, config: StoreConfig) -> tuple[CollectionSchema, set[str]]:
    path = directory / SCHEMA_FILE
    if not path.is_file():
        raise StoreError(
            f"collection {config.where} has an Edge shard but no {SCHEMA_FILE}: it was not "
            "created by mosaicrec; use another collection name"
        )
    try:
        state = json.loads(path.read_text())
        schema = CollectionSchema.model_validate(state[common.SCHEMA_KEY])
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
