"""Streaming record readers for catalogue files: CSV, TSV, JSONL (optionally gzipped), Parquet.

Each reader yields :class:`RawRow` records one at a time, so memory follows one record (Parquet:
one row group), never the file. Text formats recover from damage line by line:

* CSV/TSV: a record that cannot be parsed (an unterminated quote, a stray quote, more fields than
  the header, a multi-line record whose field count is wrong, a line that is not UTF-8) is
  reported with the line it starts on, and reading resumes on the *next physical line*, so one
  broken quote costs one row, not the rest of the file.
* JSONL: a line that is not a JSON object is reported with its line and column.

Parquet cannot be resynchronised inside a damaged row group: reading stops with a
:class:`~mosaicrec.errors.CatalogueError` naming the row group and its rows.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mosaicrec.errors import CatalogueError

__all__ = ["RawRow", "RecordFile", "catalogue_format"]

# A quoted field may legitimately span lines; one spanning more than this is a runaway quote.
MAX_RECORD_LINES = 1000
_FIELD_LIMIT = 16 * 1024 * 1024  # csv's default (128 KiB) would refuse long descriptions
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what surrogateescape leaves for undecodable bytes


@dataclass
class RawRow:
    """One record: its 0-based number among the data records, the 1-based line it starts on
    (text formats), its values by column, or why it could not be read."""

    row: int
    line: int | None
    values: dict[str, Any] | None
    error: str | None = None


def catalogue_format(path: Path) -> str:
    name = path.name.lower()
    for suffix, fmt in ((".csv", "csv"), (".tsv", "tsv"), (".jsonl", "jsonl"),
                        (".ndjson", "jsonl"), (".parquet", "parquet")):
        if name.endswith(suffix) or (fmt != "parquet" and name.endswith(suffix + ".gz")):
            return fmt
    raise CatalogueError(
        f"unknown catalogue format {path.name!r}: use .csv, .tsv, .parquet or .jsonl"
    )


class RecordFile:
    """A catalogue file; ``columns`` is its header (``None`` for JSONL: keys vary by line)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise CatalogueError(f"catalogue file not found: {self.path}")
        self.format = catalogue_format(self.path)
        self.columns: list[str] | None = None
        if self.format in ("csv", "tsv"):
            with self._text() as fh:
                self.columns = _header(_Lines(fh), self._dialect(), self.path)
        elif self.format == "parquet":
            self.columns = list(self._parquet().schema_arrow.names)

    def records(self, columns: list[str] | None = None) -> Iterator[RawRow]:
        """Every record in file order; ``columns`` limits what Parquet reads."""
        if self.format == "jsonl":
            return self._jsonl()
        if self.format == "parquet":
            return self._parquet_rows(columns)
        return self._csv()

    # -- CSV / TSV --------------------------------------------------------------------------
    def _dialect(self) -> dict[str, Any]:
        return {"delimiter": "\t" if self.format == "tsv" else ",", "strict": True}

    def _text(self) -> IO[str]:
        if self.path.name.lower().endswith(".gz"):
            return gzip.open(self.path, "rt", encoding="utf-8-sig", errors="surrogateescape",
                             newline="")
        return open(self.path, encoding="utf-8-sig", errors="surrogateescape", newline="")

    def _csv(self) -> Iterator[RawRow]:
        csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
        dialect = self._dialect()
        with self._text() as fh:
            lines = _Lines(fh)
            header = _header(lines, dialect, self.path)
            width, row = len(header), 0
            reader = csv.reader(lines, **dialect)
            while True:
                lines.taken = []
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except (csv.Error, _RunawayRecord) as err:
                    yield RawRow(row, lines.first(), None, _csv_problem(err, lines))
                    row += 1
                    lines.resync()
                    reader = csv.reader(lines, **dialect)
                    continue
                if not fields:
                    continue  # a blank line
                problem = _shape_problem(fields, width, lines)
                if problem is None and any(_NOT_UTF8.search(f) for f in fields):
                    problem = "is not valid UTF-8"
                if problem is not None:
                    yield RawRow(row, lines.first(), None, f"line {lines.first()} {problem}")
                    row += 1
                    if len(lines.taken) > 1:
                        lines.resync()
                        reader = csv.reader(lines, **dialect)
                    continue
                fields += [""] * (width - len(fields))  # a short one-line row: blanks at the end
                yield RawRow(row, lines.first(), dict(zip(header, fields, strict=True)))
                row += 1

    # -- JSONL ------------------------------------------------------------------------------
    def _jsonl(self) -> Iterator[RawRow]:
        opener = gzip.open if self.path.name.lower().endswith(".gz") else open
        with opener(self.path, "rb") as fh:
            row = 0
            for number, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    value = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
                except UnicodeDecodeError:
                    error = f"line {number} is not valid UTF-8"
                except json.JSONDecodeError as err:
                    error = f"line {number}: invalid JSON at column {err.colno}: {err.msg}"
                else:
                    error = None if isinstance(value, dict) else (
                        f"line {number} is a JSON {type(value).__name__}, not an object")
                yield RawRow(row, number, value if error is None else None, error)
                row += 1

    # -- Parquet ----------------------------------------------------------------------------
    def _parquet(self) -> Any:
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(self.path)
        except Exception as err:
            raise CatalogueError(f"cannot read Parquet file {self.path} (footer or schema "
                                 f"damaged?): {err}") from None

    def _parquet_rows(self, columns: list[str] | None) -> Iterator[RawRow]:
        pf = self._parquet()
        row = 0
        for group in range(pf.num_row_groups):
            size = pf.metadata.row_group(group).num_rows
            try:
                table = pf.read_row_group(group, columns=columns)
                batches = [batch.to_pylist() for batch in table.to_batches(max_chunksize=4096)]
            except Exception as err:
                raise CatalogueError(
                    f"cannot read row group {group} (rows {row}-{row + size - 1}) of "
                    f"{self.path}: {err}; Parquet cannot skip damaged data, rewrite the file"
                ) from None
            for batch in batches:
                for values in batch:
                    yield RawRow(row, None, values)
                    row += 1


