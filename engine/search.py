"""One request API for cross-modal and example search.

    searcher = Searcher.from_encoder_set(store, encoders)        # or Searcher(store, {...}, fuser)
    searcher.search(SearchRequest(text="a dog on a beach", space="image", limit=5))
    searcher.search(SearchRequest(item_id="movie-42", space="fused"))

Query encoders are injected and keyed ``"<input>-><space>"``: ``"text->text"`` (the text
encoder), ``"text->image"`` (CLIP's text tower), ``"text->audio"`` (CLAP's text tower),
``"image->image"`` and ``"audio->audio"``. A text query into ``fused`` encodes the text with
every text tower available and fuses the blocks, so it is compared with each item modality in
that modality's own space.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from mosaicrec.config import StrictModel
from mosaicrec.encoders.base import Encoder
from mosaicrec.encoders.fusion import Fuser
from mosaicrec.errors import ConfigError, RequestError, UnknownItemError
from mosaicrec.indexing.stores.base import Filter, Hit, VectorStore

__all__ = ["SearchRequest", "Searcher", "Space"]

Space = Literal["fused", "text", "image", "audio"]
_INPUTS = ("text", "image", "audio", "item_id")


class SearchRequest(StrictModel):
    """Exactly one query (text, image, audio or an item id), a target space, limit, filter."""

    invalid_error = RequestError

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    image: str | bytes | None = Field(None, description="image path or encoded bytes")
    audio: str | bytes | None = Field(None, description="audio path or encoded bytes")
    item_id: str | None = None
    space: Space = "fused"
    limit: int = Field(10, ge=1, le=1000)
    filter: Filter | None = None
    exclude_ids: list[str] = Field(default_factory=list)
    diversity: float | None = Field(None, ge=0, le=1, description="MMR diversity; None = off")

    @model_validator(mode="after")
    def _one_query(self) -> SearchRequest:
        given = [k for k in _INPUTS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(_INPUTS)} (got {given or 'none'})")
        if self.text is not None and not self.text.strip():
            raise ValueError("text query is empty")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in _INPUTS if getattr(self, k) is not None)


class Searcher:
    """Cross-modal and example search over one collection."""

    def __init__(
        self,
        store: VectorStore,
        query_encoders: Mapping[str, Encoder] | None = None,
        fuser: Fuser | None = None,
    ) -> None:
        self.store, self.fuser = store, fuser
        self.encoders = dict(query_encoders or {})
        bad = [k for k in self.encoders if k.split("->")[0] not in _INPUTS[:3]
               or k.split("->")[-1] not in ("text", "image", "audio") or "->" not in k]
        if bad:
            raise ConfigError(f"query encoder keys must look like 'text->image'; got {bad}")

    @classmethod
    def from_encoder_set(cls, store: VectorStore, encoders: Any) -> Searcher:
        """From an :class:`~mosaicrec.encoders.profiles.EncoderSet` (item and text towers)."""
        q = {f"text->{space}": enc for space, enc in encoders.text_queries.items()}
        q.update({f"{m}->{m}": enc for m, enc in encoders.items.items() if m != "text"})
        return cls(store, q, encoders.fuser)

    def search(self, request: SearchRequest | Mapping[str, Any]) -> list[Hit]:
        req = request if isinstance(request, SearchRequest) else SearchRequest(**request)
        if req.space not in self.store.schema.vectors:
            raise RequestError(f"space {req.space!r} is not in the collection; it has "
                               f"{sorted(self.store.schema.vectors)}")
        vector = self.query_vector(req)
        exclude = list(req.exclude_ids) + ([req.item_id] if req.item_id else [])
        if req.diversity:
            return self.store.mmr(vector, using=req.space, limit=req.limit,
                                  diversity=req.diversity,
                                  candidates_limit=max(100, 10 * req.limit), filter=req.filter,
                                  exclude_ids=exclude)
        return self.store.query(vector, using=req.space, limit=req.limit, filter=req.filter,
                                exclude_ids=exclude)

    def query_vector(self, req: SearchRequest) -> np.ndarray:
        """The request's query as a unit vector in ``req.space``."""
        if req.item_id is not None:
            records = self.store.retrieve([req.item_id], vectors=[req.space])
            if not records:
                raise UnknownItemError(req.item_id)
            if req.space not in records[0].vectors:
                raise RequestError(f"item {req.item_id!r} has no {req.space!r} vector")
            return records[0].vectors[req.space]
        kind, value = req.kind, getattr(req, req.kind)
        if req.space != "fused":
            return self._encode(kind, req.space, value)
        if self.fuser is None:
            raise ConfigError("searching the fused space needs the Fuser the items were fused "
                              "with")
        blocks = {m: self._encode(kind, m, value) for m in self.fuser.modalities
                  if f"{kind}->{m}" in self.encoders}
        if not blocks:
            raise ConfigError(f"no query encoder maps {kind} into any fused modality; "
                              f"configured: {sorted(self.encoders) or 'none'}")
        return self.fuser.fuse(blocks, key=kind)

    def text_vector(self, text: str, space: Space = "fused") -> np.ndarray:
        """Text -> query vector (usable as a Recommender ``prompt_encoder``)."""
        return self.query_vector(SearchRequest(text=text, space=space))

    def _encode(self, kind: str, space: str, value: Any) -> np.ndarray:
        enc = self.encoders.get(f"{kind}->{space}")
        if enc is None:
            raise ConfigError(f"no query encoder for {kind} -> {space}; configured: "
                              f"{sorted(self.encoders) or 'none'}")
        return np.asarray(enc.encode([value])[0], dtype=np.float32)
