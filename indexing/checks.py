"""Checks that turn searches which cannot match into clear errors, for the service to call
before a search: a filter on a payload field no point has, a search in a vector space that is
not in the collection or in which no item has a vector.
"""

from __future__ import annotations

from typing import Any

from mosaicrec.errors import RequestError
from mosaicrec.indexing.stores.base import ID_FIELD, CollectionSchema, Condition, Filter

__all__ = ["INDEXER_FIELDS", "check_filter", "check_space_has_vectors", "known_payload_fields"]

# Payload fields the bulk indexer writes on every point (besides the mapping's payload columns).
INDEXER_FIELDS = frozenset(
    {ID_FIELD, "content_hash", "modalities", "title", "text", "image", "audio"}
)


def known_payload_fields(schema: CollectionSchema) -> set[str]:
    """Fields a filter may name: recorded ones, indexed ones and the indexer's own."""
    return {*INDEXER_FIELDS, *schema.payload_indexes, *schema.payload_fields}


def check_filter(
    schema: CollectionSchema, flt: Filter | dict[str, Any] | None, *,
    extra_fields: set[str] | frozenset[str] = frozenset(),
) -> None:
    """``RequestError`` naming every payload field of ``flt`` the collection does not have and
    listing the ones it has; ``has_vector`` names are checked against the vector spaces.

    A collection from before fields were recorded (``payload_fields`` empty) is only checked
    for ``has_vector`` names: its unindexed fields are unknown.
    """
    if flt is None:
        return
    if not isinstance(flt, Filter):
        flt = Filter.model_validate(flt)
    conditions: list[Condition] = [*flt.must, *flt.must_not, *flt.should]
    spaces = [c.has_vector for c in conditions if c.has_vector is not None]
    absent_spaces = sorted({s for s in spaces if s not in schema.vectors})
    if absent_spaces:
        raise RequestError(
            f"filter tests has_vector for {_names(absent_spaces)}, which the collection does "
            f"not have; its vector spaces are: {_names(sorted(schema.vectors))}"
        )
    if not schema.payload_fields:
        return
    known = known_payload_fields(schema) | set(extra_fields)
    unknown = sorted({c.field for c in conditions if c.field is not None} - known)
    if unknown:
        word = "field" if len(unknown) == 1 else "fields"
        raise RequestError(
            f"filter on unknown payload {word} {_names(unknown)}: no item of the collection "
            f"has it; the payload fields are: {_names(sorted(known))}"
        )


def check_space_has_vectors(store: Any, space: str) -> None:
    """``RequestError`` when ``space`` is not a vector space of the collection, or when no item
    has a vector in it (e.g. a catalogue without audio, or every medium failed)."""
    schema: CollectionSchema = store.schema
    if space not in schema.vectors:
        raise RequestError(
            f"unknown vector space {space!r}; the collection has {_names(sorted(schema.vectors))}"
        )
    if store.count(Filter(must=[Condition(has_vector=space)])) == 0:
        with_vectors = [
            name for name in sorted(schema.vectors)
            if name != space and store.count(Filter(must=[Condition(has_vector=name)])) > 0
        ]
        raise RequestError(
            f"no item of the collection has a {space!r} vector, so a search there finds "
            f"nothing; spaces with vectors: {_names(with_vectors) or '(none)'}"
        )


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)
