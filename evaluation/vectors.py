"""Item vectors for the evaluation: read from a catalogue index, or embedded from MovieLens.

:class:`ItemVectors` holds named spaces (``text``, ``image``, ``fused``, ...) over one list of
item ids, with a mask of which items have a vector in each space. ``from_store`` reads them
through the store contract; ``embed_movielens`` encodes MovieLens 100K itself (titles, genres
and TMDB overviews with a text encoder, posters with a CLIP image tower, fused with
:class:`~mosaicrec.encoders.Fuser`) and caches the result in a ``.npz`` so reruns are fast.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mosaicrec.errors import CatalogueError

__all__ = ["ItemVectors", "movielens_texts", "embed_movielens"]

_GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
           "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
           "Romance", "Sci-Fi", "Thriller", "War", "Western"]


@dataclass
class ItemVectors:
    """Named vector spaces over ``ids`` (strings); ``present[name][i]`` says item i has one."""

    ids: list[str]
    spaces: dict[str, np.ndarray]
    present: dict[str, np.ndarray] = field(default_factory=dict)
    encoders: dict[str, str] = field(default_factory=dict)  # provenance, for the report

    def __post_init__(self) -> None:
        for name, matrix in self.spaces.items():
            if matrix.shape[0] != len(self.ids):
                raise CatalogueError(
                    f"vector space {name!r} has {matrix.shape[0]} rows for {len(self.ids)} ids"
                )
            self.present.setdefault(name, np.linalg.norm(matrix, axis=1) > 0)

    def aligned(self, item_ids: Sequence[object], name: str) -> np.ndarray:
        """``(len(item_ids), dim)`` rows of one space in the given order; zeros where missing."""
        if name not in self.spaces:
            raise CatalogueError(f"no vector space {name!r}; available: {sorted(self.spaces)}")
        pos = {item: i for i, item in enumerate(self.ids)}
        src = self.spaces[name]
        out = np.zeros((len(item_ids), src.shape[1]), dtype=np.float32)
        for row, item in enumerate(item_ids):
            j = pos.get(str(item))
            if j is not None and self.present[name][j]:
                out[row] = src[j]
        return out

    def save(self, path: str | Path, meta: dict[str, object] | None = None) -> None:
        arrays = {f"space__{n}": m for n, m in self.spaces.items()}
        arrays.update({f"present__{n}": m for n, m in self.present.items()})
        info = {"encoders": self.encoders, "meta": meta or {}}
        np.savez_compressed(path, ids=np.array(self.ids), info=np.array(json.dumps(info)),
                            **arrays)

    @classmethod
    def load(cls, path: str | Path) -> tuple[ItemVectors, dict[str, object]]:
        with np.load(path, allow_pickle=False) as data:
            info = json.loads(str(data["info"]))
            spaces = {k[7:]: data[k] for k in data.files if k.startswith("space__")}
            present = {k[9:]: data[k] for k in data.files if k.startswith("present__")}
            ids = [str(i) for i in data["ids"]]
        return cls(ids, spaces, present, info["encoders"]), info["meta"]

    @classmethod
    def from_store(cls, config: object, names: Sequence[str] | None = None) -> ItemVectors:
        """Every record's named vectors from an existing collection (``StoreConfig``)."""
        from mosaicrec.indexing.stores import open_store

        store = open_store(config, None, create=False)  # type: ignore[arg-type]
        try:
            wanted = list(names) if names else sorted(store.schema.vectors)
            unknown = sorted(set(wanted) - set(store.schema.vectors))
            if unknown:
                raise CatalogueError(
                    f"collection has no vectors {unknown}; it has {sorted(store.schema.vectors)}"
                )
            records = sorted(store.iter_records(vectors=wanted), key=lambda r: r.id)
            spaces, present = {}, {}
            for name in wanted:
                dim = store.schema.vectors[name].dim
                matrix = np.zeros((len(records), dim), dtype=np.float32)
                has = np.zeros(len(records), dtype=bool)
                for i, rec in enumerate(records):
                    vec = rec.vectors.get(name)
                    if vec is not None:
                        matrix[i], has[i] = np.asarray(vec, dtype=np.float32), True
                spaces[name], present[name] = matrix, has
            encoders = {n: store.schema.vectors[n].encoder for n in wanted}
        finally:
            store.close()
        return cls([r.id for r in records], spaces, present, encoders)