class _RunawayRecord(Exception):
    pass


class _Lines:
    """Physical lines with their numbers for ``csv.reader``; lines of a bad record are pushed
    back so that reading resumes on the line after the one the bad record started on."""

    def __init__(self, fh: IO[str]) -> None:
        self.fh = fh
        self.number = 0
        self.back: list[tuple[int, str]] = []
        self.taken: list[tuple[int, str]] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.back:
            number, text = self.back.pop()
        else:
            text = self.fh.readline()
            if not text:
                raise StopIteration
            self.number += 1
            number = self.number
        self.taken.append((number, text))
        if len(self.taken) > MAX_RECORD_LINES:
            raise _RunawayRecord
        return text

    def first(self) -> int:
        return self.taken[0][0] if self.taken else self.number

    def resync(self) -> None:
        self.back.extend(reversed(self.taken[1:]))
        self.taken = []


def _header(lines: _Lines, dialect: dict[str, Any], path: Path) -> list[str]:
    try:
        header = next(csv.reader(lines, **dialect))
    except StopIteration:
        raise CatalogueError(f"catalogue {path} is empty: no header line") from None
    except (csv.Error, _RunawayRecord) as err:
        raise CatalogueError(f"cannot read the header line of {path}: {err}") from None
    names: list[str] = []
    for name in header:  # repeated names become name.1, name.2 (as pandas does)
        unique, n = name, 0
        while unique in names:
            n += 1
            unique = f"{name}.{n}"
        names.append(unique)
    return names


def _csv_problem(err: Exception, lines: _Lines) -> str:
    where = f"line {lines.first()}"
    if isinstance(err, _RunawayRecord):
        return (f"{where}: a quoted field runs over {MAX_RECORD_LINES} lines (unterminated "
                "quote?); skipped this line")
    text = str(err)
    if "unexpected end of data" in text:
        return f"{where}: a quoted field is never closed before the end of the file"
    return f"{where}: {text}"


def _shape_problem(fields: list[str], width: int, lines: _Lines) -> str | None:
    if len(fields) > width:
        return f"has {len(fields)} fields, the header has {width}"
    if len(lines.taken) > 1 and len(fields) != width:
        return (f"starts a record of {len(lines.taken)} lines with {len(fields)} fields, the "
                f"header has {width} (unterminated quote?); skipped this line")
    return None
