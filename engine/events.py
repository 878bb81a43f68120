"""Interaction events: a small durable store per user (SQLite by default, pluggable).

Only the ids the caller gives are stored (user id, item id), with the event type, time, value
and an optional context label: no other personal data. ``forget(user)`` erases a user's events
and tells every listener (the profile cache) to drop what it derived from them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from mosaicrec.engine.user_model import Interaction
from mosaicrec.errors import RequestError, StoreError

__all__ = ["EventStore", "SQLiteEventStore"]

Listener = Callable[[str, str], None]  # (user_id, kind: "append" | "forget" | "delete_item")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    type TEXT NOT NULL,
    ts REAL NOT NULL,
    value REAL,
    context TEXT
);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id, ts, seq);
CREATE INDEX IF NOT EXISTS events_item ON events (item_id);
"""


@runtime_checkable
class EventStore(Protocol):
    """What the engine needs from an event store."""

    def append(self, events: Interaction | Iterable[Interaction]) -> int: ...

    def history(
        self, user_id: str, *, limit: int | None = None, since: float | None = None
    ) -> list[Interaction]: ...

    def users(self) -> list[str]: ...

    def items_of(self, user_id: str) -> set[str]: ...

    def forget(self, user_id: str) -> int: ...

    def delete_item(self, item_id: str) -> int: ...

    def count(self, user_id: str | None = None) -> int: ...

    def item_counts(self, *, positive_only: bool = True) -> dict[str, int]: ...

    def user_items(self, *, positive_only: bool = True) -> dict[str, list[str]]: ...

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
        except sqlite3.Error as err:
            raise StoreError(f"cannot open event store at {self.path}: {err}") from err
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._version = 0  # bumps on every change; lets callers cache derived counts

    @property
    def version(self) -> int:
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

    def append(self, events: Interaction | Iterable[Interaction]) -> int:
        """Validate then store events (all or none); returns how many were written."""
        batch = [events] if isinstance(events, Interaction) else list(events)
        for pos, e in enumerate(batch):
            if not isinstance(e, Interaction):
                raise RequestError(f"event {pos} is a {type(e).__name__}, not an Interaction")
        rows = [(e.user_id, e.item_id, e.type, float(e.timestamp),
                 None if e.value is None else float(e.value), e.context) for e in batch]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO events (user_id, item_id, type, ts, value, context) "
                "VALUES (?, ?, ?, ?, ?, ?)", rows)
        self._notify((e.user_id for e in batch), "append")
        return len(rows)

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
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [Interaction(*row) for row in reversed(rows)]

    def users(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT DISTINCT user_id FROM events ORDER BY user_id")]

    def items_of(self, user_id: str) -> set[str]:
        """Every item the user has an event for (the whole history, for exclude-seen)."""
        with self._lock:
            return {r[0] for r in self._db.execute(
                "SELECT DISTINCT item_id FROM events WHERE user_id = ?", (user_id,))}

    def forget(self, user_id: str) -> int:
        """Erase every event of the user (and, through listeners, cached profiles)."""
        with self._lock, self._db:
            n = self._db.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
        self._notify([user_id], "forget")
        return n

    def delete_item(self, item_id: str) -> int:
        """Drop every event about an item that left the catalogue."""
        with self._lock, self._db:
            users = [r[0] for r in self._db.execute(
                "SELECT DISTINCT user_id FROM events WHERE item_id = ?", (item_id,))]
            n = self._db.execute("DELETE FROM events WHERE item_id = ?", (item_id,)).rowcount
        self._notify(users, "delete_item")
        return n

    def count(self, user_id: str | None = None) -> int:
        with self._lock:
            if user_id is None:
                return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            return self._db.execute(
                "SELECT COUNT(*) FROM events WHERE user_id = ?", (user_id,)).fetchone()[0]

    def item_counts(
        self, *, positive_only: bool = True, types: Sequence[str] | None = None
    ) -> dict[str, int]:
        """Distinct users per item: the popularity signal. ``positive_only`` leaves out skips,
        dislikes and ratings under 3."""
        sql = "SELECT item_id, COUNT(DISTINCT user_id) FROM events"
        where, args = [], []
        if positive_only:
            where.append("type NOT IN ('skip', 'dislike') AND (type != 'rating' OR value >= 3)")
        if types:
            where.append(f"type IN ({', '.join('?' * len(types))})")
            args.extend(types)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " GROUP BY item_id"
        with self._lock:
            return dict(self._db.execute(sql, args).fetchall())

    def user_items(self, *, positive_only: bool = True) -> dict[str, list[str]]:
        """Distinct items per user (for co-occurrence models)."""
        sql = "SELECT DISTINCT user_id, item_id FROM events"
        if positive_only:
            sql += " WHERE type NOT IN ('skip', 'dislike') AND (type != 'rating' OR value >= 3)"
        out: dict[str, list[str]] = {}
        with self._lock:
            for user, item in self._db.execute(sql):
                out.setdefault(user, []).append(item)
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SQLiteEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