def movielens_texts(folder: str | Path) -> tuple[list[str], list[str]]:
    """Item ids and texts ``title. overview Tags: genres.`` from ``u.item`` + ``tmdb_items.csv``.

    TMDB ids that appear twice keep their first row; empty overviews leave title and genres.
    """
    import pandas as pd

    from mosaicrec.encoders.text import compose_item_text

    folder = Path(folder)
    if not (folder / "u.item").is_file():
        raise CatalogueError(f"{folder / 'u.item'} not found: is {folder} a MovieLens folder?")
    items = pd.read_csv(folder / "u.item", sep="|", encoding="latin-1", header=None, dtype=str,
                        keep_default_na=False,
                        names=["id", "title", "release", "video", "imdb", *_GENRES])
    overviews: dict[str, str] = {}
    tmdb_path = folder / "tmdb_items.csv"
    if tmdb_path.is_file():
        tmdb = pd.read_csv(tmdb_path, dtype=str, keep_default_na=False)
        tmdb = tmdb.drop_duplicates("movie_id", keep="first")
        overviews = dict(zip(tmdb["movie_id"], tmdb["overview"], strict=True))
    ids, texts = [], []
    for rec in items.to_dict("records"):
        genres = [g for g in _GENRES if rec[g] == "1" and g != "unknown"]
        ids.append(rec["id"])
        texts.append(compose_item_text(rec["title"], overviews.get(rec["id"], ""), genres))
    return ids, texts


def embed_movielens(
    folder: str | Path,
    cache_dir: str | Path,
    *,
    text_encoder: str = "minilm",
    image_encoder: str | None = "tiny-clip",
    fusion_weights: dict[str, float] | None = None,
    batch_size: int = 64,
) -> ItemVectors:
    """Embed MovieLens items (text, posters, fused), reusing ``cache_dir``'s ``.npz`` when the
    encoders, texts and poster files are unchanged."""
    from mosaicrec.encoders import Fuser, FusionConfig, create_encoder

    folder = Path(folder)
    ids, texts = movielens_texts(folder)
    posters = [folder / "posters" / f"{i}.jpg" for i in ids]
    weights = fusion_weights or {"text": 1.0, "image": 1.0}
    key = hashlib.sha256(json.dumps(
        [text_encoder, image_encoder, weights, texts, [p.is_file() for p in posters]]
    ).encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"movielens_vectors_{key}.npz"
    if cache.is_file():
        return ItemVectors.load(cache)[0]
    text_enc = create_encoder(text_encoder, device="cpu", batch_size=batch_size)
    spaces = {"text": text_enc.encode(texts, keys=ids)}
    present = {"text": np.ones(len(ids), dtype=bool)}
    encoders = {"text": text_enc.name}
    if image_encoder is not None:
        img_enc = create_encoder(image_encoder, device="cpu", batch_size=batch_size)
        have = [i for i, p in enumerate(posters) if p.is_file()]
        result = img_enc.encode_many([str(posters[i]) for i in have], keys=[ids[i] for i in have])
        image = np.zeros((len(ids), img_enc.dim), dtype=np.float32)
        ok = np.array([have[j] for j in result.ok], dtype=np.int64)
        image[ok] = result.vectors
        spaces["image"] = image
        present["image"] = np.zeros(len(ids), dtype=bool)
        present["image"][ok] = True
        encoders["image"] = img_enc.name
    fuser = Fuser({m: spaces[m].shape[1] for m in spaces},
                  FusionConfig(weights={m: weights[m] for m in spaces}))
    spaces["fused"] = fuser.fuse_batch(spaces, present, keys=ids)
    present["fused"] = np.ones(len(ids), dtype=bool)
    encoders["fused"] = "fusion:" + ",".join(f"{m}={weights[m]}" for m in fuser.modalities)
    vectors = ItemVectors(ids, spaces, present, encoders)
    cache.parent.mkdir(parents=True, exist_ok=True)
    vectors.save(cache, meta={"texts_sha": key, "n_posters": int(present.get(
        "image", np.zeros(0)).sum())})
    return vectors
