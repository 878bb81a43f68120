"""Item popularity, overall and recent ("trending"), as counts of distinct users.

:class:`Popularity` follows the event store (refreshed at most every ``refresh_s`` after a
change; erasures apply at the next request). :class:`FixedPopularity` holds counts computed
elsewhere (tuning on validation must not see the held-out events the event store holds).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["Popularity", "FixedPopularity"]

_DAY = 86400.0


class _Counts:
    """Lookups shared by both popularity sources."""

    counts: dict[str, int]
    recent: dict[str, int]
    catalogue_size: int
    # derived from the counts, rebuilt only when they change (a sort of every item per
    # request cost 20 ms at 100k items)
    _ranked: dict[bool, list[str]]
    _log_stats: tuple[float, float] | None

    def refresh(self, force: bool = False) -> None:  # pragma: no cover - overridden
        pass

    def count(self, ids: Sequence[str], *, recent: bool = False) -> np.ndarray:
        self.refresh()
        get = (self.recent if recent else self.counts).get
        return np.array([get(i, 0) for i in ids], np.float64)

    def z(self, ids: Sequence[str]) -> np.ndarray:
        """z-scored log(1 + count) against the whole catalogue (unused items count as 0)."""
        self.refresh()
        if self._log_stats is None:
            n = max(self.catalogue_size, len(self.counts), 1)
            logs = np.log1p(np.fromiter(self.counts.values(), np.float64, len(self.counts)))
            mean = logs.sum() / n
            var = np.square(logs).sum() / n - mean ** 2
            self._log_stats = mean, float(np.sqrt(var)) if var > 1e-12 else 1.0
        mean, std = self._log_stats
        return (np.log1p(self.count(ids)) - mean) / std

    def top(self, k: int, *, recent: bool = False) -> list[str]:
        """The ``k`` most used items, ties broken by id."""
        self.refresh()
        ranked = self._ranked.get(recent)
        if ranked is None:
            table = self.recent if recent else self.counts
            ranked = self._ranked[recent] = [
                i for i, _ in sorted(table.items(), key=lambda t: (-t[1], t[0]))]
        return ranked[:k]

    def _counts_changed(self) -> None:
        self._ranked, self._log_stats = {}, None


class FixedPopularity(_Counts):
    def __init__(self, counts: Mapping[str, int], recent: Mapping[str, int] | None = None,
                 catalogue_size: int = 0) -> None:
        self.counts, self.recent = dict(counts), dict(recent or {})
        self.catalogue_size = catalogue_size
        self._counts_changed()


class Popularity(_Counts):
    """Distinct users per item from the event store. ``positive_only`` leaves out skips,
    dislikes and low ratings; ``trend_days`` is the window of the recent counts, ending at the
    newest event in the store (so an old log has trends too)."""

    def __init__(self, events: Any, catalogue_size: int, refresh_s: float = 30.0, *,
                 positive_only: bool = True, trend_days: float = 14.0) -> None:
        self.events, self.catalogue_size, self.refresh_s = events, catalogue_size, refresh_s
        self.positive_only, self.trend_days = positive_only, trend_days
        self._version: int | None = None
        self._at = 0.0
        self._erased = False
        self.counts: dict[str, int] = {}
        self.recent: dict[str, int] = {}
        self._counts_changed()

    def on_change(self, user_id: str, kind: str) -> None:
        """Event-store listener: erasures apply at the next request; appends at most every
        ``refresh_s``."""
        if kind != "append":
            self._erased = True

    def refresh(self, force: bool = False) -> None:
        if self.events is None:
            return
        version = getattr(self.events, "version", None)
        stale = version != self._version or version is None
        due = time.monotonic() - self._at >= self.refresh_s or self._erased
        if not force and self._version is not None and not (stale and due):
            return
        self._erased = False
        self.counts = self.events.item_counts(positive_only=self.positive_only)
        newest = getattr(self.events, "newest_timestamp", lambda: None)()
        self.recent = {} if newest is None else self.events.item_counts(
            positive_only=self.positive_only, since=newest - self.trend_days * _DAY)
        self._version, self._at = version, time.monotonic()
        self._counts_changed()
