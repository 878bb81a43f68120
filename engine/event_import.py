"""Bulk import of an interaction log (CSV, TSV, JSONL, Parquet, MovieLens ``u.data``).

It reads like a catalogue: a typed column mapping, bad rows quarantined with their row number,
the field at fault and why, a misspelt column refused before anything is written. Files are
streamed in chunks, so memory follows the chunk size, not the file. The store keys events, so
re-running an import (or resuming one that died) never doubles an event.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice, repeat
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.engine.events import EventStore
from mosaicrec.engine.user_model import INTERACTION_TYPES, Interaction, InteractionType
from mosaicrec.errors import CatalogueError, MosaicError, RequestError
from mosaicrec.indexing.catalogue import Rejected

__all__ = ["EventImportReport", "EventMapping", "RejectedEvent", "import_events", "read_events"]

MOVIELENS_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]  # u.data: no header
_OPTIONAL = ("type", "rating", "event_id", "context")
Chunk = tuple[int, dict[str, list[Any]], dict[int, str]]  # rows, column -> values, bad lines
Batch = tuple[list[Interaction], list[str | None], list["RejectedEvent"]]


class EventMapping(StrictModel):
    """Which columns of a log feed which event field (``None`` = not in the file). An optional
    column left at its default may be absent; one you name must exist."""

    model_config = ConfigDict(extra="forbid")

    user: str = "user_id"
    item: str = "item_id"
    type: str | None = "type"
    rating: str | None = Field("rating", description="the rating / event value column")
    timestamp: str = Field("timestamp", description="unix seconds or ISO-8601 strings")
    event_id: str | None = Field(None, description="a caller key: re-sent ids are ignored")
    context: str | None = None
    default_type: InteractionType = Field("rating", description="when there is no type column")
    header: bool = Field(True, description="False: CSV/TSV without a header row")
    names: list[str] | None = Field(
        None, description="column names in file order when header=False (default: the "
                          "MovieLens u.data layout user_id, item_id, rating, timestamp)")


@dataclass
class RejectedEvent(Rejected):
    """A row that is not a valid event: ``id`` is "user/item" where known."""

    field: str = ""

    def to_json(self) -> str:
        return json.dumps({"row": self.row, "id": self.id, "field": self.field,
                           "reason": self.reason})


@dataclass
class EventImportReport:
    rows_read: int = 0
    written: int = 0
    duplicates: int = 0  # valid rows whose event was already stored (or repeated in the file)
    quarantined: int = 0
    seconds: float = 0.0
    quarantine_path: str | None = None
    reasons: list[RejectedEvent] = field(default_factory=list)  # the first 100


def read_events(
    path: str | Path, mapping: EventMapping | None = None, *, chunk_size: int = 10_000
) -> Iterator[Batch]:
    """Check the file and its columns now (``CatalogueError``), then stream it: each chunk
    gives its valid events, their event ids (``None`` = natural key) and its bad rows."""
    mapping = mapping or EventMapping()
    if chunk_size < 1:
        raise RequestError(f"chunk_size must be >= 1, got {chunk_size}")
    path = Path(path)
    if not path.is_file():
        raise CatalogueError(f"event log not found: {path}")
    try:
        columns, open_chunks = _open(path, mapping, chunk_size)
    except MosaicError:
        raise
    except Exception as err:
        raise CatalogueError(f"cannot read event log {path}: {err}") from None
    roles = _resolve(mapping, columns, path)
    chunks = open_chunks(sorted({c for c in roles.values() if c}))
    return _batches(path, chunks, roles, mapping)


def import_events(
    store: EventStore, path: str | Path, mapping: EventMapping | None = None, *,
    quarantine_path: str | Path | None = None, chunk_size: int = 10_000, progress: bool = False,
) -> EventImportReport:
    """Stream a log into the store, one transaction per chunk. Safe to re-run: stored events
    are skipped. The quarantine file is rewritten each run (one JSON line per bad row)."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    batches = read_events(path, mapping, chunk_size=chunk_size)  # raises before any write
    report = EventImportReport(quarantine_path=str(quarantine_path) if quarantine_path else None)
    with ExitStack() as stack:
        out = None
        if quarantine_path is not None:
            Path(quarantine_path).parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(Path(quarantine_path).open("w", encoding="utf-8"))
        bar = stack.enter_context(
            tqdm(unit="row", desc=f"importing {Path(path).name}", disable=not progress))
        for events, ids, rejected in batches:
            written = store.append(events, event_ids=ids) if events else 0
            report.rows_read += len(events) + len(rejected)
            report.written += written
            report.duplicates += len(events) - written
            report.quarantined += len(rejected)
            report.reasons.extend(rejected[: max(0, 100 - len(report.reasons))])
            if out is not None:
                out.writelines(r.to_json() + "\n" for r in rejected)
                out.flush()
            bar.update(len(events) + len(rejected))
    report.seconds = time.perf_counter() - start
    return report


