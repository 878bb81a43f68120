"""One tenant's collection and everything served from it, opened once and shared by threads.

The store, the event store, the trained model, the recommender, the encoders and the searcher
are opened on first use (or by :meth:`CollectionHandle.warm_up` at start-up). Writers take the
collection's write lock; readers never wait for each other. Qdrant Edge allows one open handle
per directory, so a server on Edge is one process with threads.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from mosaicrec.errors import NotFoundError, StoreError
from mosaicrec.indexing.stores import StoreConfig, VectorStore, open_store
from mosaicrec.serving.settings import Settings

__all__ = ["CollectionHandle"]


class CollectionHandle:
    def __init__(self, settings: Settings, tenant: str, name: str) -> None:
        self.settings, self.tenant, self.name = settings, tenant, name
        root = settings.tenant_root(tenant)
        if settings.backend == "edge":
            self.store_config = StoreConfig(path=str(root), collection=name,
                                            segment_points=settings.segment_points)
        else:  # one Qdrant collection per tenant collection on a shared server
            self.store_config = StoreConfig(
                backend="qdrant", url=settings.qdrant_url,
                collection=name if tenant == "default" else f"{tenant}__{name}",
                api_key=settings.qdrant_api_key.get_secret_value()
                if settings.qdrant_api_key else None)
        self.events_path = root / f"{name}.events.sqlite"
        self.models_dir = root / f"{name}.models"
        self.media_dir = root / f"{name}.media"
        self.write_lock = threading.RLock()
        self._open_lock = threading.RLock()
        self._store: VectorStore | None = None
        self._events: Any = None
        self._model: Any = None
        self._model_checked = False
        self._recommender: Any = None
        self._encoders: Any = None
        self._searcher: Any = None

    def __repr__(self) -> str:
        return f"CollectionHandle({self.tenant!r}, {self.name!r})"

    # -- resources ------------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        if self._store is not None:
            return True
        if self.settings.backend == "edge":
            return (Path(str(self.store_config.path)) / self.name / "edge_config.json").is_file()
        try:
            self.store  # noqa: B018 - a server collection exists when it opens
        except StoreError:
            return False
        return True

    @property
    def store(self) -> VectorStore:
        with self._open_lock:
            if self._store is None:
                try:
                    self._store = open_store(self.store_config, None, create=False)
                except StoreError as err:
                    raise NotFoundError(
                        f"collection {self.name!r} has no items yet ({err}): index a "
                        f"catalogue or upsert items first") from err
            return self._store

    def create(self, schema: Any) -> VectorStore:
        """Open the collection with ``schema``, creating it when absent."""
        with self._open_lock:
            if self._store is None:
                self._store = open_store(self.store_config, schema, create=True)
            return self._store

    @property
    def events(self) -> Any:
        with self._open_lock:
            if self._events is None:
                from mosaicrec.engine.events import SQLiteEventStore

                self._events = SQLiteEventStore(self.events_path)
            return self._events

    @property
    def model(self) -> Any:
        """The served trained model (None before the first training)."""
        with self._open_lock:
            if not self._model_checked:
                from mosaicrec.engine.models.artefact import current_version, load_model

                if current_version(self.models_dir) is not None:
                    self._model = load_model(self.models_dir, collection=self.name,
                                             schema=self.store.schema)
                self._model_checked = True
            return self._model

    @property
    def encoders(self) -> Any:
        """The encoders recorded with the collection, so queries match its vectors."""
        with self._open_lock:
            if self._encoders is None:
                from mosaicrec.encoders.profiles import EncoderSet

                record = self.store.schema.profile
                if record is None:
                    raise StoreError(f"collection {self.name!r} records no encoder profile; "
                                     "re-index it")
                self._encoders = EncoderSet.from_record(record, device=self.settings.device)
            return self._encoders

    @property
    def searcher(self) -> Any:
        with self._open_lock:
            if self._searcher is None:
                from mosaicrec.engine.search import Searcher

                self._searcher = Searcher.from_encoder_set(self.store, self.encoders)
            return self._searcher

    @property
    def recommender(self) -> Any:
        with self._open_lock:
            if self._recommender is None:
                from mosaicrec.engine import Recommender, RecommenderConfig

                config = RecommenderConfig(
                    max_n=self.settings.limits.max_n, result_cache_size=self.settings.result_cache,
                    result_cache_ttl_s=self.settings.result_cache_ttl_s,
                    vector_cache_mb=self.settings.vector_cache_mb,
                    payload_cache_mb=self.settings.payload_cache_mb)
                self._recommender = Recommender(
                    self.store, self.events, config=config, model=self.model,
                    prompt_encoder=lambda text: self.searcher.text_vector(text, "fused"))
            return self._recommender

    @property
    def loaded_recommender(self) -> Any:
        """The recommender if it is built, else None; never loads nor waits for a lock."""
        return self._recommender

    def use_model(self, model: Any) -> None:
        """Serve ``model`` from the next request on (after training)."""
        with self._open_lock:
            self._model, self._model_checked, self._recommender = model, True, None

    def catalogue_changed(self) -> None:
        """Items were written or deleted: cached lists are stale."""
        if self._recommender is not None:
            self._recommender.catalogue_changed()

    def forget_schema(self) -> None:
        """The collection was (re)created: encoders, searcher and recommender follow it."""
        with self._open_lock:
            self._encoders = self._searcher = self._recommender = None

    def warm_up(self) -> None:
        """Open everything a request needs (readiness): store (its payloads read once, see
        :meth:`~mosaicrec.indexing.stores.base.VectorStore.warm`), events, model, encoders;
        then precompute the lists of the most recently active users (``warm_users``)."""
        if not self.exists:
            return
        self.store.warm()
        self.recommender  # noqa: B018
        self.searcher  # noqa: B018
        s = self.settings
        if s.warm_users and s.result_cache:
            self.recommender.warm(self.events.recent_users(min(s.warm_users, s.result_cache)),
                                  n=min(s.warm_n, s.limits.max_n))

    def close(self) -> None:
        with self._open_lock:
            if self._store is not None:
                self._store.close()
            if self._events is not None:
                self._events.close()
            self._store = self._events = self._model = None
            self._model_checked = False
            self._recommender = self._encoders = self._searcher = None
