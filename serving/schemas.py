"""Typed requests and responses of the service: what REST, gRPC and the CLI exchange with it.

Requests derive from the strict base (unknown fields refused, invalid values raised as
:class:`~mosaicrec.errors.RequestError` naming the field); bounds that depend on settings
(``n``, batch and upload sizes) are checked by the service.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from mosaicrec.config import StrictModel
from mosaicrec.engine.user_model import InteractionType
from mosaicrec.errors import RequestError
from mosaicrec.indexing.stores.base import Filter

__all__ = [
    "CollectionInfo", "DeleteItemsRequest", "DeleteItemsResponse", "EventIn", "ExplanationOut",
    "ForgetReceipt", "Health", "ItemIn", "RecommendRequest", "RecommendResponse",
    "Recommended", "RecordEventsRequest", "RecordEventsResponse", "Rejection", "ScoredItem",
    "SearchQuery", "SearchResponse", "SimilarRequest", "TrainRequest", "TrainResponse",
    "UpsertItemsRequest", "UpsertItemsResponse",
]

Space = Literal["fused", "text", "image", "audio"]


def _base64(value: Any) -> Any:
    """Media bytes: raw bytes from Python and gRPC, base64 text from JSON (REST)."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError("must be base64-encoded bytes") from None
    return value


Media = Annotated[bytes, BeforeValidator(_base64),
                  WithJsonSchema({"type": "string", "contentEncoding": "base64"})]


class _Request(StrictModel):
    invalid_error = RequestError
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(_Request):
    user_id: str = Field(min_length=1, max_length=256)
    n: int = Field(10, ge=1)
    filter: Filter | None = None
    diversity: float | None = Field(None, ge=0, le=1, description="MMR diversity")
    exclude: list[str] = Field(default_factory=list, description="never recommend these")
    prompt: str | None = Field(None, description="steer the list with text")
    examples: list[str] = Field(default_factory=list, description="steer with example items")
    explain: bool = Field(True, description="build each item's explanation (the list is the "
                          "same without; leaving them out saves 1-2 ms a request)")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"user_id": "ana", "n": 5, "diversity": 0.2,
         "filter": {"must": [{"field": "category", "match": "ocean"}]}}]})


class EventIn(_Request):
    user_id: str = Field(min_length=1, max_length=256)
    item_id: str = Field(min_length=1, max_length=256)
    type: InteractionType
    timestamp: float | None = Field(None, description="unix seconds (default: now)")
    value: float | None = Field(None, description="the rating, for type 'rating'")
    event_id: str | None = Field(None, max_length=256, description="re-sent ids are ignored")


class RecordEventsRequest(_Request):
    events: list[EventIn] = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"events": [{"user_id": "ana", "item_id": "ocean-01", "type": "like"}]}]})


class Rejection(BaseModel):
    """One element of a batch that was not applied, and why."""

    index: int
    id: str | None = None
    reason: str


class RecordEventsResponse(BaseModel):
    written: int
    duplicates: int
    rejected: list[Rejection] = Field(default_factory=list)


class SearchQuery(_Request):
    """Exactly one of ``text``, ``image``, ``audio`` (bytes; base64 in JSON) or ``item_id``."""

    text: str | None = None
    image: Media | None = None
    audio: Media | None = None
    item_id: str | None = None
    space: Space = "fused"
    limit: int = Field(10, ge=1)
    filter: Filter | None = None
    exclude: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"text": "waves crashing on a beach", "space": "fused", "limit": 5}]})

    @model_validator(mode="after")
    def _one_query(self) -> SearchQuery:
        given = [k for k in ("text", "image", "audio", "item_id") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of text, image, audio or item_id "
                             f"(got {given or 'none'})")
        return self


class SimilarRequest(_Request):
    item_id: str = Field(min_length=1)
    space: Space = "fused"
    limit: int = Field(10, ge=1)
    filter: Filter | None = None


class ScoredItem(BaseModel):
    id: str
    score: float
    payload: dict[str, Any] = Field(default_factory=dict)


class SearchResponse(BaseModel):
    items: list[ScoredItem]


class ExplanationOut(BaseModel):
    sentence: str
    reason: str
    history: list[dict[str, Any]] = Field(default_factory=list)  # id, label, share, modalities
    modalities: dict[str, float] = Field(default_factory=dict)
    shares: dict[str, float] = Field(default_factory=dict)  # signal groups


class Recommended(BaseModel):
    id: str
    score: float
    payload: dict[str, Any] = Field(default_factory=dict)
    signals: dict[str, float] = Field(default_factory=dict)
    explanation: ExplanationOut | None = None


class RecommendResponse(BaseModel):
    user_id: str
    items: list[Recommended]
    reason: str
    model_version: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)


class ItemIn(_Request):
    """One catalogue item. Media: a URL, a path under the collection's media folder, or
    uploaded bytes (base64 in JSON)."""

    id: str = Field(min_length=1, max_length=256)
    title: str | None = None
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    image: str | None = None
    image_bytes: Media | None = None
    audio: str | None = None
    audio_bytes: Media | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class UpsertItemsRequest(_Request):
    items: list[ItemIn] = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"items": [{"id": "ocean-11", "title": "Night Swell",
                    "description": "Moonlit waves on a rocky shore.", "tags": ["ocean"],
                    "payload": {"category": "ocean", "year": 2024}}]}]})


class UpsertItemsResponse(BaseModel):
    upserted: list[str]
    rejected: list[Rejection] = Field(default_factory=list)


class DeleteItemsRequest(_Request):
    ids: list[str] = Field(min_length=1)


class DeleteItemsResponse(BaseModel):
    deleted: list[str]
    missing: list[str] = Field(default_factory=list)
    events_erased: int = 0


class ForgetReceipt(BaseModel):
    """What forgetting a user erased."""

    user_id: str
    events_erased: int
    cached_state_dropped: bool
    trained_model: str  # what the trained model keeps about the user


class TrainRequest(_Request):
    settings: dict[str, Any] = Field(default_factory=dict,
                                     description="overrides of the training settings")


class TrainResponse(BaseModel):
    version: str
    validation_ndcg: float
    validation_users: int
    counts: dict[str, int]
    blend: dict[str, float]
    seconds: float


class CollectionInfo(BaseModel):
    tenant: str
    collection: str
    points: int
    events: int
    vectors: dict[str, dict[str, Any]]
    payload_indexes: dict[str, str]
    search_index: str
    trained_model: dict[str, Any] | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Health(BaseModel):
    status: Literal["ok", "starting", "busy", "stopping"]
    ready: bool
    reasons: list[str] = Field(default_factory=list)
