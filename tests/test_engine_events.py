"""The SQLite event store: append, history, erasure, deleted items, durability, idempotent
keys, schema migration, bulk export and wrapped sqlite errors."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest

from mosaicrec.engine.events import EventStore, SQLiteEventStore
from mosaicrec.engine.profile_cache import ProfileCache
from mosaicrec.engine.user_model import Interaction, UserProfile
from mosaicrec.errors import RequestError, StoreError


def ev(user, item, t, type_="like", value=None):
    return Interaction(user, item, type_, float(t), value)


@pytest.fixture()
def store():
    with SQLiteEventStore(":memory:") as s:
        yield s


def test_append_and_history_in_time_order(store):
    assert isinstance(store, EventStore)
    store.append([ev("u", "b", 2), ev("u", "a", 1), ev("v", "a", 5)])
    store.append(ev("u", "c", 3, "rating", 4.5))
    hist = store.history("u")
    assert [e.item_id for e in hist] == ["a", "b", "c"]
    # read back without checking again, the events equal (and hash as) the ones appended
    assert hist[-1] == ev("u", "c", 3, "rating", 4.5) and hash(hist[0]) == hash(ev("u", "a", 1))
    assert hist[-1].type == "rating" and hist[-1].value == 4.5
    assert [e.item_id for e in store.history("u", limit=2)] == ["b", "c"]
    assert [e.item_id for e in store.history("u", since=2)] == ["b", "c"]
    assert store.users() == ["u", "v"]
    assert store.items_of("u") == {"a", "b", "c"} and store.items_of("nobody") == set()
    assert store.count() == 4 and store.count("u") == 3
    assert store.history("nobody") == []


def test_bad_events_are_rejected_and_nothing_is_written(store):
    with pytest.raises(RequestError):
        store.append([ev("u", "a", 1), {"user_id": "u"}])  # type: ignore[list-item]
    with pytest.raises(RequestError, match="unknown interaction type"):
        store.append(Interaction("u", "a", "love", 1.0))  # type: ignore[arg-type]
    assert store.count() == 0
    with pytest.raises(RequestError):
        store.history("u", limit=-1)


def test_forget_erases_events_and_cached_profile(store):
    cache = ProfileCache()
    store.add_listener(cache.invalidate)
    store.append([ev("u", "a", 1), ev("v", "a", 1)])
    cache.put("u", UserProfile())
    cache.put("v", UserProfile())
    assert store.forget("u") == 1
    assert store.history("u") == [] and "u" not in store.users()
    assert "u" not in cache and "v" in cache
    assert store.count("v") == 1


def test_append_drops_the_profile_but_keeps_item_vectors(store):
    cache = ProfileCache()
    store.add_listener(cache.invalidate)
    cache.put("u", UserProfile(labels={"a": "A"}), {"a": [1.0, 0.0]})
    store.append(ev("u", "b", 1))
    assert cache.get("u") is None  # rebuilt on the next request ...
    assert list(cache.vectors("u")) == ["a"] and cache.labels("u") == {"a": "A"}  # ... cheaply
    store.forget("u")
    assert cache.vectors("u") == {} and "u" not in cache


def test_delete_item_drops_its_events(store):
    cache = ProfileCache()
    store.add_listener(cache.invalidate)
    store.append([ev("u", "a", 1), ev("u", "b", 2), ev("v", "b", 3), ev("w", "c", 3)])
    for user in "uvw":
        cache.put(user, UserProfile())
    assert store.delete_item("b") == 2
    assert [e.item_id for e in store.history("u")] == ["a"]
    assert store.history("v") == []
    assert "u" not in cache and "v" not in cache and "w" in cache


def test_item_counts_are_distinct_positive_users(store):
    store.append([ev("u", "a", 1), ev("u", "a", 2), ev("v", "a", 3), ev("v", "b", 3, "dislike"),
                  ev("w", "b", 3, "rating", 2), ev("w", "c", 3, "rating", 4)])
    assert store.item_counts() == {"a": 2, "c": 1}
    assert store.item_counts(positive_only=False) == {"a": 2, "b": 2, "c": 1}
    assert store.user_items() == {"u": ["a"], "v": ["a"], "w": ["c"]}


def test_durable_across_reopen(tmp_path):
    path = tmp_path / "events" / "events.db"
    with SQLiteEventStore(path) as s:
        s.append([ev("u", "a", 1), ev("u", "b", 2)])
    with SQLiteEventStore(path) as s:
        assert [e.item_id for e in s.history("u")] == ["a", "b"]
        assert s._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_concurrent_appends(tmp_path):
    s = SQLiteEventStore(tmp_path / "e.db")

    def work(k):
        for i in range(50):
            s.append(ev(f"u{k}", f"i{i}", i))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert s.count() == 200 and len(s.users()) == 4
    s.close()


# -- idempotent appends, migration, bulk export, errors ---------------------------------------
def test_duplicate_events_are_ignored(store):
    batch = [ev("u", "a", 1), ev("u", "b", 2, "rating", 4), ev("u", "a", 1)]
    assert store.append(batch) == 2  # the repeat inside the batch is ignored too
    version = store.version
    assert store.append(batch) == 0 and store.version == version  # nothing new: no bump
    assert store.append(Interaction("u", "a", "like", 1.0, None, "home")) == 0  # context not key
    assert store.append(ev("u", "b", 2, "rating", 5)) == 1  # another value is another event
    assert store.count() == 3


def test_explicit_event_ids_key_events(store):
    assert store.append([ev("u", "a", 1), ev("u", "a", 1)], event_ids=["e1", "e2"]) == 2
    assert store.append(ev("v", "z", 9, "view"), event_ids=["e1"]) == 0  # same id, other fields
    assert store.append(ev("u", "a", 1)) == 1  # no id: keyed by its natural key
    assert store.count() == 3
    with pytest.raises(RequestError, match="2 event_ids for 1 events"):
        store.append(ev("u", "a", 1), event_ids=["x", "y"])
    with pytest.raises(RequestError, match="non-empty string"):
        store.append(ev("u", "a", 1), event_ids=[""])


def test_old_schema_is_migrated_keeping_the_first_duplicate(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id TEXT NOT NULL, item_id TEXT NOT NULL, type TEXT NOT NULL, ts REAL NOT NULL,
        value REAL, context TEXT);""")
    db.executemany("INSERT INTO events (user_id, item_id, type, ts, value, context) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   [("u", "a", "like", 1.0, None, "first"), ("u", "a", "like", 1.0, None, "2nd"),
                    ("u", "b", "rating", 2.0, 4.0, None), ("u", "b", "rating", 2.0, 4.0, None),
                    ("u", "b", "rating", 2.0, 5.0, None)])
    db.commit()
    db.close()
    with SQLiteEventStore(path) as s:
        assert s.migrated_duplicates == 2
        assert [(e.item_id, e.value, e.context) for e in s.history("u")] == [
            ("a", None, "first"), ("b", 4.0, None), ("b", 5.0, None)]
        assert s.append(ev("u", "a", 1)) == 0
    with SQLiteEventStore(path) as s:  # already migrated: nothing to do
        assert s.migrated_duplicates == 0 and s.count() == 3


