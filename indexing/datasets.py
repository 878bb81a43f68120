"""Download public data sets for users on a connected machine (MovieLens from GroupLens)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from mosaicrec.errors import CatalogueError
from mosaicrec.indexing.fetch import FetchConfig, fetch_bytes

__all__ = ["DATASETS", "download_dataset"]

# name -> (URL at the publisher, folder inside the archive)
DATASETS = {
    "movielens-100k": ("https://files.grouplens.org/datasets/movielens/ml-100k.zip", "ml-100k"),
}


def download_dataset(name: str, out: str | Path, *, url: str | None = None) -> Path:
    """Fetch and unpack a data set into ``out/<name>``; returns that folder.

    MovieLens comes without posters or TMDB overviews; the catalogue converter uses titles
    and genres alone when those are absent.
    """
    if name not in DATASETS:
        raise CatalogueError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}")
    source, inner = DATASETS[name]
    config = FetchConfig(timeout_s=60, retries=3, max_bytes=200 * 1024 * 1024)
    archive = fetch_bytes(url or source, config, key=name)
    target = Path(out) / name
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            for member in zf.infolist():
                parts = Path(member.filename).parts
                if member.is_dir() or ".." in parts or not parts or parts[0] != inner:
                    continue
                dest = target.joinpath(*parts[1:])
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(zf.read(member))
    except zipfile.BadZipFile:
        raise CatalogueError(f"{url or source} did not return a zip archive") from None
    return target
