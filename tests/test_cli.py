"""The ``mosaicrec`` CLI end to end on the sample catalogue (tiny encoders, embedded store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mosaicrec.serving.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "catalogue.csv"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> list[str]:
    path = tmp_path_factory.mktemp("cli") / "store"
    args = ["--path", str(path)]
    assert main(["index", str(SAMPLE), "--profile", "tiny", "--no-progress", *args]) == 0
    return args


def test_help_lists_commands(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("index", "search", "info", "delete", "movielens"):
        assert command in out


def test_index_reports_and_reindex_is_a_no_op(indexed, capsys) -> None:
    assert main(["index", str(SAMPLE), "--profile", "tiny", "--no-progress", *indexed]) == 0
    out = capsys.readouterr().out
    assert "indexed 0 items (40 unchanged" in out and "UNTRAINED" in out


def test_info_shows_schema_and_count(indexed, capsys) -> None:
    assert main(["info", *indexed]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["points"] == 40
    assert set(info["vectors"]) == {"text", "image", "audio", "fused"}
    assert info["events"] == 0 and info["trained_model"] is None


@pytest.mark.parametrize("space", ["fused", "text", "image", "audio"])
def test_text_search_in_every_space(indexed, capsys, space) -> None:
    assert main(["search", "waves on a beach", "--space", space, "--json", *indexed]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 5
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_item_search_with_filter(indexed, capsys) -> None:
    argv = ["search", "--item", "ocean-01", "--filter", "category=city", "--filter", "year>=2016"]
    assert main([*argv, "--json", "-n", "20", *indexed]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and all(h["payload"]["category"] == "city" for h in hits)
    assert all(h["payload"]["year"] >= 2016 for h in hits)


def test_bad_requests_exit_2_with_a_message(indexed, capsys) -> None:
    assert main(["search", "--item", "no-such-item", *indexed]) == 2
    assert "no-such-item" in capsys.readouterr().err
    assert main(["search", "x", "--filter", "year>>3", *indexed]) == 2
    assert "bad filter" in capsys.readouterr().err
    assert main(["search", "x", "-n", "0", *indexed]) == 2
    assert "limit" in capsys.readouterr().err
    assert main(["info", "--path", str(Path(indexed[1]).parent / "nothing")]) == 2
    assert "nothing" in capsys.readouterr().err


def test_delete_then_count(tmp_path, capsys) -> None:
    args = ["--path", str(tmp_path / "s")]
    assert main(["index", str(SAMPLE), "--profile", "tiny", "--no-progress", *args]) == 0
    assert main(["delete", "ocean-01", "ghost", *args]) == 0
    assert "deleted 1 items; 1 ids were not in the collection" in capsys.readouterr().out
    assert main(["info", *args]) == 0
    assert json.loads(capsys.readouterr().out)["points"] == 39
