"""Start-up precomputation: the most recently active users' lists are cached before ready."""

from __future__ import annotations

from pathlib import Path

from mosaicrec.serving import schemas as s
from mosaicrec.serving.auth import ADMIN
from mosaicrec.serving.service import RecommendationService
from mosaicrec.serving.settings import load_settings

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def test_start_precomputes_the_lists_of_the_most_recent_users(tmp_path: Path) -> None:
    first = RecommendationService(load_settings(data_dir=tmp_path, profile="tiny"))
    first.index_catalogue(ADMIN, "items", SAMPLE / "catalogue.csv", profile="tiny")
    first.import_events(ADMIN, "items", SAMPLE / "events.csv")
    events = first.collection(ADMIN, "items", "read").events
    recent, older = events.recent_users(2), events.users()
    assert len(recent) == 2 and set(recent) < set(older)
    first.close()

    service = RecommendationService(load_settings(data_dir=tmp_path, profile="tiny",
                                                  warm_users=2, warm_n=5))
    service.start()
    try:
        def timings(user: str, n: int = 5) -> dict[str, float]:
            return service.recommend(ADMIN, "items", s.RecommendRequest(
                user_id=user, n=n)).timings_ms

        assert all(timings(u) == {"cached": 0.0} for u in recent)
        other = next(u for u in older if u not in recent)
        assert "history" in timings(other)  # not precomputed
        assert "history" in timings(recent[0], n=6)  # another request computes
    finally:
        service.close()


def test_recommend_cached_answers_only_what_the_cache_holds(tmp_path: Path) -> None:
    """The event-loop path: None until a list is computed, then the very answer `recommend`
    gives; an event of the user makes it None again (freshness)."""
    service = RecommendationService(load_settings(data_dir=tmp_path, profile="tiny"))
    service.index_catalogue(ADMIN, "items", SAMPLE / "catalogue.csv", profile="tiny")
    service.import_events(ADMIN, "items", SAMPLE / "events.csv")
    try:
        req = s.RecommendRequest(user_id="ana", n=5)
        assert service.recommend_cached(ADMIN, "items", req) is None  # nothing loaded yet
        computed = service.recommend(ADMIN, "items", req)
        hit = service.recommend_cached(ADMIN, "items", req)
        assert hit is not None and hit.timings_ms == {"cached": 0.0}
        assert [i.id for i in hit.items] == [i.id for i in computed.items]
        assert service.recommend_cached(ADMIN, "items", s.RecommendRequest(
            user_id="ana", n=5, diversity=0.5)) is None  # other options: another list
        service.record_events(ADMIN, "items", s.RecordEventsRequest(events=[s.EventIn(
            user_id="ana", item_id=computed.items[0].id, type="like")]))
        assert service.recommend_cached(ADMIN, "items", req) is None
    finally:
        service.close()
