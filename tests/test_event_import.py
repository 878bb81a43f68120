"""Event log import: formats, idempotent re-runs and resumes, quarantine, mapping errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from mosaicrec.engine.event_import import EventMapping, import_events, read_events
from mosaicrec.engine.events import SQLiteEventStore
from mosaicrec.errors import CatalogueError, ConfigError

ROWS = [
    {"user_id": "u1", "item_id": "a", "type": "like", "rating": "", "timestamp": "100"},
    {"user_id": "u1", "item_id": "b", "type": "rating", "rating": "4.5",
     "timestamp": "2024-01-02T03:04:05Z"},
    {"user_id": "u2", "item_id": "a", "type": "view", "rating": "", "timestamp": "100.5"},
    {"user_id": "u2", "item_id": "c", "type": "Purchase", "rating": "", "timestamp": "300"},
]
ISO_TS = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()


@pytest.fixture()
def store():
    with SQLiteEventStore(":memory:") as s:
        yield s


def write_csv(path, rows, sep=","):
    pd.DataFrame(rows).to_csv(path, sep=sep, index=False)
    return path


def check_rows(store):
    assert store.count() == 4 and store.users() == ["u1", "u2"]
    u1 = store.history("u1")
    assert [(e.item_id, e.type, e.value) for e in u1] == [("a", "like", None),
                                                          ("b", "rating", 4.5)]
    assert u1[1].timestamp == ISO_TS
    assert [e.type for e in store.history("u2")] == ["view", "purchase"]


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t")])
def test_csv_and_tsv(store, tmp_path, suffix, sep):
    path = write_csv(tmp_path / f"log{suffix}", ROWS, sep)
    report = import_events(store, path, chunk_size=3)
    assert (report.rows_read, report.written, report.duplicates, report.quarantined) == (
        4, 4, 0, 0)
    check_rows(store)


def test_jsonl_with_numbers_and_a_bad_line(store, tmp_path):
    lines = [json.dumps({**r, "user_id": int(r["user_id"][1:]), "rating": r["rating"] or None})
             for r in ROWS]
    lines.insert(2, "{not json")
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + "\n\n")
    report = import_events(store, tmp_path / "log.jsonl", quarantine_path=tmp_path / "q.jsonl")
    assert report.written == 4 and report.quarantined == 1
    assert store.users() == ["1", "2"]
    bad = json.loads((tmp_path / "q.jsonl").read_text())
    assert bad["row"] == 3 and bad["field"] == "line" and "not valid JSON" in bad["reason"]


def test_parquet_with_datetimes_and_context(store, tmp_path):
    frame = pd.DataFrame({
        "who": ["u1", "u1", "u2"], "what": ["a", "b", "a"], "kind": ["click", "like", "skip"],
        "when": pd.to_datetime(["2024-01-02T03:04:05", "2024-01-03", "2024-01-04"],
                               format="ISO8601"),
        "scene": ["home", None, "search"],
    })
    frame.to_parquet(tmp_path / "log.parquet", row_group_size=2)
    mapping = EventMapping(user="who", item="what", type="kind", timestamp="when",
                           context="scene")
    chunks = list(read_events(tmp_path / "log.parquet", mapping, chunk_size=2))
    assert [len(events) for events, _, _ in chunks] == [2, 1]  # streamed, not read whole
    report = import_events(store, tmp_path / "log.parquet", mapping)
    assert report.written == 3
    first = store.history("u1")[0]
    assert first.timestamp == ISO_TS and first.context == "home" and first.type == "click"


def test_headerless_movielens_layout(store, tmp_path):
    (tmp_path / "u.data").write_text("1\t10\t5\t881250949\n2\t10\t3\t891717742\n")
    assert import_events(store, tmp_path / "u.data").written == 2
    assert store.history("1")[0].value == 5.0 and store.history("1")[0].type == "rating"
    (tmp_path / "plays.tsv").write_text("7\tsong\t42\n")
    mapping = EventMapping(header=False, names=["user", "item", "ts"], user="user",
                           item="item", timestamp="ts", default_type="view")
    assert import_events(store, tmp_path / "plays.tsv", mapping).written == 1
    assert store.history("7")[0].timestamp == 42.0


@pytest.mark.realdata
def test_real_movielens_u_data(store, movielens_dir):
    report = import_events(store, movielens_dir / "u.data", chunk_size=20_000)
    assert report.written == 100_000 and report.quarantined == 0 and store.count() == 100_000
    again = import_events(store, movielens_dir / "u.data", chunk_size=20_000)
    assert again.written == 0 and again.duplicates == 100_000
    assert len(store.export()) == 100_000


def test_reimport_writes_nothing(store, tmp_path):
    path = write_csv(tmp_path / "log.csv", ROWS)
    assert import_events(store, path).written == 4
    again = import_events(store, path)
    assert (again.rows_read, again.written, again.duplicates) == (4, 0, 4)
    assert store.count() == 4


def test_resume_after_a_partial_import(store, tmp_path):
    rows = [{"user_id": f"u{i % 7}", "item_id": f"i{i}", "type": "view", "rating": "",
             "timestamp": str(i)} for i in range(50)]
    prefix = write_csv(tmp_path / "prefix.csv", rows[:23])  # as if killed after 23 rows
    full = write_csv(tmp_path / "full.csv", rows)
    assert import_events(store, prefix, chunk_size=10).written == 23
    report = import_events(store, full, chunk_size=10)
    assert (report.written, report.duplicates) == (27, 23)
    fresh = SQLiteEventStore(":memory:")
    import_events(fresh, full)
    assert store.count() == 50
    ours, theirs = store.export(), fresh.export()
    assert list(zip(ours.user_id, ours.item_id, ours.timestamp, strict=True)) == list(
        zip(theirs.user_id, theirs.item_id, theirs.timestamp, strict=True))


def test_explicit_event_ids_dedupe_even_when_fields_differ(store, tmp_path):
    rows = [{**r, "eid": f"e{i}"} for i, r in enumerate(ROWS)]
    import_events(store, write_csv(tmp_path / "a.csv", rows), EventMapping(event_id="eid"))
    changed = [{**r, "timestamp": "999", "item_id": "zzz"} for r in rows]
    report = import_events(store, write_csv(tmp_path / "b.csv", changed),
                           EventMapping(event_id="eid"))
    assert (report.written, report.duplicates) == (0, 4) and store.count() == 4


BAD_ROWS = [
    {"user_id": "u1", "item_id": "a", "rating": "4", "timestamp": "1"},
    {"user_id": "", "item_id": "a", "rating": "4", "timestamp": "1"},
    {"user_id": "u1", "item_id": "", "rating": "4", "timestamp": "1"},
    {"user_id": "u1", "item_id": "b", "rating": "great", "timestamp": "1"},
    {"user_id": "u1", "item_id": "c", "rating": "4", "timestamp": "yesterday"},
    {"user_id": "u1", "item_id": "d", "rating": "NaN", "timestamp": "1"},
    {"user_id": "u1", "item_id": "e", "rating": "", "timestamp": "1"},
    {"user_id": "u1", "item_id": "f", "rating": "3", "timestamp": "nan"},
    {"user_id": "u1", "item_id": "g", "rating": "3", "timestamp": "2024-05-06 07:08:09"},
]


def test_malformed_rows_are_quarantined_and_reruns_match(store, tmp_path):
    path = write_csv(tmp_path / "ratings.csv", BAD_ROWS)
    quarantine = tmp_path / "out" / "q.jsonl"
    report = import_events(store, path, quarantine_path=quarantine, chunk_size=4)
    assert (report.rows_read, report.written, report.quarantined) == (9, 2, 7)
    records = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert [(r["row"], r["field"]) for r in records] == [
        (2, "user"), (3, "item"), (4, "rating"), (5, "timestamp"), (6, "rating"),
        (7, "rating"), (8, "timestamp")]
    assert records[0]["id"] == "?/a" and records[2]["id"] == "u1/b"
    assert "'great' is not a number" in records[2]["reason"]
    assert "neither unix seconds nor ISO-8601" in records[3]["reason"]
    assert [r.row for r in report.reasons] == [r["row"] for r in records]
    first = quarantine.read_bytes()
    again = import_events(store, path, quarantine_path=quarantine, chunk_size=2)
    assert again.written == 0 and quarantine.read_bytes() == first  # rewritten, not appended
    write_csv(path, BAD_ROWS[:1])  # a fixed file clears the stale quarantine
    import_events(store, path, quarantine_path=quarantine)
    assert quarantine.read_text() == ""


def test_unknown_type_is_quarantined(store, tmp_path):
    rows = [{**ROWS[0], "type": "love"}]
    report = import_events(store, write_csv(tmp_path / "log.csv", rows))
    assert report.quarantined == 1 and report.reasons[0].field == "type"
    assert "unknown event type 'love'" in report.reasons[0].reason


def test_misspelt_column_is_refused_before_writing(store, tmp_path):
    path = write_csv(tmp_path / "log.csv", ROWS)
    quarantine = tmp_path / "q.jsonl"
    quarantine.write_text("old\n")
    with pytest.raises(CatalogueError, match=r"'usr_id' \(user\).*'user_id', 'item_id'"):
        import_events(store, path, EventMapping(user="usr_id"), quarantine_path=quarantine)
    with pytest.raises(CatalogueError, match="'ctx'"):  # a named optional column must exist
        import_events(store, path, EventMapping(context="ctx"))
    assert store.count() == 0 and quarantine.read_text() == "old\n"


def test_unusable_files_and_mappings(store, tmp_path):
    with pytest.raises(CatalogueError, match="not found"):
        import_events(store, tmp_path / "missing.csv")
    (tmp_path / "log.xlsx").write_text("x")
    with pytest.raises(CatalogueError, match="unknown event log format"):
        import_events(store, tmp_path / "log.xlsx")
    rows = [{k: v for k, v in r.items() if k not in ("type", "rating")} for r in ROWS]
    with pytest.raises(CatalogueError, match="neither a type nor a rating column"):
        import_events(store, write_csv(tmp_path / "log.csv", rows))
    assert import_events(store, tmp_path / "log.csv", EventMapping(default_type="view")).written
    with pytest.raises(ConfigError):
        EventMapping(default_type="love")
    with pytest.raises(ConfigError):
        EventMapping(usr="x")
