"""Popularity follows the event store: rankings and z-scores are cached, never stale."""

from __future__ import annotations

from mosaicrec.engine import Interaction, SQLiteEventStore
from mosaicrec.engine.popularity import FixedPopularity, Popularity


def test_top_follows_new_events_after_refresh() -> None:
    events = SQLiteEventStore(":memory:")
    events.append([Interaction(f"u{u}", "a", "like", 1.0) for u in range(3)]
                  + [Interaction("u0", "b", "like", 2.0)])
    pop = Popularity(events, catalogue_size=3, refresh_s=0.0)
    assert pop.top(2) == ["a", "b"]
    z_before = pop.z(["a", "b", "c"])
    events.append([Interaction(f"v{u}", "b", "like", 3.0) for u in range(5)])
    assert pop.top(2) == ["b", "a"]  # refresh_s=0: every change is seen at once
    z_after = pop.z(["a", "b", "c"])
    assert z_after[1] > z_before[1] and z_after[1] > z_after[0]
    events.forget("u0")  # erasure applies at the next request
    assert pop.count(["a", "b"]).tolist() == [2.0, 5.0]


def test_ties_break_by_id_and_k_beyond_the_catalogue() -> None:
    pop = FixedPopularity({"b": 2, "a": 2, "c": 1}, {"c": 4})
    assert pop.top(10) == ["a", "b", "c"]
    assert pop.top(1, recent=True) == ["c"]
    top = pop.top(2)
    top.append("x")  # a caller's list is its own
    assert pop.top(3) == ["a", "b", "c"]
