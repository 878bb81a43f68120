"""Catalogue rows: the column mapping, the item a valid row becomes, the quarantine record of a
bad one, and the validation of one row (ids, payload types, text, media inside their roots,
the content hash that tells a changed row from an unchanged one)."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.encoders.text import compose_item_text
from mosaicrec.indexing.media_paths import MediaRoots
from mosaicrec.indexing.readers import RawRow

__all__ = ["CatalogueItem", "ColumnMapping", "PayloadKind", "Rejected", "validate_row"]

PayloadKind = Literal["keyword", "keywords", "integer", "float", "bool", "text"]
ROLES = ("title", "description", "tags", "image", "audio")


class ColumnMapping(StrictModel):
    """Which of the user's columns feed which item field (``None`` = not present). A text or
    media column left at its default may be absent from the file; one you name must exist."""

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

    def required(self) -> dict[str, str]:
        """column -> what it is for, for every column the file must have."""
        need = {self.id: "id"}
        for role in ROLES:
            column = getattr(self, role)
            if column is not None and role in self.model_fields_set:
                need.setdefault(column, role)
        for column in self.payload:
            need.setdefault(column, "payload")
        return need


@dataclass
class CatalogueItem:
    """One valid catalogue row, ready to embed."""

    id: str
    text: str | None
    image: str | None  # absolute path inside a media root, or an http(s) URL
    audio: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""
    row: int = -1
    title: str | None = None
    line: int | None = None
    # what the payload shows: the path relative to its media root, or the URL
    shown: dict[str, str] = field(default_factory=dict)
    # identity of each source for the failed-media memory (URL, path+size+mtime, text hash)
    media_keys: dict[str, str] = field(default_factory=dict)
    # media refused while reading (outside the roots, bad URL): modality -> reason
    media_errors: dict[str, str] = field(default_factory=dict)


@dataclass
class Rejected:
    """A quarantine record: a row that cannot be indexed, or one of its media that failed
    (``field`` names it; ``indexed`` says whether the item was indexed without it)."""

    row: int
    id: str | None
    reason: str
    field: str | None = None
    line: int | None = None
    indexed: bool = False

    def to_json(self) -> str:
        record: dict[str, Any] = {"row": self.row}
        if self.line is not None:
            record["line"] = self.line
        record.update(id=self.id, field=self.field, reason=self.reason, indexed=self.indexed)
        return json.dumps(record)


def validate_row(
    raw: RawRow, mapping: ColumnMapping, roots: MediaRoots, duplicates: Container[str]
) -> CatalogueItem | Rejected:
    """One record to an item, or the reason it is rejected."""
    number, line = raw.row, raw.line
    if raw.values is None:
        return Rejected(number, None, raw.error or "unreadable record", line=line)
    row = raw.values
    item_id = item_id_of(row.get(mapping.id))
    if item_id is None:
        return Rejected(number, None, f"missing id (column {mapping.id!r})", "id", line)
    if item_id in duplicates:
        return Rejected(number, item_id, "duplicate id: several rows of the catalogue have it, "
                        "so none is indexed and a stored item with this id is left as it is",
                        "id", line)
    try:
        payload = {
            col: _convert(row[col], kind, mapping.list_separator)
            for col, kind in mapping.payload.items()
            if not blank(row.get(col))
        }
    except (TypeError, ValueError) as err:
        return Rejected(number, item_id, f"bad payload value: {err}", "payload", line)

    def get(column: str | None) -> Any:
        value = None if column is None else row.get(column)
        return None if blank(value) else value

    title, description, tags = get(mapping.title), get(mapping.description), get(mapping.tags)
    text = compose_item_text(
        None if title is None else str(title), None if description is None else str(description),
        tags,
    )
    item = CatalogueItem(id=item_id, text=text or None, image=None, audio=None, payload=payload,
                         row=number, title=None if title is None else str(title).strip(),
                         line=line)
    identity = []
    for modality in ("image", "audio"):
        value = get(getattr(mapping, modality))
        identity.append(_attach_media(item, modality, value, roots))
    if not (item.text or item.image or item.audio or item.media_errors):
        return Rejected(number, item_id, "no text, image or audio", None, line)
    if item.text:
        item.media_keys["text"] = "text:" + _sha(item.text)
    blob = json.dumps([item.text, identity, item.payload], sort_keys=True, default=str)
    item.content_hash = _sha(blob)
    return item


def _attach_media(item: CatalogueItem, modality: str, value: Any, roots: MediaRoots) -> str:
    """Set the item's source for ``modality``; return its identity for the content hash."""
    if value is None:
        return "None"
    raw = str(value).strip()
    try:
        ref = roots.resolve(raw)
    except ValueError as err:
        item.media_errors[modality] = str(err)
        return f"refused:{raw}"
    setattr(item, modality, ref.source)
    item.shown[modality] = ref.display
    if ref.remote:
        item.media_keys[modality] = "url:" + ref.source
        return ref.source
    try:
        st = os.stat(ref.source)
    except OSError:
        item.media_keys[modality] = f"file:{ref.source}:missing"
        return ref.display
    item.media_keys[modality] = f"file:{ref.source}:{st.st_size}:{st.st_mtime_ns}"
    return f"{ref.display}:{st.st_size}:{st.st_mtime_ns}"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def item_id_of(value: Any) -> str | None:
    return None if blank(value) else str(value).strip()


def blank(value: Any) -> bool:
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