# -- reading ----------------------------------------------------------------------------------
Opener = Callable[[list[str]], Iterator[Chunk]]


def _open(path: Path, mapping: EventMapping, size: int) -> tuple[list[str], Opener]:
    """The file's column names and a function streaming the chosen columns in chunks."""
    name = path.name.lower()
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")):
        return _open_jsonl(path, size)
    if name.endswith(".parquet"):
        return _open_parquet(path, size)
    if name == "u.data" or name.endswith((".tsv", ".tab", ".tsv.gz", ".tab.gz")):
        return _open_csv(path, mapping, size, "\t", header=mapping.header and name != "u.data")
    if name.endswith((".csv", ".csv.gz")):
        return _open_csv(path, mapping, size, ",", header=mapping.header)
    raise CatalogueError(f"unknown event log format {path.name!r}: use .csv, .tsv, .jsonl, "
                         ".parquet or a MovieLens u.data file")


def _open_csv(path: Path, mapping: EventMapping, size: int, sep: str, *, header: bool
              ) -> tuple[list[str], Opener]:
    import pandas as pd

    options: dict[str, Any] = dict(sep=sep, dtype=str, keep_default_na=False, index_col=False)
    if mapping.names or not header:  # names replace the header row, or stand for a missing one
        options.update(header=0 if header else None, names=mapping.names or MOVIELENS_COLUMNS)
    columns = [str(c) for c in pd.read_csv(path, nrows=0, **options).columns]

    def chunks(needed: list[str]) -> Iterator[Chunk]:
        for frame in pd.read_csv(path, chunksize=size, usecols=needed, **options):
            yield len(frame), {c: frame[c].tolist() for c in needed}, {}

    return columns, chunks


def _open_jsonl(path: Path, size: int) -> tuple[list[str], Opener]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    lines: Iterator[str] = (ln for ln in opener(path, "rt", encoding="utf-8") if ln.strip())
    first = list(islice(lines, size))  # the union of its keys stands for the header
    parsed = [_json_object(line) for line in first]
    columns = list(dict.fromkeys(k for rec in parsed if isinstance(rec, dict) for k in rec))

    def chunks(needed: list[str]) -> Iterator[Chunk]:
        records = parsed
        while records:
            bad = {i: rec for i, rec in enumerate(records) if isinstance(rec, str)}
            cols = {c: [None if isinstance(r, str) else r.get(c) for r in records]
                    for c in needed}
            yield len(records), cols, bad
            records = [_json_object(line) for line in islice(lines, size)]

    return columns, chunks