def test_export_columns_sorted_with_dtypes(store):
    store.append([ev("v", "x", 5), ev("u", "b", 2, "rating", 4.5), ev("u", "a", 2),
                  ev("u", "c", 1, "view")])
    cols = store.export()
    assert len(cols) == 4
    assert list(cols.user_id) == ["u", "u", "u", "v"]
    assert list(cols.item_id) == ["c", "b", "a", "x"]  # by time, then by insertion order
    assert list(cols.type) == ["view", "rating", "like", "like"]
    assert cols.user_id.dtype == object and cols.timestamp.dtype == np.float64
    assert cols.value.dtype == np.float64 and cols.seq.dtype == np.int64
    assert cols.value[1] == 4.5 and np.isnan(cols.value[0])
    assert list(cols.timestamp) == [1.0, 2.0, 2.0, 5.0]
    last = store.last_seq()
    assert last == cols.seq.max()
    store.append(ev("a", "new", 0))
    newer = store.export(since_seq=last)
    assert list(newer.item_id) == ["new"] and len(store.export(since_seq=store.last_seq())) == 0
    empty = SQLiteEventStore(":memory:").export()
    assert len(empty) == 0 and empty.seq.dtype == np.int64 and empty.value.dtype == np.float64


def test_fingerprint_follows_content(store):
    empty = store.fingerprint()
    assert store.last_seq() == 0
    store.append([ev("u", "a", 1), ev("v", "b", 2)])
    one = store.fingerprint()
    assert one != empty and one == store.fingerprint()
    store.append(ev("u", "a", 1))  # a duplicate changes nothing
    assert store.fingerprint() == one
    store.forget("v")
    store.append(ev("v", "b", 2))  # same count and span as before, but a new seq
    assert store.fingerprint() != one


def test_sqlite_errors_become_store_errors(tmp_path):
    path = tmp_path / "e.db"
    s = SQLiteEventStore(path)
    s.close()
    with pytest.raises(StoreError, match=r"cannot append events.*closed") as info:
        s.append(ev("u", "a", 1))
    assert str(path) in str(info.value)
    for call in (lambda: s.history("u"), s.export, s.fingerprint, lambda: s.forget("u")):
        with pytest.raises(StoreError, match=str(path)):
            call()
