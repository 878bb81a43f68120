"""Interaction events: a small durable store per user (SQLite by default, pluggable).

Only the ids the caller gives are stored (user id, item id), with the event type, time, value
and an optional context label: no other personal data. ``forget(user)`` erases a user's events
and tells every listener (the profile cache) to drop what it derived from them.

Appends are idempotent, so a log can be imported twice or resumed after a crash: an event is
keyed by its caller-supplied ``event_id`` when it has one, else by its natural key (user, item,
type, timestamp, value); an event whose key is already stored is ignored.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from mosaicrec.engine.user_model import Interaction
from mosaicrec.errors import RequestError, StoreError

__all__ = ["EventColumns", "EventStore", "SQLiteEventStore"]

Listener = Callable[[str, str], None]  # (user_id, kind: "append" | "forget" | "delete_item")
Events = Interaction | Iterable[Interaction]
EventIds = Sequence[str | None] | None  # one per event; None = keyed by its natural key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    type TEXT NOT NULL,
    ts REAL NOT NULL,
    value REAL,
    context TEXT,
    event_id TEXT
);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id, ts, seq);
CREATE INDEX IF NOT EXISTS events_item ON events (item_id);
"""
# The two event keys. ``value IS NULL, IFNULL(value, 0)`` makes a missing value a key part
# (plain NULLs never collide in a UNIQUE index). Partial indexes: an event has one key only.
_KEYS = (
    "CREATE UNIQUE INDEX IF NOT EXISTS events_natural_key ON events "
    "(user_id, item_id, type, ts, value IS NULL, IFNULL(value, 0)) WHERE event_id IS NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS events_event_id ON events (event_id) "
    "WHERE event_id IS NOT NULL",
)
# Databases from before the keys may hold duplicates: keep the first of each key.
_DEDUPE = (
    "DELETE FROM events WHERE event_id IS NULL AND seq NOT IN (SELECT MIN(seq) FROM events "
    "WHERE event_id IS NULL GROUP BY user_id, item_id, type, ts, value)",
    "DELETE FROM events WHERE event_id IS NOT NULL AND seq NOT IN (SELECT MIN(seq) FROM events "
    "WHERE event_id IS NOT NULL GROUP BY event_id)",
)
_POSITIVE = "type NOT IN ('skip', 'dislike') AND (type != 'rating' OR value >= 3)"


@dataclass(frozen=True)
class EventColumns:
    """The log as column arrays (for training), sorted by (user_id, timestamp, seq).

    ``user_id``, ``item_id``, ``type``: object arrays of str; ``timestamp``, ``value``: float64
    (``value`` is NaN where an event has none); ``seq``: int64, the store's insertion order.
    """

    user_id: np.ndarray
    item_id: np.ndarray
    type: np.ndarray
    timestamp: np.ndarray
    value: np.ndarray
    seq: np.ndarray

    def __len__(self) -> int:
        return len(self.seq)


@runtime_checkable
class EventStore(Protocol):
    """What the engine needs from an event store."""

    @property
    def version(self) -> int: ...
    def append(self, events: Events, *, event_ids: EventIds = None) -> int: ...
    def history(
        self, user_id: str, *, limit: int | None = None, since: float | None = None
    ) -> list[Interaction]: ...
    def users(self) -> list[str]: ...
    def recent_users(self, limit: int) -> list[str]: ...
    def items_of(self, user_id: str) -> set[str]: ...
    def forget(self, user_id: str) -> int: ...
    def delete_item(self, item_id: str) -> int: ...
    def count(self, user_id: str | None = None) -> int: ...
    def item_counts(self, *, positive_only: bool = True,
                    since: float | None = None) -> dict[str, int]: ...
    def newest_timestamp(self) -> float | None: ...
    def user_items(self, *, positive_only: bool = True) -> dict[str, list[str]]: ...
    def export(self, since_seq: int | None = None) -> EventColumns: ...
    def last_seq(self) -> int: ...
    def fingerprint(self) -> str: ...
    def add_listener(self, listener: Listener) -> None: ...


