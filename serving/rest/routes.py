"""One router per resource; each handler is one service call (run in FastAPI's thread pool,
so model and store work never blocks the event loop; a recommendation list the result cache
already holds is answered on the loop, as over gRPC)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from mosaicrec.serving import schemas as s
from mosaicrec.serving.auth import Principal
from mosaicrec.serving.rest.deps import Caller, Service
from mosaicrec.serving.service import RecommendationService

__all__ = ["routers"]

C = "/v1/collections/{collection}"
Medium = Literal["image", "audio"]

recommendations = APIRouter(prefix=C, tags=["recommendations"])


async def _recommend(svc: RecommendationService, who: Principal, collection: str,
                     req: s.RecommendRequest) -> s.RecommendResponse:
    cached = svc.recommend_cached(who, collection, req)
    if cached is not None:
        return cached
    return await run_in_threadpool(svc.recommend, who, collection, req)


@recommendations.post("/recommend", response_model=s.RecommendResponse)
async def recommend(collection: str, req: s.RecommendRequest, svc: Service, who: Caller):
    """Recommendations for a user: filters, n, diversity, exclusions, a prompt or examples."""
    return await _recommend(svc, who, collection, req)


@recommendations.get("/users/{user_id}/recommendations", response_model=s.RecommendResponse)
async def recommend_get(collection: str, user_id: str, svc: Service, who: Caller,
                        n: Annotated[int, Query(ge=1)] = 10,
                        diversity: Annotated[float | None, Query(ge=0, le=1)] = None):
    """Recommendations for a user (the short form, like Gorse's GET /api/recommend/{user})."""
    return await _recommend(svc, who, collection, s.RecommendRequest(
        user_id=user_id, n=n, diversity=diversity))


events = APIRouter(prefix=C, tags=["events"])


@events.post("/events", response_model=s.RecordEventsResponse)
def record_events(collection: str, req: s.RecordEventsRequest, svc: Service, who: Caller):
    """Record events (one or a batch); re-sent events are ignored, bad ones listed."""
    return svc.record_events(who, collection, req)


users = APIRouter(prefix=C, tags=["users"])


@users.delete("/users/{user_id}", response_model=s.ForgetReceipt)
def forget_user(collection: str, user_id: str, svc: Service, who: Caller):
    """Forget a user: their events and cached state are erased; a receipt says what."""
    return svc.forget_user(who, collection, user_id)


@users.get("/users/{user_id}/history")
def history(collection: str, user_id: str, svc: Service, who: Caller,
            limit: Annotated[int, Query(ge=1)] = 50) -> list[dict]:
    """The user's newest events, newest first."""
    return [e.__dict__ for e in svc.history(who, collection, user_id, limit)]


items = APIRouter(prefix=C, tags=["items"])


@items.put("/items", response_model=s.UpsertItemsResponse)
def upsert_items(collection: str, req: s.UpsertItemsRequest, svc: Service, who: Caller):
    """Insert or replace items (embedded with the collection's encoders)."""
    return svc.upsert_items(who, collection, req)


@items.post("/items/delete", response_model=s.DeleteItemsResponse)
def delete_items(collection: str, req: s.DeleteItemsRequest, svc: Service, who: Caller):
    """Delete items (and the events about them)."""
    return svc.delete_items(who, collection, req)


@items.get("/items/{item_id}", response_model=s.ScoredItem)
def get_item(collection: str, item_id: str, svc: Service, who: Caller):
    return svc.item(who, collection, item_id)


@items.get("/items/{item_id}/similar", response_model=s.SearchResponse)
def similar(collection: str, item_id: str, svc: Service, who: Caller,
            space: s.Space = "fused", limit: Annotated[int, Query(ge=1)] = 10):
    """Items near an item in a named space (fused, text, image, audio)."""
    return svc.similar(who, collection, s.SimilarRequest(item_id=item_id, space=space,
                                                         limit=limit))


search = APIRouter(prefix=C, tags=["search"])


@search.post("/search", response_model=s.SearchResponse)
def search_json(collection: str, req: s.SearchQuery, svc: Service, who: Caller):
    """Search by text, by image or audio (base64), or by item, in any named space."""
    return svc.search(who, collection, req)


@search.post("/search/upload", response_model=s.SearchResponse)
def search_upload(collection: str, svc: Service, who: Caller,
                  file: Annotated[UploadFile, File(description="an image or audio file")],
                  kind: Annotated[Medium, Query()] = "image",
                  space: s.Space = "fused", limit: Annotated[int, Query(ge=1)] = 10):
    """Search with an uploaded image or audio file (multipart)."""
    data = file.file.read(svc.settings.limits.max_upload_bytes + 1)
    return svc.search(who, collection, s.SearchQuery(**{kind: data}, space=space, limit=limit))


collections = APIRouter(prefix="/v1/collections", tags=["collections"])


@collections.get("")
def list_collections(svc: Service, who: Caller) -> list[str]:
    """The caller's tenant's collections."""
    return svc.collections(who)


@collections.get("/{collection}", response_model=s.CollectionInfo)
def info(collection: str, svc: Service, who: Caller):
    """Size, named vectors and encoders, search index state and the trained model."""
    return svc.info(who, collection)


@collections.post("/{collection}/train", response_model=s.TrainResponse)
def train(collection: str, svc: Service, who: Caller, req: s.TrainRequest | None = None):
    """Train on the collection's events and serve the tuned model (admin)."""
    return svc.train(who, collection, req)


health = APIRouter(tags=["health"])


@health.get("/health/live", response_model=s.Health)
def live(svc: Service):
    return svc.health().model_copy(update={"ready": svc.health().ready})


@health.get("/health/ready", response_model=s.Health)
def ready(svc: Service, response: Response):
    state = svc.health()
    if not state.ready:
        response.status_code = 503
    return state


routers = [recommendations, events, users, items, search, collections, health]
