"""Catalogue reading: CSV / TSV / JSONL / Parquet streamed in chunks, a typed column mapping
checked against the file's header, and row-by-row validation that quarantines bad rows.

:class:`Catalogue` reads the file twice, one record at a time: a first pass checks the mapping,
counts the rows and finds duplicated ids; the second yields validated items in chunks. Memory
follows the chunk size plus 16 bytes per id (:class:`~mosaicrec.indexing.ids.CatalogueIds`),
never the whole file.

Duplicate ids: every row of an id that occurs more than once is quarantined (none of them can be
told to be the right one), and an item stored under that id earlier is left as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mosaicrec.errors import CatalogueError, RequestError
from mosaicrec.indexing.ids import CatalogueIds
from mosaicrec.indexing.media_paths import MediaRoots
from mosaicrec.indexing.readers import RawRow, RecordFile
from mosaicrec.indexing.records import (
    ROLES,
    CatalogueItem,
    ColumnMapping,
    Rejected,
    item_id_of,
    validate_row,
)

__all__ = [
    "Catalogue",
    "CatalogueItem",
    "ColumnMapping",
    "Rejected",
    "check_mapping",
    "load_mapping",
    "load_table",
    "read_catalogue",
    "validate_row",
    "validate_rows",
]


def check_mapping(mapping: ColumnMapping, columns: Sequence[str], where: object) -> None:
    """``CatalogueError`` naming every mapped column the file lacks, and listing its columns."""
    have = set(columns)
    missing = {c: role for c, role in mapping.required().items() if c not in have}
    if missing:
        named = ", ".join(f"{c!r} ({role})" for c, role in missing.items())
        raise CatalogueError(
            f"the mapping names columns that catalogue {where} does not have: {named}; its "
            f"columns are: {', '.join(map(repr, columns)) or '(none)'}"
        )


class Catalogue:
    """A catalogue file read in chunks; :meth:`scan` first, then :meth:`chunks`."""

    def __init__(
        self,
        path: str | Path,
        mapping: ColumnMapping | None = None,
        *,
        media_roots: Sequence[str | Path] = (),
        chunk_size: int = 1000,
    ) -> None:
        self.path = Path(path)
        self.mapping = mapping or ColumnMapping()
        self.file = RecordFile(self.path)
        self.roots = MediaRoots.for_catalogue(self.path.resolve().parent, media_roots)
        self.chunk_size = max(1, int(chunk_size))
        if self.file.columns is not None:
            check_mapping(self.mapping, self.file.columns, self.path)
        self.ids = CatalogueIds()  # every id of the file (good rows or not), after scan()
        self.rows = 0
        self._scanned = False

    def _records(self) -> Iterator[RawRow]:
        wanted = None
        if self.file.columns is not None:  # Parquet reads only what the mapping uses
            used = {self.mapping.id, *self.mapping.payload}
            used |= {getattr(self.mapping, r) for r in ROLES if getattr(self.mapping, r)}
            wanted = [c for c in self.file.columns if c in used]
        return self.file.records(wanted)

    def scan(self) -> Catalogue:
        """First pass: ids, duplicates and the row count; checks JSONL keys against the
        mapping. Raises ``CatalogueError`` before anything is indexed."""
        keys: dict[str, None] = {}
        for raw in self._records():
            self.rows += 1
            if raw.values is None:
                continue
            if self.file.columns is None:
                keys.update(dict.fromkeys(raw.values))
            item_id = item_id_of(raw.values.get(self.mapping.id))
            if item_id is not None:
                self.ids.add(item_id)
        self.ids.freeze()
        if self.file.columns is None and self.rows:
            check_mapping(self.mapping, list(keys), self.path)
        self._scanned = True
        return self

    def chunks(self) -> Iterator[tuple[list[CatalogueItem], list[Rejected]]]:
        """Second pass: ``(items, rejected)`` per chunk of ``chunk_size`` records."""
        if not self._scanned:
            self.scan()
        items: list[CatalogueItem] = []
        rejected: list[Rejected] = []
        for raw in self._records():
            result = validate_row(raw, self.mapping, self.roots, self.ids.duplicates)
            (rejected if isinstance(result, Rejected) else items).append(result)  # type: ignore
            if len(items) + len(rejected) >= self.chunk_size:
                yield items, rejected
                items, rejected = [], []
        if items or rejected:
            yield items, rejected


def read_catalogue(
    path: str | Path, mapping: ColumnMapping | None = None, *,
    media_roots: Sequence[str | Path] = (),
) -> tuple[list[CatalogueItem], list[Rejected]]:
    """The whole catalogue as lists (small files, tests): good items and rejected rows."""
    items: list[CatalogueItem] = []
    rejected: list[Rejected] = []
    for good, bad in Catalogue(path, mapping, media_roots=media_roots).scan().chunks():
        items += good
        rejected += bad
    return items, rejected


def validate_rows(
    rows: Iterable[dict[str, Any]], mapping: ColumnMapping, base: Path, *,
    media_roots: Sequence[str | Path] = (),
) -> tuple[list[CatalogueItem], list[Rejected]]:
    """Validate in-memory rows; media must lie under ``base`` or ``media_roots``."""
    rows = list(rows)
    seen: set[str] = set()
    duplicates: set[str] = set()
    for row in rows:
        item_id = item_id_of(row.get(mapping.id))
        if item_id is not None:
            (duplicates if item_id in seen else seen).add(item_id)
    roots = MediaRoots.for_catalogue(base, media_roots)
    items: list[CatalogueItem] = []
    rejected: list[Rejected] = []
    for number, row in enumerate(rows):
        result = validate_row(RawRow(number, None, row), mapping, roots, duplicates)
        (rejected if isinstance(result, Rejected) else items).append(result)  # type: ignore
    return items, rejected


def load_mapping(catalogue: Path, mapping_file: Path | None = None) -> ColumnMapping:
    """Explicit mapping file, else ``<catalogue stem>.mapping.json`` beside it, else defaults.
    A file that is not valid JSON, or not a valid mapping, is a one-line ``CatalogueError``."""
    candidate = mapping_file or catalogue.with_name(catalogue.name.split(".")[0] + ".mapping.json")
    if not candidate.is_file():
        if mapping_file is not None:
            raise RequestError(f"mapping file not found: {mapping_file}")
        return ColumnMapping()
    try:
        data = json.loads(candidate.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CatalogueError(f"mapping file {candidate} is not valid JSON: {err}") from None
    try:
        return ColumnMapping.model_validate(data)
    except ValueError as err:
        text = " ".join(str(err).split())
        raise CatalogueError(f"mapping file {candidate} is not a valid mapping: {text}") from None


def load_table(path: str | Path) -> Any:
    """The whole file as a pandas DataFrame (small files only; indexing streams instead)."""
    import pandas as pd

    rows = [r.values for r in RecordFile(path).records() if r.values is not None]
    return pd.DataFrame(rows)
