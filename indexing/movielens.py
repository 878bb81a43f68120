"""Convert a MovieLens 100K folder (``u.item``, ``tmdb_items.csv``, ``posters/``) into a
mosaicrec catalogue: id, title, description (TMDB overview), genre tags, poster, payload.

The catalogue is self-contained: poster paths are relative to its folder, and posters from
elsewhere are linked (hard links, else copies keeping their modification time) into
``<out stem>.posters/`` beside it, because the indexer reads local media only under the
catalogue's folder (or configured media roots).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from mosaicrec.errors import CatalogueError

__all__ = ["movielens_catalogue", "MOVIELENS_MAPPING"]

GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]
MOVIELENS_MAPPING = {
    "id": "id",
    "title": "title",
    "description": "description",
    "tags": "genres",
    "image": "image",
    "audio": None,
    "payload": {"genres": "keywords", "year": "integer", "language": "keyword"},
}


def movielens_catalogue(folder: str | Path, out: str | Path) -> tuple[Path, int]:
    """Write ``out`` (CSV) and ``<out stem>.mapping.json``; return the path and item count.

    ``u.item`` is the source of truth for ids, titles and genres; TMDB adds overviews and
    languages where it has them (its duplicated ids are collapsed to the first row).
    """
    import pandas as pd

    folder, out = Path(folder), Path(out)
    u_item = folder / "u.item"
    if not u_item.is_file():
        raise CatalogueError(f"{u_item} not found: is {folder} a MovieLens 100K folder?")
    items = pd.read_csv(
        u_item,
        sep="|",
        encoding="latin-1",
        header=None,
        dtype=str,
        keep_default_na=False,
        names=["id", "title", "release", "video", "imdb", *GENRES],
    )
    tmdb_path = folder / "tmdb_items.csv"
    tmdb = (
        pd.read_csv(tmdb_path, dtype=str, keep_default_na=False).drop_duplicates("movie_id")
        if tmdb_path.is_file()
        else pd.DataFrame(columns=["movie_id", "overview"])
    )
    tmdb = tmdb.set_index("movie_id")
    out = out.resolve()
    posters = _poster_folder(folder.resolve() / "posters", out)
    rows = []
    for rec in items.to_dict("records"):
        extra = tmdb.loc[rec["id"]].to_dict() if rec["id"] in tmdb.index else {}
        year = re.search(r"\((\d{4})\)\s*$", rec["title"]) or re.search(r"(\d{4})", rec["release"])
        poster = _poster(folder.resolve() / "posters" / f"{rec['id']}.jpg", posters, out.parent)
        rows.append(
            {
                "id": rec["id"],
                "title": rec["title"],
                "description": extra.get("overview", ""),
                "genres": "|".join(g for g in GENRES if rec[g] == "1" and g != "unknown"),
                "image": poster,
                "year": year.group(1) if year else "",
                "language": extra.get("original_language", ""),
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)
    mapping_path = out.with_name(out.name.split(".")[0] + ".mapping.json")
    mapping_path.write_text(json.dumps(MOVIELENS_MAPPING, indent=2) + "\n")
    return out, len(rows)


def _poster_folder(source: Path, out: Path) -> Path:
    """Where the catalogue's posters live: the source folder when it is under the catalogue's
    folder, else ``<out stem>.posters/`` beside the catalogue."""
    if source.is_relative_to(out.parent):
        return source
    return out.parent / (out.name.split(".")[0] + ".posters")


def _poster(source: Path, folder: Path, base: Path) -> str:
    """The poster's path relative to ``base`` ("" when there is none), linked into ``folder``
    first when it lies elsewhere; an up-to-date link or copy is kept (same size and mtime)."""
    if not source.is_file():
        return ""
    target = folder / source.name
    if target != source:
        st = source.stat()
        have = target.stat() if target.is_file() else None
        if have is None or (have.st_size, have.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            folder.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)  # keeps the mtime: the content hash stays stable
    return target.relative_to(base).as_posix()
