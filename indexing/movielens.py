"""Convert a MovieLens 100K folder (``u.item``, ``tmdb_items.csv``, ``posters/``) into a
mosaicrec catalogue: id, title, description (TMDB overview), genre tags, poster, payload."""

from __future__ import annotations

import json
import re
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
    rows = []
    for rec in items.to_dict("records"):
        extra = tmdb.loc[rec["id"]].to_dict() if rec["id"] in tmdb.index else {}
        year = re.search(r"\((\d{4})\)\s*$", rec["title"]) or re.search(r"(\d{4})", rec["release"])
        poster = folder / "posters" / f"{rec['id']}.jpg"
        rows.append(
            {
                "id": rec["id"],
                "title": rec["title"],
                "description": extra.get("overview", ""),
                "genres": "|".join(g for g in GENRES if rec[g] == "1" and g != "unknown"),
                "image": str(poster.resolve()) if poster.is_file() else "",
                "year": year.group(1) if year else "",
                "language": extra.get("original_language", ""),
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)
    mapping_path = out.with_name(out.name.split(".")[0] + ".mapping.json")
    mapping_path.write_text(json.dumps(MOVIELENS_MAPPING, indent=2) + "\n")
    return out, len(rows)
