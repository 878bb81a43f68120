"""The service: one object, built at start-up from settings, that REST, gRPC, the web page and
the CLI adapt without logic of their own.

Every operation takes the caller (:class:`~mosaicrec.serving.auth.Principal`), the collection
name and a typed request, checks the scope, the tenant and the limits, and returns a typed
response. Errors are the project's own (:mod:`mosaicrec.errors`); the adapters map them to
HTTP statuses and gRPC codes in one place each.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mosaicrec.engine.user_model import Interaction
from mosaicrec.errors import (
    InputError,
    NotFoundError,
    PayloadTooLargeError,
    RequestError,
    UnknownItemError,
)
from mosaicrec.serving import schemas as s
from mosaicrec.serving.auth import ADMIN, KeyRing, Principal, Scope
from mosaicrec.serving.collection import CollectionHandle
from mosaicrec.serving.items import ItemWriter
from mosaicrec.serving.settings import Settings

__all__ = ["RecommendationService"]

T = TypeVar("T")


class RecommendationService:
    """Recommend, record events, search, keep the catalogue current, forget users, train."""

    def __init__(self, settings: Settings, keys: KeyRing | None = None) -> None:
        self.settings = settings
        self.keys = keys if keys is not None else KeyRing.load(settings.keys_path)
        self._handles: dict[tuple[str, str], CollectionHandle] = {}
        self._lock = threading.Lock()
        self._busy: dict[str, str] = {}  # operation id -> reason the service is not ready
        self.status = "starting"
        self.items = ItemWriter(self)
        self.observers: list[Callable[[str, dict[str, float]], None]] = []  # stage timings

    # -- who, where ---------------------------------------------------------------------------
    def authenticate(self, key: str | None) -> Principal:
        if not self.settings.auth:
            return ADMIN
        return self.keys.authenticate(key)

    def collection(self, who: Principal, name: str, scope: Scope) -> CollectionHandle:
        """The caller's collection ``name`` (scope checked first); another tenant's collection
        is reported as not found, so its existence does not leak."""
        who.require(scope)
        if name not in self.settings.tenants.get(who.tenant, []):
            raise NotFoundError(f"collection {name!r} not found")
        key = (who.tenant, name)
        with self._lock:
            handle = self._handles.get(key)
            if handle is None:
                handle = self._handles[key] = CollectionHandle(self.settings, *key)
        return handle

    def collections(self, who: Principal) -> list[str]:
        who.require("read")
        return list(self.settings.tenants.get(who.tenant, []))

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Load every collection's models and encoders; ready afterwards."""
        with self.busy("loading models"):
            for tenant, names in self.settings.tenants.items():
                for name in names:
                    self.collection(Principal("start", tenant, frozenset({"read"})), name,
                                    "read").warm_up()
        self.status = "ok"

    def busy(self, reason: str) -> Any:
        service = self

        class _Busy:
            def __enter__(self) -> None:
                self.key = f"{reason}#{id(self)}"
                service._busy[self.key] = reason

            def __exit__(self, *exc: object) -> None:
                service._busy.pop(self.key, None)

        return _Busy()

    def health(self) -> s.Health:
        reasons = sorted(set(self._busy.values()))
        if self.status == "starting" and not reasons:
            reasons = ["not started"]
        ready = self.status == "ok" and not reasons
        status = self.status if self.status != "ok" else ("busy" if reasons else "ok")
        return s.Health(status=status, ready=ready, reasons=reasons)  # type: ignore[arg-type]

    def close(self) -> None:
        self.status = "stopping"
        with self._lock:
            for handle in self._handles.values():
                with handle.write_lock:
                    handle.close()
            self._handles.clear()

    # -- reads --------------------------------------------------------------------------------
    def recommend(self, who: Principal, name: str, req: s.RecommendRequest,
                  ) -> s.RecommendResponse:
        h = self.collection(who, name, "read")
        self._check_recommend(h, req)
        return self._recommended(name, req, h.recommender.recommend(
            req.user_id, req.n, req.filter, **_list_options(req)))

    def recommend_cached(self, who: Principal, name: str, req: s.RecommendRequest,
                         ) -> s.RecommendResponse | None:
        """The answer to ``recommend`` when the result cache holds it, else None (also while
        the collection is still loading). Never computes a list, so an adapter may call it on
        its event loop and hand only misses to a worker thread."""
        h = self.collection(who, name, "read")
        recommender = h.loaded_recommender
        if recommender is None:  # opening it is blocking work: the caller's thread does it
            return None
        self._check_recommend(h, req)
        recs = recommender.cached(req.user_id, req.n, req.filter, **_list_options(req))
        return None if recs is None else self._recommended(name, req, recs)

    def _check_recommend(self, h: CollectionHandle, req: s.RecommendRequest) -> None:
        self._limit("n", req.n, self.settings.limits.max_n, RequestError)
        self._text(req.prompt, "prompt")
        if req.filter is not None:
            self._check_filter(h, req.filter)

    def _recommended(self, name: str, req: s.RecommendRequest, recs: Any,
                     ) -> s.RecommendResponse:
        for observe in self.observers:
            observe(name, recs.timings_ms)
        return s.RecommendResponse(
            user_id=req.user_id, reason=recs.reason, model_version=recs.model_version,
            timings_ms=recs.timings_ms, items=[
                s.Recommended(id=r.id, score=r.score, payload=_public(r.payload),
                              signals=r.signals,
                              explanation=_explanation(r.explanation))
                for r in recs])

    def search(self, who: Principal, name: str, req: s.SearchQuery) -> s.SearchResponse:
        from mosaicrec.engine.search import SearchRequest

        h = self.collection(who, name, "read")
        self._limit("limit", req.limit, self.settings.limits.max_n, RequestError)
        self._text(req.text, "text")
        for field in ("image", "audio"):
            data = getattr(req, field)
            if data is not None:
                self._limit(f"{field} upload bytes", len(data),
                            self.settings.limits.max_upload_bytes)
        self._check_filter(h, req.filter)
        self._check_space(h, req.space)
        query = SearchRequest(text=req.text, image=req.image, audio=req.audio,
                              item_id=req.item_id, space=req.space, limit=req.limit,
                              filter=req.filter, exclude_ids=req.exclude)
        hits = h.searcher.search(query)
        if not hits:
            self._check_space_has_vectors(h, req.space)
        return s.SearchResponse(items=[s.ScoredItem(id=x.id, score=x.score,
                                                    payload=_public(x.payload)) for x in hits])

    def similar(self, who: Principal, name: str, req: s.SimilarRequest) -> s.SearchResponse:
        return self.search(who, name, s.SearchQuery(item_id=req.item_id, space=req.space,
                                                    limit=req.limit, filter=req.filter))

    def item(self, who: Principal, name: str, item_id: str) -> s.ScoredItem:
        h = self.collection(who, name, "read")
        found = h.store.retrieve([item_id])
        if not found:
            raise UnknownItemError(item_id, f"collection {name!r}")
        return s.ScoredItem(id=item_id, score=1.0, payload=_public(found[0].payload))

    def history(self, who: Principal, name: str, user_id: str, limit: int = 50,
                ) -> list[Interaction]:
        h = self.collection(who, name, "read")
        self._limit("limit", limit, self.settings.limits.max_n, RequestError)
        return list(reversed(h.events.history(user_id, limit=limit)))

    def info(self, who: Principal, name: str) -> s.CollectionInfo:
        h = self.collection(who, name, "read")
        details = h.store.info()
        schema = h.store.schema
        model = h.model
        return s.CollectionInfo(
            tenant=h.tenant, collection=name, points=details.get("points", h.store.count()),
            events=h.events.count(),
            vectors={k: v.model_dump() for k, v in schema.vectors.items()},
            payload_indexes=dict(schema.payload_indexes),
            search_index=str(details.get("search_index", "unknown")),
            trained_model=None if model is None else model.manifest.model_dump(
                mode="json", include={"version", "created_at", "counts", "blend",
                                      "timings_s", "device"}) | {
                "validation_ndcg@10": model.manifest.validation.get("ndcg@10")},
            details={k: v for k, v in details.items() if k not in ("schema",)})

    # -- writes -------------------------------------------------------------------------------
    def record_events(self, who: Principal, name: str, req: s.RecordEventsRequest,
                      ) -> s.RecordEventsResponse:
        h = self.collection(who, name, "write")
        self._limit("events per request", len(req.events), self.settings.limits.max_batch)
        now = time.time()
        events, ids, rejected = [], [], []
        for i, e in enumerate(req.events):
            try:
                events.append(Interaction(e.user_id, e.item_id, e.type,
                                          now if e.timestamp is None else e.timestamp,
                                          e.value))
                ids.append(e.event_id)
            except (InputError, RequestError) as err:  # Interaction raises RequestError
                rejected.append(s.Rejection(index=i, id=e.item_id, reason=str(err)))
        written = h.events.append(events, event_ids=ids) if events else 0
        return s.RecordEventsResponse(written=written, duplicates=len(events) - written,
                                      rejected=rejected)

    def forget_user(self, who: Principal, name: str, user_id: str) -> s.ForgetReceipt:
        h = self.collection(who, name, "write")
        with h.write_lock:
            erased = h.events.forget(user_id)  # listeners drop cached profile and state
            cached = user_id in h.recommender.cache
        return s.ForgetReceipt(
            user_id=user_id, events_erased=erased, cached_state_dropped=not cached,
            trained_model="no per-user state: a user's factors and sequence state are "
                          "computed from their events at each request; the item vectors "
                          "learned with their events change at the next training")

    def train(self, who: Principal, name: str, req: s.TrainRequest | None = None,
              ) -> s.TrainResponse:
        from mosaicrec.engine.training import TrainingConfig, train

        h = self.collection(who, name, "admin")
        config = TrainingConfig.model_validate({"progress": False,
                                                **(req.settings if req else {})})
        with h.write_lock, self.busy(f"training {h.tenant}/{name}"):
            report = train(h.store, h.events, config, models_dir=h.models_dir,
                           collection=name)
            h.use_model(report.model)
        m = report.manifest
        return s.TrainResponse(version=m.version, validation_ndcg=m.validation["ndcg@10"],
                               validation_users=m.validation["users"], counts=m.counts,
                               blend=m.blend.weights, seconds=report.seconds)

    def upsert_items(self, who: Principal, name: str, req: s.UpsertItemsRequest,
                     ) -> s.UpsertItemsResponse:
        h = self.collection(who, name, "write")
        self._limit("items per request", len(req.items), self.settings.limits.max_batch)
        return self.items.upsert(h, req)

    def delete_items(self, who: Principal, name: str, req: s.DeleteItemsRequest,
                     ) -> s.DeleteItemsResponse:
        h = self.collection(who, name, "write")
        self._limit("ids per request", len(req.ids), self.settings.limits.max_batch)
        return self.items.delete(h, req)

    def index_catalogue(self, who: Principal, name: str, catalogue: Path, **options: Any,
                        ) -> Any:
        h = self.collection(who, name, "admin")
        return self.items.index_catalogue(h, catalogue, **options)

    def import_events(self, who: Principal, name: str, path: Path, mapping: Any = None, *,
                      quarantine: Path | None = None, progress: bool = False) -> Any:
        from mosaicrec.engine.event_import import import_events

        h = self.collection(who, name, "write")
        target = quarantine or h.events_path.with_suffix(".quarantine.jsonl")
        return import_events(h.events, path, mapping, progress=progress,
                             quarantine_path=target)

    # -- checks -------------------------------------------------------------------------------
    @staticmethod
    def _limit(what: str, value: int, limit: int,
               error: type[RequestError] = PayloadTooLargeError) -> None:
        if value > limit:
            raise error(f"{what}: {value} is over the limit of {limit}")

    def _text(self, text: str | None, field: str) -> None:
        if text is not None:
            self._limit(f"{field} characters", len(text), self.settings.limits.max_text_chars)

    @staticmethod
    def _check_filter(h: CollectionHandle, flt: Any) -> None:
        """Unknown payload fields are an error naming the fields that exist, not 'top 0'."""
        from mosaicrec.indexing.checks import check_filter

        check_filter(h.store.schema, flt, extra_fields=_SERVICE_FIELDS)

    @staticmethod
    def _check_space_has_vectors(h: CollectionHandle, space: str) -> None:
        """An empty result from a space no item has a vector in is an error, not 'top 0'."""
        from mosaicrec.indexing.checks import check_space_has_vectors

        check_space_has_vectors(h.store, space)

    @staticmethod
    def _check_space(h: CollectionHandle, space: str) -> None:
        if space not in h.store.schema.vectors:
            raise RequestError(f"space {space!r} is not in collection {h.name!r}; it has "
                               f"{sorted(h.store.schema.vectors)}")


_SERVICE_FIELDS = frozenset({"item_id", "behaviour"})  # written by the engine, filterable


def _list_options(req: s.RecommendRequest) -> dict[str, Any]:
    return {"diversity": req.diversity, "exclude": req.exclude, "prompt": req.prompt,
            "examples": req.examples, "explain": req.explain}


def _public(payload: dict[str, Any]) -> dict[str, Any]:
    """Payload as shown to callers: internal bookkeeping fields left out."""
    return {k: v for k, v in payload.items() if k not in ("content_hash",)}


def _explanation(e: Any) -> s.ExplanationOut | None:
    if e is None:
        return None
    return s.ExplanationOut(
        sentence=e.sentence, reason=e.reason, modalities=e.modalities, shares=e.shares,
        history=[{"id": c.item_id, "label": c.label, "share": c.share,
                  "modalities": c.modalities} for c in e.contributions])
