"""Which local files a collection may hand out: its items' media, and nothing else.

An item's payload names its image and audio relative to a *media root* (the catalogue's folder
when it was indexed, the indexer's extra media roots, the configured ``media_roots``, and the
collection's upload folder). :func:`media_file` looks the item up through the service, takes
the payload's value and resolves it against those roots with
:class:`~mosaicrec.indexing.media_paths.MediaRoots`: a value that leads outside every root
(``../../etc/passwd``, an absolute path elsewhere, a symlink out of the folder) is refused, so
only files the collection references, inside its folders, are ever read.

The roots a catalogue was indexed from are recorded beside the collection
(``<collection>.media-roots.json``) by :func:`record_catalogue`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mosaicrec.errors import NotFoundError, PermissionDeniedError
from mosaicrec.indexing.media_paths import MediaRoots

if TYPE_CHECKING:
    from mosaicrec.serving.auth import Principal
    from mosaicrec.serving.collection import CollectionHandle
    from mosaicrec.serving.service import RecommendationService

__all__ = ["Medium", "media_file", "media_roots", "record_catalogue"]

Medium = Literal["image", "audio"]


def _record_path(h: CollectionHandle) -> Path:
    return h.media_dir.with_name(f"{h.name}.media-roots.json")


def _recorded(h: CollectionHandle) -> list[Path]:
    try:
        return [Path(p) for p in json.loads(_record_path(h).read_text())["roots"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def record_catalogue(h: CollectionHandle, catalogue: Path,
                     extra: Sequence[str | Path] = ()) -> None:
    """Remember the folders a catalogue's media were read from (its own folder first)."""
    roots = [str(Path(p).expanduser().resolve())
             for p in (Path(catalogue).resolve().parent, *extra, *_recorded(h))]
    path = _record_path(h)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"roots": list(dict.fromkeys(roots))}, indent=2))
    os.replace(tmp, path)


def media_roots(h: CollectionHandle) -> MediaRoots:
    """The folders ``h``'s media may be read from, in the order payload paths are tried."""
    return MediaRoots([*_recorded(h), *h.settings.media_roots, h.media_dir])


def media_file(service: RecommendationService, who: Principal, collection: str,
               item_id: str, kind: Medium) -> Path:
    """The local file holding ``item_id``'s ``kind``; ``NotFoundError`` when the item has none,
    ``PermissionDeniedError`` when its payload points outside the collection's media roots."""
    item = service.item(who, collection, item_id)  # checks the scope and the tenant
    value = item.payload.get(kind)
    if not isinstance(value, str) or not value.strip():
        raise NotFoundError(f"item {item_id!r} has no {kind}")
    roots = media_roots(service.collection(who, collection, "read"))
    try:
        ref = roots.resolve(value)
    except ValueError:
        raise PermissionDeniedError(f"the {kind} of item {item_id!r} lies outside the "
                                    "collection's media folders; it is not served") from None
    if ref.remote:
        raise NotFoundError(f"the {kind} of item {item_id!r} is a URL; only local media are "
                            "served")
    path = Path(ref.source)
    if not path.is_file():
        raise NotFoundError(f"the {kind} file of item {item_id!r} is missing")
    return path