def _json_object(line: str) -> dict[str, Any] | str:
    """The record, or the reason it is not one."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        return f"not valid JSON: {err}"
    return record if isinstance(record, dict) else "not a JSON object"


def _open_parquet(path: Path, size: int) -> tuple[list[str], Opener]:
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)

    def chunks(needed: list[str]) -> Iterator[Chunk]:
        for batch in source.iter_batches(batch_size=size, columns=needed):
            yield batch.num_rows, batch.to_pydict(), {}

    return list(source.schema_arrow.names), chunks


def _resolve(mapping: EventMapping, columns: list[str], path: Path) -> dict[str, str | None]:
    """Field -> column in this file; a required or explicitly named column must exist."""
    roles: dict[str, str | None] = {r: getattr(mapping, r) for r in ("user", "item", "timestamp")}
    for role in _OPTIONAL:
        col = getattr(mapping, role)
        roles[role] = col if col in columns or role in mapping.model_fields_set else None
    missing = [f"{col!r} ({role})" for role, col in roles.items() if col and col not in columns]
    if missing:
        raise CatalogueError(f"event log {path} lacks mapped columns {', '.join(missing)}; "
                             f"its columns are {columns}")
    if roles["type"] is None and mapping.default_type == "rating" and roles["rating"] is None:
        raise CatalogueError(f"event log {path} has neither a type nor a rating column among "
                             f"{columns}: map one, or set default_type")
    return roles


# -- validation -------------------------------------------------------------------------------
def _batches(path: Path, chunks: Iterator[Chunk], roles: dict[str, str | None],
             mapping: EventMapping) -> Iterator[Batch]:
    row = 0
    while True:
        try:
            chunk = next(chunks, None)
        except Exception as err:  # a parser error part-way: what came before is stored
            raise CatalogueError(f"cannot read event log {path} after row {row}: {err}") from None
        if chunk is None:
            return
        yield _convert(chunk, roles, mapping, row + 1)
        row += chunk[0]


def _convert(chunk: Chunk, roles: dict[str, str | None], mapping: EventMapping,
             first_row: int) -> Batch:
    _, data, bad_lines = chunk
    events: list[Interaction] = []
    ids: list[str | None] = []
    rejected: list[RejectedEvent] = []
    cols = [data[c] if (c := roles[r]) else repeat(None)
            for r in ("user", "item", "type", "timestamp", "rating", "event_id", "context")]
    for i, (u, it, ty, ts, val, eid, ctx) in enumerate(zip(*cols, strict=False)):
        user, item = _text(u), _text(it)
        key = f"{user or '?'}/{item or '?'}" if user or item else None
        try:
            if i in bad_lines:
                raise _Bad("line", bad_lines[i])
            if user is None or item is None:
                which = "user" if user is None else "item"
                raise _Bad(which, f"missing {which} id (column {roles[which]!r})")
            kind = (_text(ty) or "").lower() if roles["type"] else mapping.default_type
            if kind not in INTERACTION_TYPES:
                raise _Bad("type", f"unknown event type {kind!r}; valid types: "
                                   f"{', '.join(INTERACTION_TYPES)}" if kind else "missing type")
            value = _number(val, "rating")
            if kind == "rating" and value is None:
                raise _Bad("rating", f"a rating needs a value (column {roles['rating']!r})")
            stamp = _timestamp(ts)
            event = Interaction(user, item, kind, stamp, value, _text(ctx))  # type: ignore[arg-type]
        except _Bad as bad:
            rejected.append(RejectedEvent(first_row + i, key, bad.args[1], bad.args[0]))
        except RequestError as err:
            rejected.append(RejectedEvent(first_row + i, key, str(err), "event"))
        else:
            events.append(event)
            ids.append(_text(eid))
    return events, ids, rejected


class _Bad(Exception):
    """A bad row: ``args`` are (field, reason)."""


def _text(value: Any) -> str | None:
    """An id or label as text; blank and NaN are None, 7.0 (a float column) is "7"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip() or None


def _number(value: Any, name: str) -> float | None:
    """None when blank; not a number, NaN or infinity is a bad row."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise _Bad(name, f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise _Bad(name, f"{value!r} is not a finite number")
    return number


def _timestamp(value: Any) -> float:
    """Unix seconds (number or numeric text), ISO-8601 text or a datetime; naive = UTC."""
    if isinstance(value, datetime):  # includes pandas.Timestamp
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, str) and value.strip() and not _is_number(value):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
        except ValueError:
            raise _Bad("timestamp", f"{text!r} is neither unix seconds nor ISO-8601") from None
        return _timestamp(parsed)
    number = _number(value, "timestamp")
    if number is None:
        raise _Bad("timestamp", "missing timestamp")
    return number


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
