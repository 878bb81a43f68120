"""The service layer: one object, built at start-up, that the CLI (and later REST and gRPC)
adapt. It owns the store handle and the encoders; adapters only parse and print."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.encoders.profiles import EncoderProfile, EncoderSet, load_profile
from mosaicrec.errors import RequestError, StoreError
from mosaicrec.indexing.catalogue import ColumnMapping, read_catalogue
from mosaicrec.indexing.indexer import BulkIndexer, IndexerConfig, IndexReport, collection_schema
from mosaicrec.indexing.stores import Filter, Hit, StoreConfig, VectorStore, open_store

__all__ = ["ServiceSettings", "MosaicService", "load_mapping"]

MAX_LIMIT = 1000


class ServiceSettings(StrictModel):
    """Everything the service needs at start-up."""

    model_config = ConfigDict(extra="forbid")

    store: StoreConfig = Field(default_factory=lambda: StoreConfig(path="mosaicrec-data"))
    profile: str | EncoderProfile = "default"
    device: str | None = None


def load_mapping(catalogue: Path, mapping_file: Path | None = None) -> ColumnMapping:
    """Explicit mapping file, else ``<catalogue stem>.mapping.json`` beside it, else defaults."""
    candidate = mapping_file or catalogue.with_name(catalogue.name.split(".")[0] + ".mapping.json")
    if candidate.is_file():
        return ColumnMapping.model_validate(json.loads(candidate.read_text()))
    if mapping_file is not None:
        raise RequestError(f"mapping file not found: {mapping_file}")
    return ColumnMapping()


class MosaicService:
    """Index, inspect, search and delete in one collection."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._store: VectorStore | None = None
        self._encoders: EncoderSet | None = None

    # -- resources, opened on first use ------------------------------------------------------
    @property
    def store(self) -> VectorStore:
        """The existing collection (its recorded schema is read, not assumed)."""
        if self._store is None:
            self._store = open_store(self.settings.store, None, create=False)
        return self._store

    @property
    def encoders(self) -> EncoderSet:
        """For searching: the encoders recorded with the collection, so queries always match."""
        if self._encoders is None:
            record = self.store.schema.profile
            if record is None:
                raise StoreError("the collection records no encoder profile; re-index it")
            self._encoders = EncoderSet.from_record(record, device=self.settings.device)
        return self._encoders

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- operations --------------------------------------------------------------------------
    def index(
        self,
        catalogue: Path,
        *,
        mapping: ColumnMapping | None = None,
        indexer: IndexerConfig | None = None,
    ) -> IndexReport:
        """Index a catalogue file; creates the collection or checks it matches the profile."""
        mapping = mapping or load_mapping(catalogue)
        items, rejected = read_catalogue(catalogue, mapping)
        encoders = load_profile(self.settings.profile, device=self.settings.device)
        schema = collection_schema(encoders, dict(mapping.payload))
        self.close()
        self._store = open_store(self.settings.store, schema, create=True)
        self._encoders = encoders
        return BulkIndexer(encoders, self._store, indexer).run(items, rejected)

    def info(self) -> dict[str, Any]:
        return self.store.info()

    def delete(self, ids: list[str]) -> int:
        """Delete items by catalogue id; returns how many existed."""
        found = [r.id for r in self.store.retrieve(ids)]
        self.store.delete(found)
        return len(found)

    def search(
        self,
        *,
        text: str | None = None,
        item: str | None = None,
        space: str = "fused",
        limit: int = 10,
        filter: Filter | None = None,
    ) -> list[Hit]:
        """Text -> any space (``fused``, ``text``, ``image``, ``audio``) or item -> similar."""
        from mosaicrec.engine.search import Searcher, SearchRequest

        if not 1 <= limit <= MAX_LIMIT:
            raise RequestError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        request = SearchRequest(text=text, item_id=item, space=space, limit=limit, filter=filter)
        return Searcher.from_encoder_set(self.store, self.encoders).search(request)
