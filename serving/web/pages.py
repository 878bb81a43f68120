"""The pages: home, search, item, user (with like / dislike), collection.

Each handler turns the query string or form into the service's typed request, calls the
service and renders a template; no logic of its own. Errors become error pages
(:func:`~mosaicrec.serving.web.render.html_errors`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mosaicrec.errors import MosaicError, RequestError, UnknownItemError
from mosaicrec.indexing.stores.base import Condition, Filter
from mosaicrec.serving import schemas as s
from mosaicrec.serving.auth import Principal
from mosaicrec.serving.rest.deps import Service
from mosaicrec.serving.service import RecommendationService
from mosaicrec.serving.web.render import html_errors, render
from mosaicrec.serving.web.session import WebCaller

__all__ = ["router"]

SPACES = ("fused", "text", "image", "audio")
RESULTS, NEAR, RECOMMENDED, HISTORY = 24, 8, 12, 24

router = APIRouter(include_in_schema=False)


def _spaces(info: s.CollectionInfo) -> list[str]:
    return [space for space in SPACES if space in info.vectors]


@router.get("/")
@html_errors
def home(request: Request, who: WebCaller) -> Response:
    return render(request, "home.html", who=who)


@router.get("/c/{collection}")
@html_errors
def collection_page(request: Request, collection: str, svc: Service, who: WebCaller,
                    ) -> Response:
    info = svc.info(who, collection)
    return render(request, "collection.html", who=who, collection=collection, info=info)


# -- search -----------------------------------------------------------------------------------
def _filter(indexes: dict[str, str], params: Any) -> tuple[Filter | None, dict[str, str]]:
    """The search form's filter fields (``f.<field>``, ``f.<field>.min`` / ``.max``) as a
    payload filter; also what the form shows back."""
    must, shown = [], {}
    for field, kind in indexes.items():
        if kind in ("integer", "float"):
            bounds = {}
            for end, op in (("min", "gte"), ("max", "lte")):
                value = (params.get(f"f.{field}.{end}") or "").strip()
                if value:
                    shown[f"{field}.{end}"] = value
                    try:
                        bounds[op] = float(value)
                    except ValueError:
                        raise RequestError(f"filter {field} {end}: {value!r} is not a "
                                             "number") from None
            if bounds:
                must.append(Condition(field=field, **bounds))
            continue
        value = (params.get(f"f.{field}") or "").strip()
        if value:
            shown[field] = value
            match: Any = value.lower() == "true" if kind == "bool" else value
            must.append(Condition(field=field, match=match))
    return (Filter(must=must) if must else None), shown


@router.get("/c/{collection}/search")
@html_errors
def search_page(request: Request, collection: str, svc: Service, who: WebCaller,
                q: str = "", space: str = "fused") -> Response:
    info = svc.info(who, collection)
    flt, shown = _filter(info.payload_indexes, request.query_params)
    results = None
    if q.strip():
        query = s.SearchQuery.model_validate({"text": q.strip(), "space": space,
                                              "limit": RESULTS, "filter": flt})
        results = svc.search(who, collection, query).items
    return render(request, "search.html", who=who, collection=collection, q=q, space=space,
                  spaces=_spaces(info), indexes=info.payload_indexes, shown=shown,
                  results=results)


# -- item -------------------------------------------------------------------------------------
@router.get("/c/{collection}/items/{item_id:path}")
@html_errors
def item_page(request: Request, collection: str, item_id: str, svc: Service,
              who: WebCaller) -> Response:
    item = svc.item(who, collection, item_id)
    info = svc.info(who, collection)
    near: dict[str, list[s.ScoredItem] | str] = {}
    for space in _spaces(info):
        try:
            near[space] = svc.similar(who, collection, s.SimilarRequest(
                item_id=item_id, space=space, limit=NEAR)).items  # type: ignore[arg-type]
        except MosaicError as err:  # e.g. the item has no audio: say so in that column
            near[space] = str(err)
    return render(request, "item.html", who=who, collection=collection, item=item, near=near)


# -- user -------------------------------------------------------------------------------------
@router.get("/c/{collection}/users")
@html_errors
def user_lookup(request: Request, collection: str, svc: Service, who: WebCaller,
                user_id: str = "") -> Response:
    svc.collection(who, collection, "read")  # 404 for another tenant's collection
    if user_id.strip():
        return RedirectResponse(f"/c/{quote(collection, safe='')}/users/"
                                f"{quote(user_id.strip(), safe='')}", status_code=303)
    return render(request, "user_lookup.html", who=who, collection=collection)


def _lists(svc: RecommendationService, who: Principal, collection: str, user_id: str,
           ) -> dict[str, Any]:
    """The user's history (newest first, with each item) and recommendations."""
    events = svc.history(who, collection, user_id, HISTORY)
    items: dict[str, s.ScoredItem | None] = {}
    for event in events:
        if event.item_id not in items:
            try:
                items[event.item_id] = svc.item(who, collection, event.item_id)
            except UnknownItemError:  # deleted since
                items[event.item_id] = None
    recs = svc.recommend(who, collection, s.RecommendRequest(user_id=user_id, n=RECOMMENDED))
    return {"history": [(e, items[e.item_id]) for e in events], "recs": recs,
            "can_write": bool({"write", "admin"} & who.scopes)}


@router.get("/c/{collection}/users/{user_id}")
@html_errors
def user_page(request: Request, collection: str, user_id: str, svc: Service,
              who: WebCaller) -> Response:
    return render(request, "user.html", who=who, collection=collection, user_id=user_id,
                  **_lists(svc, who, collection, user_id))


@router.post("/c/{collection}/users/{user_id}/events")
@html_errors
def feedback(request: Request, collection: str, user_id: str, svc: Service, who: WebCaller,
             item_id: Annotated[str, Form()],
             type: Annotated[Literal["like", "dislike"], Form()]) -> Response:
    """Like or dislike: record the event, then answer with the refreshed lists (the page's
    script swaps them in) or, without script, send the browser back to the user page."""
    svc.record_events(who, collection, s.RecordEventsRequest(events=[
        s.EventIn(user_id=user_id, item_id=item_id, type=type)]))
    if request.headers.get("x-requested-with") != "fetch":
        return RedirectResponse(f"/c/{quote(collection, safe='')}/users/"
                                f"{quote(user_id, safe='')}", status_code=303)
    return render(request, "_lists.html", collection=collection, user_id=user_id,
                  **_lists(svc, who, collection, user_id))
