"""Evaluating what is served: the recommender's own lists, user by user.

The training part of the split (train + validation, new items' rows removed) goes into an event
store; ``mosaicrec train``'s code fits, tunes on its own validation window and publishes the
model into the collection; then every test user's list is what
:meth:`~mosaicrec.engine.Recommender.recommend` returns (seen items excluded by the engine).
The cold-item slice asks the same recommender with a filter that keeps only the held-out items.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mosaicrec.engine.events import SQLiteEventStore
from mosaicrec.engine.user_model import Interaction
from mosaicrec.evaluation.history import Catalogue
from mosaicrec.indexing.stores.base import ID_FIELD, Condition, Filter

__all__ = ["ServedLists", "event_store_from_split", "served_lists", "to_interactions"]


def to_interactions(frame: pd.DataFrame) -> list[Interaction]:
    """Rows (user, item, rating or type, timestamp) as events, ordered by user, time and item
    (the split's tie order, which the event store keeps as insertion order)."""
    frame = frame.sort_values(["user_id", "timestamp", "item_id"], kind="mergesort")
    typed = "event_type" in frame and frame["rating"].isna().all()
    out = []
    for row in frame.itertuples(index=False):
        if typed:
            out.append(Interaction(str(row.user_id), str(row.item_id), str(row.event_type),
                                   float(row.timestamp)))
        else:
            out.append(Interaction(str(row.user_id), str(row.item_id), "rating",
                                   float(row.timestamp), value=float(row.rating)))
    return out


def event_store_from_split(frame: pd.DataFrame, parts: Sequence[str] = ("train", "val"),
                           ) -> SQLiteEventStore:
    events = SQLiteEventStore(":memory:")
    events.append(to_interactions(frame[frame["split"].isin(parts)]))
    return events


@dataclass
class ServedLists:
    """Each user's served list as catalogue item indices (-1: an item outside the
    evaluation catalogue, or padding when the list is short)."""

    top: np.ndarray
    seconds: float
    latency_ms: dict[str, float] = field(default_factory=dict)  # p50 / p99 per call and stage


def served_lists(recommender: Any, catalogue: Catalogue, users: np.ndarray, k: int, *,
                 only_items: np.ndarray | None = None, progress: bool = False,
                 desc: str = "recommend") -> ServedLists:
    """Call ``recommend`` for every user (indices into ``catalogue.users``); ``only_items``
    restricts the list to those catalogue items (a payload filter on the item id)."""
    from tqdm.auto import tqdm

    index = {str(item): j for j, item in enumerate(catalogue.items)}
    flt = None
    if only_items is not None:
        flt = Filter(must=[Condition(field=ID_FIELD,
                                     any=[str(catalogue.items[j]) for j in only_items])])
    top = np.full((len(users), k), -1, dtype=np.int64)
    calls, stages = [], {}
    start = time.perf_counter()
    for row, u in enumerate(tqdm(users, desc=desc, unit="user", disable=not progress)):
        t0 = time.perf_counter()
        recs = recommender.recommend(str(catalogue.users[u]), n=k, filters=flt)
        calls.append((time.perf_counter() - t0) * 1e3)
        for name, ms in recs.timings_ms.items():
            stages.setdefault(name, []).append(ms)
        ids = [index.get(i, -1) for i in recs.ids]
        top[row, : len(ids)] = ids
    latency = {"p50": float(np.percentile(calls, 50)), "p99": float(np.percentile(calls, 99))}
    latency.update({f"{s} p50": float(np.percentile(v, 50)) for s, v in stages.items()})
    return ServedLists(top, time.perf_counter() - start, latency)
