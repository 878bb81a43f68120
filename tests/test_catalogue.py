"""Catalogue loading: formats, column mapping, per-row validation."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mosaicrec.errors import CatalogueError
from mosaicrec.indexing.catalogue import ColumnMapping, read_catalogue
from mosaicrec.indexing.movielens import movielens_catalogue

ROWS = [
    {"id": "a", "title": "Alpha", "description": "first item", "tags": "x|y", "year": "2001"},
    {"id": "b", "title": "Beta", "description": "", "tags": "", "year": "2002"},
    {"id": "c", "title": "", "description": "only a description", "tags": "z", "year": ""},
]
MAPPING = ColumnMapping(image=None, audio=None, payload={"year": "integer", "tags": "keywords"})


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "tsv"])
def test_every_format_gives_the_same_items(tmp_path: Path, fmt: str) -> None:
    frame = pd.DataFrame(ROWS)
    path = tmp_path / f"cat.{fmt}"
    {
        "csv": lambda: frame.to_csv(path, index=False),
        "tsv": lambda: frame.to_csv(path, index=False, sep="\t"),
        "parquet": lambda: frame.to_parquet(path),
        "jsonl": lambda: frame.to_json(path, orient="records", lines=True),
    }[fmt]()
    items, rejected = read_catalogue(path, MAPPING)
    assert rejected == []
    assert [it.id for it in items] == ["a", "b", "c"]
    assert items[0].text == "Alpha. first item Tags: x, y."
    assert items[0].payload == {"year": 2001, "tags": ["x", "y"]}
    assert items[1].text == "Beta."
    assert items[2].payload == {"tags": ["z"]}  # blank year is absent, not an error
    assert len({it.content_hash for it in items}) == 3


def test_bad_rows_are_rejected_with_reasons(tmp_path: Path) -> None:
    rows = [
        {"id": "ok", "title": "Fine", "year": "1999"},
        {"id": "", "title": "No id", "year": "1999"},
        {"id": "twice", "title": "First", "year": "1999"},
        {"id": "twice", "title": "Duplicate", "year": "1999"},
        {"id": "bad-year", "title": "Bad", "year": "nineteen"},
        {"id": "empty", "title": "", "year": "2000"},
    ]
    path = tmp_path / "broken.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    mapping = ColumnMapping(description=None, tags=None, image=None, audio=None,
                            payload={"year": "integer"})
    items, rejected = read_catalogue(path, mapping)
    assert [it.id for it in items] == ["ok"]
    reasons = {r.row: r.reason for r in rejected}
    assert "missing id" in reasons[1]
    # every row of a duplicated id is rejected: neither can be told to be the right one
    assert "duplicate id" in reasons[2] and "duplicate id" in reasons[3]
    assert "bad payload value" in reasons[4] and "nineteen" in reasons[4]
    assert "no text, image or audio" in reasons[5]
    record = json.loads(rejected[0].to_json())
    assert (record["row"], record["line"], record["field"]) == (1, 3, "id")


def test_missing_mapped_column_and_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "cat.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False)
    with pytest.raises(CatalogueError, match="genre"):
        read_catalogue(path, ColumnMapping(payload={"genre": "keyword"}))
    other = tmp_path / "cat.xlsx"
    other.write_text("x")
    with pytest.raises(CatalogueError, match="unknown catalogue format"):
        read_catalogue(other)
    with pytest.raises(CatalogueError, match="not found"):
        read_catalogue(tmp_path / "missing.csv")


def test_relative_media_paths_resolve_against_the_catalogue(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"x")
    path = tmp_path / "cat.csv"
    pd.DataFrame([{"id": "a", "title": "t", "image": "img/a.png",
                   "audio": "http://127.0.0.1:1/a.wav"}]).to_csv(path, index=False)
    (item,), _ = read_catalogue(path)
    assert item.image == str((tmp_path / "img" / "a.png").resolve())
    assert item.audio == "http://127.0.0.1:1/a.wav"


@pytest.mark.realdata
def test_movielens_conversion(movielens_dir: Path, tmp_path: Path) -> None:
    out, count = movielens_catalogue(movielens_dir, tmp_path / "movies.csv")
    assert count == 1682
    mapping = ColumnMapping.model_validate(
        json.loads((tmp_path / "movies.mapping.json").read_text())
    )
    items, rejected = read_catalogue(out, mapping)
    assert len(items) == 1682 and rejected == []
    toy = next(it for it in items if it.id == "1")
    assert toy.title == "Toy Story (1995)" and "Woody" in toy.text
    assert toy.payload["genres"] == ["Animation", "Children's", "Comedy"]
    assert toy.payload["year"] == 1995
    with_poster = sum(it.image is not None for it in items)
    assert with_poster == len(list((movielens_dir / "posters").glob("*.jpg")))
