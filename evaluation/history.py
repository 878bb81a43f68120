"""Index spaces and matrices shared by every method: who saw what, who liked what, when.

:class:`Catalogue` fixes the user and item index (every item with at least one interaction,
sorted by id). :class:`History` is what a method is fitted on: the interactions of one or more
split parts, as index arrays in chronological order per user, plus the binary positive matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mosaicrec.evaluation.split import Split

__all__ = ["Catalogue", "History", "build_history", "relevance_matrix"]


@dataclass(frozen=True)
class Catalogue:
    """Sorted user ids and item ids; positions in these arrays are the matrix indices."""

    users: np.ndarray
    items: np.ndarray

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Catalogue:
        return cls(np.sort(frame["user_id"].unique()), np.sort(frame["item_id"].unique()))

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def user_index(self, ids: pd.Series | np.ndarray) -> np.ndarray:
        return np.searchsorted(self.users, np.asarray(ids))

    def item_index(self, ids: pd.Series | np.ndarray) -> np.ndarray:
        return np.searchsorted(self.items, np.asarray(ids))


@dataclass
class History:
    """Interactions a method may learn from, chronological per user (ties by item id)."""

    catalogue: Catalogue
    user: np.ndarray  # user index per event
    item: np.ndarray  # item index per event
    rating: np.ndarray
    timestamp: np.ndarray
    positive: np.ndarray  # bool
    cold_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_users(self) -> int:
        return self.catalogue.n_users

    @property
    def n_items(self) -> int:
        return self.catalogue.n_items

    def _matrix(self, mask: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
        m = sp.csr_matrix(
            (values[mask], (self.user[mask], self.item[mask])),
            shape=(self.n_users, self.n_items), dtype=np.float32,
        )
        m.sum_duplicates()
        return m

    @cached_property
    def positives(self) -> sp.csr_matrix:
        """Binary user x item matrix of positives (repeats count once)."""
        m = self._matrix(self.positive, np.ones(len(self.user), dtype=np.float32))
        m.data[:] = 1.0
        return m

    @cached_property
    def seen(self) -> np.ndarray:
        """Dense bool user x item: every interaction, whatever its rating (excluded in ranking)."""
        out = np.zeros((self.n_users, self.n_items), dtype=bool)
        out[self.user, self.item] = True
        return out

    @cached_property
    def item_counts(self) -> np.ndarray:
        """Positives per item (the popularity signal)."""
        return np.asarray(self.positives.sum(axis=0)).ravel()

    @cached_property
    def interaction_counts(self) -> np.ndarray:
        """Interactions per item, whatever the rating (novelty, popularity bias)."""
        return np.bincount(self.item, minlength=self.n_items).astype(np.float64)

    def recency_positives(self, half_life: float | None) -> sp.csr_matrix:
        """Positives weighted ``0.5 ** (rank / half_life)``, rank 0 = the user's newest."""
        if half_life is None:
            return self.positives
        mask = self.positive
        users = self.user[mask]
        # Events are chronological per user, so the rank from the end is a reversed cumcount.
        rank = pd.Series(users).groupby(users).cumcount(ascending=False).to_numpy()
        weights = np.power(0.5, rank / half_life).astype(np.float32)
        m = sp.csr_matrix((weights, (users, self.item[mask])),
                          shape=(self.n_users, self.n_items), dtype=np.float32)
        m.sum_duplicates()
        return m


def build_history(split: Split, catalogue: Catalogue, parts: tuple[str, ...]) -> History:
    """The History of the given split parts (e.g. ``("train",)`` or ``("train", "val")``)."""
    frame = split.frame[split.frame["split"].isin(parts)]
    frame = frame.sort_values(["user_id", "timestamp", "item_id"], kind="mergesort")
    return History(
        catalogue=catalogue,
        user=catalogue.user_index(frame["user_id"]),
        item=catalogue.item_index(frame["item_id"]),
        rating=frame["rating"].to_numpy(dtype=np.float64),
        timestamp=frame["timestamp"].to_numpy(dtype=np.float64),
        positive=frame["positive"].to_numpy(dtype=bool),
        cold_items=catalogue.item_index(split.cold_items),
    )


def relevance_matrix(split: Split, catalogue: Catalogue, part: str) -> np.ndarray:
    """Dense bool user x item of the positives in one split part."""
    frame = split.frame[(split.frame["split"] == part) & split.frame["positive"]]
    out = np.zeros((catalogue.n_users, catalogue.n_items), dtype=bool)
    out[catalogue.user_index(frame["user_id"]), catalogue.item_index(frame["item_id"])] = True
    return out
