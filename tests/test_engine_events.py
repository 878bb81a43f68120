"""The SQLite event store: append, history, erasure, deleted items, durability."""

from __future__ import annotations

import threading

import pytest

from mosaicrec.engine.events import EventStore, SQLiteEventStore
from mosaicrec.engine.user_model import Interaction, ProfileCache, UserProfile
from mosaicrec.errors import RequestError


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
