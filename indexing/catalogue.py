"""Catalogue loading: CSV / Parquet / JSONL through pandas, a typed column mapping, and
row-by-row validation that sends bad rows to quarantine instead of stopping the run."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.encoders.text import compose_item_text
from mosaicrec.errors import CatalogueError

__all__ = ["CatalogueItem", "ColumnMapping", "Rejected", "read_catalogue", "load_table"]

PayloadKind = Literal["keyword", "keywords", "integer", "float", "bool", "text"]


class ColumnMapping(StrictModel):
    """Which of the user's columns feed which item field (``None`` = not present)."""

    model_config = ConfigDict(extra="forbid")

    id: str = "id"
    title: str | None = "title"
    description: str | None = "description"
    tags: str | None = "tags"
    image: str | None = "image"
    audio: str | None = "audio"
    payload: dict[str, PayloadKind] = Field(
        default_factory=dict,
        description="payload column -> type; 'keywords' splits on list_separator",
    )
    list_separator: str = "|"


@dataclass
class CatalogueItem:
    """One valid catalogue row, ready to embed."""

    id: str
    text: str | None
    image: str | None  # local path or http(s) URL
    audio: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""
    row: int = -1
    title: str | None = None


@dataclass
class Rejected:
    """A row that cannot be indexed, and why."""

    row: int
    id: str | None
    reason: str

    def to_json(self) -> str:
        return json.dumps({"row": self.row, "id": self.id, "reason": self.reason})


def load_table(path: str | Path) -> Any:
    """Read a CSV, TSV, Parquet or JSONL file into a pandas DataFrame (all columns as read)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise CatalogueError(f"catalogue file not found: {path}")
    suffix = "".join(path.suffixes[-2:]).lower()
    try:
        if suffix.endswith((".jsonl", ".ndjson", ".jsonl.gz")):
            return pd.read_json(path, lines=True, dtype=False)
        if suffix.endswith(".parquet"):
            return pd.read_parquet(path)
        if suffix.endswith((".tsv", ".tsv.gz")):
            return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        if suffix.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as err:
        raise CatalogueError(f"cannot read catalogue {path}: {err}") from None
    raise CatalogueError(
        f"unknown catalogue format {path.name!r}: use .csv, .tsv, .parquet or .jsonl"
    )


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _convert(value: Any, kind: PayloadKind, sep: str) -> Any:
    if kind == "keywords":
        items = value if isinstance(value, list | tuple) else str(value).split(sep)
        return [str(v).strip() for v in items if str(v).strip()]
    if kind in ("keyword", "text"):
        return str(value).strip()
    if kind == "integer":
        number = float(value)
        if not number.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(number)
    if kind == "float":
        number = float(value)
        if math.isnan(number):
            raise ValueError("NaN")
        return number
    text = str(value).strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _media(value: Any, base: Path) -> str | None:
    if _blank(value):
        return None
    value = str(value).strip()
    if value.startswith(("http://", "https://")):
        return value
    path = Path(os.path.expanduser(value))
    return str(path if path.is_absolute() else (base / path).resolve())


def _fingerprint(item: CatalogueItem) -> str:
    """Content hash: text, payload and media identity (path + size + mtime, or the URL)."""
    media = []
    for source in (item.image, item.audio):
        if source and not source.startswith(("http://", "https://")) and os.path.exists(source):
            st = os.stat(source)
            media.append(f"{source}:{st.st_size}:{st.st_mtime_ns}")
        else:
            media.append(str(source))
    blob = json.dumps([item.text, media, item.payload], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def read_catalogue(
    path: str | Path, mapping: ColumnMapping | None = None
) -> tuple[list[CatalogueItem], list[Rejected]]:
    """Validate every row; return the good items and the rejected rows with their reasons.

    Relative media paths are resolved against the catalogue file's folder. A duplicate id keeps
    its first row and rejects the others.
    """
    mapping = mapping or ColumnMapping()
    frame = load_table(path)
    wanted = [mapping.id, *mapping.payload]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise CatalogueError(
            f"catalogue {path} lacks mapped columns {missing}; it has {list(frame.columns)}"
        )
    return validate_rows(frame.to_dict("records"), mapping, Path(path).resolve().parent)


def validate_rows(
    rows: Iterable[dict[str, Any]], mapping: ColumnMapping, base: Path
) -> tuple[list[CatalogueItem], list[Rejected]]:
    items: list[CatalogueItem] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()

    def get(row: dict[str, Any], column: str | None) -> Any:
        return None if column is None else row.get(column)

    for number, row in enumerate(rows):
        raw_id = get(row, mapping.id)
        if _blank(raw_id):
            rejected.append(Rejected(number, None, f"missing id (column {mapping.id!r})"))
            continue
        item_id = str(raw_id).strip()
        if item_id in seen:
            rejected.append(Rejected(number, item_id, "duplicate id: an earlier row has it"))
            continue
        seen.add(item_id)
        try:
            payload = {
                col: _convert(row[col], kind, mapping.list_separator)
                for col, kind in mapping.payload.items()
                if not _blank(row.get(col))
            }
        except (TypeError, ValueError) as err:
            rejected.append(Rejected(number, item_id, f"bad payload value: {err}"))
            continue
        tags = get(row, mapping.tags)
        text = compose_item_text(
            None if _blank(t := get(row, mapping.title)) else str(t),
            None if _blank(d := get(row, mapping.description)) else str(d),
            None if _blank(tags) else tags,
        )
        item = CatalogueItem(
            id=item_id,
            text=text or None,
            image=_media(get(row, mapping.image), base),
            audio=_media(get(row, mapping.audio), base),
            payload=payload,
            row=number,
            title=None if _blank(t) else str(t).strip(),
        )
        if not (item.text or item.image or item.audio):
            rejected.append(Rejected(number, item_id, "no text, image or audio"))
            continue
        item.content_hash = _fingerprint(item)
        items.append(item)
    return items, rejected
