"""What behaviour models learn from and score against.

:class:`TrainingData` is an event log turned into index space: the items that have at least one
event (the model's *warm* items, in a fixed order), and per user the chronological sequence of
item rows with a positive flag. :class:`UserHistory` is one user's events at request time in
the same index space, so the models score a live history exactly as they scored during tuning.
Items a model has never seen get row ``-1``: they are *new*, and only the content map can score
them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from mosaicrec.config import StrictModel
from mosaicrec.engine.user_model import Interaction

__all__ = ["ItemIndex", "PositiveRule", "TrainingData", "UserHistory"]


class PositiveRule(StrictModel):
    """Which events count as positive feedback (what the models learn to predict)."""

    rating_threshold: float = Field(4.0, description="a rating >= this is positive")
    types: list[str] = Field(
        default_factory=lambda: ["view", "click", "like", "purchase"],
        description="event types that are positive (ratings go by the threshold)")

    def flags(self, types: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Positive flag per event, from column arrays of types and values (NaN = none)."""
        types = np.asarray(types, dtype=object)
        rated = types == "rating"
        with np.errstate(invalid="ignore"):
            by_rating = rated & (np.asarray(values, np.float64) >= self.rating_threshold)
        return by_rating | (~rated & np.isin(types, self.types))

    def is_positive(self, event: Interaction) -> bool:
        if event.type == "rating":
            return event.value is not None and event.value >= self.rating_threshold
        return event.type in self.types


class ItemIndex:
    """Catalogue ids <-> model rows. Unknown ids map to -1."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids: list[str] = [str(i) for i in ids]
        self._row = {item: k for k, item in enumerate(self.ids)}
        if len(self._row) != len(self.ids):
            raise ValueError("item ids must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item: object) -> bool:
        return item in self._row

    def row(self, item: str) -> int:
        return self._row.get(item, -1)

    def rows(self, items: Sequence[str]) -> np.ndarray:
        get = self._row.get
        return np.array([get(i, -1) for i in items], np.int64)


@dataclass
class UserHistory:
    """One user's events, oldest first, in a model's index space."""

    item_ids: list[str]
    rows: np.ndarray  # int64, -1 for items the model has not seen
    positive: np.ndarray  # bool

    @classmethod
    def from_events(cls, events: Sequence[Interaction], items: ItemIndex,
                    rule: PositiveRule) -> UserHistory:
        ordered = sorted(events, key=lambda e: e.timestamp)  # stable: equal times keep order
        ids = [e.item_id for e in ordered]
        return cls(ids, items.rows(ids), np.array([rule.is_positive(e) for e in ordered], bool))

    @property
    def known(self) -> np.ndarray:
        """Rows of the events on items the model knows (all events, chronological)."""
        return self.rows[self.rows >= 0]

    @property
    def known_positive(self) -> np.ndarray:
        """Rows of the positive events on known items, chronological."""
        return self.rows[(self.rows >= 0) & self.positive]


@dataclass
class TrainingData:
    """An event log in index space. ``sequences[u]`` holds user ``users[u]``'s item rows in
    time order (ties by the store's insertion order); ``positive[u]`` flags each event."""

    items: ItemIndex
    users: list[str]
    sequences: list[np.ndarray]
    positive: list[np.ndarray]
    # the raw event fields per user, aligned with ``sequences`` (to rebuild Interactions)
    types: list[np.ndarray]
    timestamps: list[np.ndarray]
    values: list[np.ndarray]

    @classmethod
    def from_columns(cls, user_id: np.ndarray, item_id: np.ndarray, type_: np.ndarray,
                     timestamp: np.ndarray, value: np.ndarray, rule: PositiveRule,
                     ) -> TrainingData:
        """From event columns already sorted by (user, time, insertion order)."""
        user_id = np.asarray(user_id, dtype=object)
        item_id = np.asarray(item_id, dtype=object)
        type_ = np.asarray(type_, dtype=object)
        timestamp = np.asarray(timestamp, np.float64)
        value = np.asarray(value, np.float64)
        positive = rule.flags(type_, value)
        items = ItemIndex(sorted(set(item_id.tolist())))
        rows = items.rows(item_id.tolist())
        starts = np.flatnonzero(np.r_[True, user_id[1:] != user_id[:-1]]) if len(user_id) \
            else np.zeros(0, np.int64)
        cuts = list(zip(starts, np.r_[starts[1:], len(user_id)], strict=True))
        return cls(items, [str(user_id[a]) for a, _ in cuts],
                   [rows[a:b] for a, b in cuts], [positive[a:b] for a, b in cuts],
                   [type_[a:b] for a, b in cuts], [timestamp[a:b] for a, b in cuts],
                   [value[a:b] for a, b in cuts])

    def events_of(self, u: int) -> list[Interaction]:
        """User ``u``'s events as :class:`Interaction` objects, oldest first."""
        ids = self.items.ids
        return [Interaction(self.users[u], ids[r], str(t), float(ts),
                            None if np.isnan(v) else float(v))
                for r, t, ts, v in zip(self.sequences[u], self.types[u], self.timestamps[u],
                                       self.values[u], strict=True)]

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_events(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    def _coo(self, weights: list[np.ndarray] | None = None, positive_only: bool = True,
             ) -> sp.csr_matrix:
        rows, cols, vals = [], [], []
        for u, (seq, pos) in enumerate(zip(self.sequences, self.positive, strict=True)):
            keep = pos if positive_only else np.ones(len(seq), bool)
            rows.append(np.full(int(keep.sum()), u))
            cols.append(seq[keep])
            vals.append(np.ones(int(keep.sum()), np.float32) if weights is None
                        else weights[u])
        m = sp.csr_matrix(
            (np.concatenate(vals) if vals else np.zeros(0, np.float32),
             (np.concatenate(rows) if rows else np.zeros(0, np.int64),
              np.concatenate(cols) if cols else np.zeros(0, np.int64))),
            shape=(self.n_users, self.n_items), dtype=np.float32)
        m.sum_duplicates()
        return m

    @cached_property
    def positives(self) -> sp.csr_matrix:
        """Binary users x items matrix of positives (repeats count once)."""
        m = self._coo()
        m.data[:] = 1.0
        return m

    @cached_property
    def interactions(self) -> sp.csr_matrix:
        """Binary users x items matrix of every event, whatever its type or rating."""
        m = self._coo(positive_only=False)
        m.data[:] = 1.0
        return m

    @cached_property
    def interaction_counts(self) -> np.ndarray:
        """Distinct users per item over every event, whatever its type (popularity)."""
        return np.asarray(self.interactions.sum(axis=0)).ravel()

    def positive_sequences(self) -> list[np.ndarray]:
        return [seq[pos] for seq, pos in zip(self.sequences, self.positive, strict=True)]

    def holdout(self, k: int, min_events: int) -> tuple[TrainingData, list[np.ndarray]]:
        """Temporal validation split: each user with at least ``min_events`` events gives their
        last ``k`` events to validation. Returns the reduced data and, per user, the rows of
        their held-out positives (empty for users who keep everything)."""
        keep, targets = [], []
        for seq, p in zip(self.sequences, self.positive, strict=True):
            cut = len(seq) - k if len(seq) >= min_events else len(seq)
            keep.append(cut)
            targets.append(np.unique(seq[cut:][p[cut:]]))
        parts = [[arr[:c] for arr, c in zip(field, keep, strict=True)]
                 for field in (self.sequences, self.positive, self.types, self.timestamps,
                               self.values)]
        return TrainingData(self.items, list(self.users), *parts), targets