class SQLiteEventStore:
    """Events in one SQLite file (WAL journal) or ``":memory:"``; one connection, one lock."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self.migrated_duplicates = self._migrate()
        except sqlite3.Error as err:
            raise StoreError(f"cannot open event store at {self.path}: {err}") from err
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._version = 0  # bumps on every change; lets callers cache derived counts

    def _migrate(self) -> int:
        """Bring a database of the old schema up to the keyed one, in one transaction; returns
        how many duplicate events were dropped (0 for a current database)."""
        db = self._db
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'events_natural_key'").fetchone():
            return 0
        removed = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            if "event_id" not in {row[1] for row in db.execute("PRAGMA table_info(events)")}:
                db.execute("ALTER TABLE events ADD COLUMN event_id TEXT")
            for sql in _DEDUPE:
                removed += db.execute(sql).rowcount
            for sql in _KEYS:
                db.execute(sql)
            db.commit()
        except BaseException:
            db.rollback()
            raise
        return removed

    @contextmanager
    def _conn(self, action: str, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """The connection under the lock (in a transaction for writes); any sqlite error
        becomes a ``StoreError`` naming the action and the database."""
        with self._lock:
            try:
                if write:
                    with self._db:
                        yield self._db
                else:
                    yield self._db
            except sqlite3.Error as err:
                raise StoreError(f"event store {self.path}: cannot {action}: {err}") from err

    @property
    def version(self) -> int:
        """Bumps on every change in this process; cheap cache key for derived counts."""
        return self._version

    def add_listener(self, listener: Listener) -> None:
        """``listener(user_id, kind)`` runs after that user's events change; ``kind`` is
        ``"append"``, ``"forget"`` or ``"delete_item"``."""
        self._listeners.append(listener)

    def _notify(self, users: Iterable[str], kind: str) -> None:
        self._version += 1
        for user in set(users):
            for listener in self._listeners:
                listener(user, kind)

    def append(self, events: Events, *, event_ids: EventIds = None) -> int:
        """Validate then store events (all or none); returns how many were newly written.

        Events whose key is already stored (or repeated in the batch) are ignored, so
        re-sending a batch is safe. ``event_ids`` (one per event, ``None`` = natural key)
        lets the caller key events itself."""
        batch = [events] if isinstance(events, Interaction) else list(events)
        for pos, e in enumerate(batch):
            if not isinstance(e, Interaction):
                raise RequestError(f"event {pos} is a {type(e).__name__}, not an Interaction")
        ids = [None] * len(batch) if event_ids is None else list(event_ids)
        if len(ids) != len(batch):
            raise RequestError(f"{len(ids)} event_ids for {len(batch)} events")
        for pos, key in enumerate(ids):
            if key is not None and (not isinstance(key, str) or not key):
                raise RequestError(f"event_id {pos} must be a non-empty string or None, "
                                   f"got {key!r}")
        rows = [(e.user_id, e.item_id, e.type, float(e.timestamp),
                 None if e.value is None else float(e.value), e.context, key)
                for e, key in zip(batch, ids, strict=True)]
        with self._conn("append events", write=True) as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO events (user_id, item_id, type, ts, value, context, "
                "event_id) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            written = db.total_changes - before
        if written:
            self._notify((e.user_id for e in batch), "append")
        return written

    def history(
        self, user_id: str, *, limit: int | None = None, since: float | None = None
    ) -> list[Interaction]:
        """The user's events, oldest first; ``limit`` keeps the newest ones. Unknown users
        have an empty history."""
        if limit is not None and limit < 0:
            raise RequestError(f"history limit must be >= 0, got {limit}")
        sql = "SELECT user_id, item_id, type, ts, value, context FROM events WHERE user_id = ?"
        args: list[object] = [user_id]
        if since is not None:
            sql += " AND ts >= ?"
            args.append(float(since))
        sql += " ORDER BY ts DESC, seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._conn(f"read the history of user {user_id!r}") as db:
            rows = db.execute(sql, args).fetchall()
        return [Interaction.from_store(*row) for row in reversed(rows)]

    def users(self) -> list[str]:
        with self._conn("list users") as db:
            return [r[0] for r in db.execute(
                "SELECT DISTINCT user_id FROM events ORDER BY user_id")]

    def recent_users(self, limit: int) -> list[str]:
        """Up to ``limit`` users, the most recently recorded first."""
        with self._conn("list recent users") as db:
            return [r[0] for r in db.execute(
                "SELECT user_id FROM events GROUP BY user_id ORDER BY MAX(seq) DESC LIMIT ?",
                (int(limit),))]

    def items_of(self, user_id: str) -> set[str]:
        """Every item the user has an event for (the whole history, for exclude-seen)."""
        with self._conn(f"list the items of user {user_id!r}") as db:
            return {r[0] for r in db.execute(
                "SELECT DISTINCT item_id FROM events WHERE user_id = ?", (user_id,))}

    def forget(self, user_id: str) -> int:
        """Erase every event of the user (and, through listeners, cached profiles)."""
        with self._conn(f"forget user {user_id!r}", write=True) as db:
            n = db.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
        self._notify([user_id], "forget")
        return n

    def delete_item(self, item_id: str) -> int:
        """Drop every event about an item that left the catalogue."""
        with self._conn(f"delete the events of item {item_id!r}", write=True) as db:
            users = [r[0] for r in db.execute(
                "SELECT DISTINCT user_id FROM events WHERE item_id = ?", (item_id,))]
            n = db.execute("DELETE FROM events WHERE item_id = ?", (item_id,)).rowcount
        self._notify(users, "delete_item")
        return n

    def count(self, user_id: str | None = None) -> int:
        with self._conn("count events") as db:
            if user_id is None:
                return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            return db.execute(
                "SELECT COUNT(*) FROM events WHERE user_id = ?", (user_id,)).fetchone()[0]

    def item_counts(
        self, *, positive_only: bool = True, types: Sequence[str] | None = None,
        since: float | None = None,
    ) -> dict[str, int]:
        """Distinct users per item: the popularity signal. ``positive_only`` leaves out skips,
        dislikes and ratings under 3; ``since`` counts only events at or after that time
        (trending items)."""
        sql = "SELECT item_id, COUNT(DISTINCT user_id) FROM events"
        where: list[str] = []
        args: list[object] = []
        if positive_only:
            where.append(_POSITIVE)
        if since is not None:
            where.append("ts >= ?")
            args.append(float(since))
        if types:
            where.append(f"type IN ({', '.join('?' * len(types))})")
            args.extend(types)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " GROUP BY item_id"
        with self._conn("count users per item") as db:
            return dict(db.execute(sql, args).fetchall())

    def user_items(self, *, positive_only: bool = True) -> dict[str, list[str]]:
        """Distinct items per user (for co-occurrence models)."""
        sql = "SELECT DISTINCT user_id, item_id FROM events"
        if positive_only:
            sql += " WHERE " + _POSITIVE
        out: dict[str, list[str]] = {}
        with self._conn("list items per user") as db:
            for user, item in db.execute(sql):
                out.setdefault(user, []).append(item)
        return out

    def export(self, since_seq: int | None = None) -> EventColumns:
        """Every event (or those with ``seq > since_seq``) as column arrays for training, in
        one query: no Interaction objects, so 100k events take a fraction of a second."""
        sql = "SELECT user_id, item_id, type, ts, value, seq FROM events"
        args: tuple[int, ...] = ()
        if since_seq is not None:
            sql += " WHERE seq > ?"
            args = (int(since_seq),)
        with self._conn("export events") as db:
            rows = db.execute(sql + " ORDER BY user_id, ts, seq", args).fetchall()
        cols = list(zip(*rows, strict=True)) if rows else [()] * 6
        n = len(rows)
        return EventColumns(
            user_id=np.array(cols[0], dtype=object),
            item_id=np.array(cols[1], dtype=object),
            type=np.array(cols[2], dtype=object),
            timestamp=np.fromiter(cols[3], dtype=np.float64, count=n),
            value=np.array(cols[4], dtype=np.float64),  # None -> NaN
            seq=np.fromiter(cols[5], dtype=np.int64, count=n),
        )

    def newest_timestamp(self) -> float | None:
        """The time of the newest event (None when empty): "now" for an offline log."""
        with self._conn("read the newest timestamp") as db:
            return db.execute("SELECT MAX(ts) FROM events").fetchone()[0]

    def last_seq(self) -> int:
        """The highest ``seq`` stored (0 when empty): pass it to ``export`` to read only what
        came later."""
        with self._conn("read the last sequence number") as db:
            return db.execute("SELECT IFNULL(MAX(seq), 0) FROM events").fetchone()[0]

    def fingerprint(self) -> str:
        """A cheap identity of the log's content: count, max seq and the time span. Seqs are
        never reused, so any append or delete changes it; a trained model stores it to tell
        whether it is stale."""
        with self._conn("fingerprint events") as db:
            stats = db.execute("SELECT COUNT(*), IFNULL(MAX(seq), 0), MIN(ts), MAX(ts) "
                               "FROM events").fetchone()
        return hashlib.sha256(repr(tuple(stats)).encode()).hexdigest()[:16]

    def close(self) -> None:
        with self._conn("close") as db:
            db.close()

    def __enter__(self) -> SQLiteEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
