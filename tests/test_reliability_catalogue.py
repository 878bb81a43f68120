"""Catalogue reliability (issue 14): damaged lines cost one row, media stay inside their roots,
mapped columns are checked against the header, and reading streams in chunks."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest
from reliability_support import REPO, SAMPLE

from mosaicrec.errors import CatalogueError
from mosaicrec.indexing.catalogue import Catalogue, ColumnMapping, read_catalogue
from mosaicrec.indexing.indexer import load_mapping

TEXT_ONLY = ColumnMapping(tags=None, image=None, audio=None)


def _lines(n: int) -> list[str]:
    return [f"r{i},Title {i},description {i}" for i in range(n)]


# -- defect 3: one malformed line rejected the whole catalogue --------------------------------
def test_unterminated_csv_quote_costs_one_row_and_is_reported_by_line(tmp_path: Path) -> None:
    rows = _lines(40)
    rows[10] = 'r10,"Two\nlines",description 10'  # a legitimate multi-line field
    rows[26] = 'r26,"Broken title,description 26'  # never closed
    rows[30] = 'r30,"Title, with a comma",description 30'  # its quote would close the runaway
    path = tmp_path / "cat.csv"
    path.write_text("id,title,description\n" + "\n".join(rows) + "\n")
    items, rejected = read_catalogue(path, TEXT_ONLY)
    assert [it.id for it in items] == [f"r{i}" for i in range(40) if i != 26]
    (bad,) = rejected
    # header line 1, rows from line 2, one extra line for the two-line field: r26 is line 29
    assert bad.line == 29 and "line 29" in bad.reason
    assert next(it for it in items if it.id == "r30").title == "Title, with a comma"
    assert next(it for it in items if it.id == "r10").text.startswith("Two\nlines.")


def test_unterminated_quote_at_the_end_and_in_tsv(tmp_path: Path) -> None:
    path = tmp_path / "cat.tsv"
    rows = [r.replace(",", "\t") for r in _lines(5)] + ['r5\t"never closed\tdesc']
    path.write_text("id\ttitle\tdescription\n" + "\n".join(rows) + "\n")
    items, rejected = read_catalogue(path, TEXT_ONLY)
    assert [it.id for it in items] == [f"r{i}" for i in range(5)]
    assert rejected[0].line == 7 and "never closed before the end of the file" in rejected[0].reason


def test_broken_jsonl_line_is_reported_with_line_and_column(tmp_path: Path) -> None:
    lines = [json.dumps({"id": f"j{i}", "title": f"T{i}"}) for i in range(30)]
    lines[12] = lines[12][:-1]  # the closing brace is missing
    lines[20] = "[1, 2]"  # JSON, but not an object
    path = tmp_path / "cat.jsonl"
    path.write_text("\n".join(lines) + "\n")
    items, rejected = read_catalogue(path, TEXT_ONLY)
    assert len(items) == 28
    assert [(r.line, r.row) for r in rejected] == [(13, 12), (21, 20)]
    assert "line 13: invalid JSON at column" in rejected[0].reason
    assert "not an object" in rejected[1].reason


def test_damaged_parquet_stops_naming_the_row_group(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "cat.parquet"
    table = pa.table({"id": [f"p{i}" for i in range(300)], "title": [f"T{i}" for i in range(300)]})
    pq.write_table(table, path, row_group_size=100, compression="NONE")
    offset = pq.ParquetFile(path).metadata.row_group(1).column(1).data_page_offset
    data = bytearray(path.read_bytes())
    data[offset:offset + 24] = b"\xff" * 24
    path.write_bytes(bytes(data))
    with pytest.raises(CatalogueError, match=r"row group 1 \(rows 100-199\)"):
        read_catalogue(path, TEXT_ONLY)


# -- defect 5: media paths escaped the catalogue -------------------------------------------------
def test_media_paths_are_confined_to_the_catalogue_folder_and_media_roots(tmp_path: Path) -> None:
    png = (SAMPLE / "images" / "ocean-01.png").read_bytes()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png)
    folder = tmp_path / "a" / "b" / "c" / "d" / "shop"
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "ok.png").write_bytes(png)
    (folder / "img" / "link.png").symlink_to(outside / "secret.png")
    rows = [
        {"id": "ok", "title": "fine", "image": "img/ok.png"},
        {"id": "dots", "title": "escape", "image": "../../../../../../../../etc/passwd"},
        {"id": "abs", "title": "absolute", "image": str(outside / "secret.png")},
        {"id": "link", "title": "symlink out", "image": "img/link.png"},
        {"id": "scheme", "title": "file url", "image": "file:///etc/passwd"},
    ]
    path = folder / "cat.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    mapping = ColumnMapping(description=None, tags=None, audio=None)
    items, rejected = read_catalogue(path, mapping)
    by_id = {it.id: it for it in items}
    assert rejected == [] and sorted(by_id) == sorted(r["id"] for r in rows)  # text survives
    assert by_id["ok"].image == str((folder / "img" / "ok.png").resolve())
    for refused in ("dots", "abs", "link", "scheme"):
        assert by_id[refused].image is None, refused
    assert "outside the media roots" in by_id["dots"].media_errors["image"]
    assert "outside the media roots" in by_id["link"].media_errors["image"]
    assert "only http(s) URLs" in by_id["scheme"].media_errors["image"]
    assert by_id["ok"].shown["image"] == "img/ok.png"  # what the payload will show
    items, _ = read_catalogue(path, mapping, media_roots=[outside])  # a configured root
    by_id = {it.id: it for it in items}
    assert by_id["abs"].image == str((outside / "secret.png").resolve())
    assert by_id["abs"].shown["image"] == "secret.png"
    assert by_id["link"].image is not None and by_id["dots"].image is None


# -- defect 7: mapping checked against the header; a broken mapping file is one line ----------
def test_misspelt_media_column_is_an_error_naming_it_and_the_header(tmp_path: Path) -> None:
    path = tmp_path / "cat.csv"
    pd.DataFrame([{"id": "a", "title": "t", "poster": "x.png", "clip": ""}]).to_csv(path,
                                                                                   index=False)
    for mapping in ({"image": "postr"}, {"audio": "clips"}, {"title": "name"}):
        with pytest.raises(CatalogueError) as err:
            read_catalogue(path, ColumnMapping.model_validate(mapping))
        column = next(iter(mapping.values()))
        assert f"{column!r}" in str(err.value) and "'poster'" in str(err.value)
    jsonl = tmp_path / "cat.jsonl"
    jsonl.write_text(json.dumps({"id": "a", "title": "t", "poster": "x.png"}) + "\n")
    with pytest.raises(CatalogueError, match="'postr' \\(image\\)"):
        read_catalogue(jsonl, ColumnMapping(image="postr"))
    # columns left at their defaults may be absent (a text-only file needs no image column)
    (item,), _ = read_catalogue(path, ColumnMapping())
    assert item.image is None


def test_mapping_file_that_is_not_json_is_a_one_line_error(tmp_path: Path) -> None:
    catalogue = tmp_path / "cat.csv"
    pd.DataFrame([{"id": "a", "title": "t"}]).to_csv(catalogue, index=False)
    (tmp_path / "cat.mapping.json").write_text('{"id": "id", "payload": {"year": "integ')
    with pytest.raises(CatalogueError) as err:
        load_mapping(catalogue)
    assert "\n" not in str(err.value) and "not valid JSON" in str(err.value)
    (tmp_path / "cat.mapping.json").write_text('{"id": "id", "imagee": "poster"}')
    with pytest.raises(CatalogueError, match="not a valid mapping") as err:
        load_mapping(catalogue)
    assert "\n" not in str(err.value)


def test_cli_reports_a_truncated_mapping_without_a_traceback(tmp_path: Path) -> None:
    catalogue = tmp_path / "cat.csv"
    pd.DataFrame([{"id": "a", "title": "t"}]).to_csv(catalogue, index=False)
    (tmp_path / "cat.mapping.json").write_text('{"id": "id", "payload": {')
    env = {**os.environ, "MOSAICREC_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mosaicrec", "index", str(catalogue), "--profile", "tiny",
         "--path", str(tmp_path / "store"), "--no-progress"],
        capture_output=True, text=True, timeout=300, cwd=REPO.parent, env=env)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "not valid JSON" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- defect 10: the whole catalogue was read into memory; hashes stay stable ------------------
def test_reading_streams_in_chunks_with_memory_bounded_by_the_chunk(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    filler = "x" * 400
    with path.open("w") as out:
        out.write("id,title,description\n")
        for i in range(40_000):
            out.write(f"item-{i},Title {i},{filler} {i}\n")
    size_mb = path.stat().st_size / 1e6
    tracemalloc.start()
    try:
        catalogue = Catalogue(path, TEXT_ONLY, chunk_size=500).scan()
        count = 0
        for items, rejected in catalogue.chunks():
            assert len(items) + len(rejected) <= 500
            count += len(items)
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    assert count == 40_000 and catalogue.rows == 40_000
    assert peak_mb < size_mb / 2, (peak_mb, size_mb)  # ids (~3 MB) + one chunk, not the file


def test_content_hash_is_the_same_for_every_format_and_as_before(tmp_path: Path) -> None:
    rows = [{"id": "a", "title": "Alpha", "description": "first", "tags": "x|y", "year": "2001"}]
    mapping = ColumnMapping(image=None, audio=None, payload={"year": "integer", "tags": "keywords"})
    frame, hashes = pd.DataFrame(rows), set()
    frame.to_csv(tmp_path / "cat.csv", index=False)
    frame.to_csv(tmp_path / "cat.tsv", index=False, sep="\t")
    frame.to_json(tmp_path / "cat.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "cat.parquet")
    for fmt in ("csv", "tsv", "jsonl", "parquet"):
        (item,), _ = read_catalogue(tmp_path / f"cat.{fmt}", mapping)
        hashes.add(item.content_hash)
    # the formula of earlier releases for a row without media: unchanged rows are not redone
    blob = json.dumps(["Alpha. first Tags: x, y.", ["None", "None"],
                       {"year": 2001, "tags": ["x", "y"]}], sort_keys=True, default=str)
    assert hashes == {hashlib.sha256(blob.encode()).hexdigest()[:32]}


def test_catalogue_ids_take_16_bytes_each_and_answer_exactly() -> None:
    from mosaicrec.indexing.ids import CatalogueIds

    ids = CatalogueIds()
    for i in range(1000):
        ids.add(f"x{i}")
    for repeated in ("x5", "x7", "x7"):
        ids.add(repeated)
    ids.freeze()
    assert len(ids) == 1000 and len(ids.duplicates) == 2
    assert "x5" in ids.duplicates and "x7" in ids.duplicates and "x6" not in ids.duplicates
    assert "x999" in ids and "y" not in ids and 5 not in ids
    assert ids.missing(["x1", "y", "x2", "z"]) == ["y", "z"]
    empty = CatalogueIds().freeze()
    assert "a" not in empty and empty.missing(["a"]) == ["a"] and len(empty) == 0
