"""Keeping a collection's catalogue current: upsert and delete items, index catalogue files.

Items are embedded with the collection's own encoders (the ones recorded in its schema; a new
collection gets the configured profile) through the bulk indexer's validation and embedding
path. Uploaded media are checked (size, decodable) before any work and kept under the
collection's media folder, addressed by content hash. Items written after training get their
behaviour vectors at once (trained ones for items the model knows, the content map's for new
ones), so they are recommendable immediately.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mosaicrec.errors import InputError, NotFoundError
from mosaicrec.serving import schemas as s

if TYPE_CHECKING:
    from mosaicrec.serving.collection import CollectionHandle
    from mosaicrec.serving.service import RecommendationService

__all__ = ["ItemWriter"]

_KINDS = {bool: "bool", int: "integer", float: "float", str: "keyword"}


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "keywords"
    for t, kind in _KINDS.items():
        if type(value) is t:
            return kind
    raise InputError(f"payload values must be text, numbers, booleans or lists of text, "
                     f"got {type(value).__name__}")


class ItemWriter:
    def __init__(self, service: RecommendationService) -> None:
        self.service = service

    def upsert(self, h: CollectionHandle, req: s.UpsertItemsRequest) -> s.UpsertItemsResponse:
        from mosaicrec.indexing.catalogue import ColumnMapping, Rejected, validate_rows
        from mosaicrec.indexing.indexer import BulkIndexer, IndexerConfig, collection_schema

        limits = self.service.settings.limits
        rows, rejected, kinds = [], [], {}
        for i, item in enumerate(req.items):
            try:
                row = self._row(h, item, limits.max_upload_bytes)
                kinds.update({k: _kind(v) for k, v in item.payload.items()})
                rows.append((i, row))
            except InputError as err:
                rejected.append(s.Rejection(index=i, id=item.id, reason=err.reason))
        mapping = ColumnMapping(tags="tags", payload=kinds)
        items, bad = validate_rows([r for _, r in rows], mapping, h.media_dir)
        position = {row["id"]: i for i, row in rows}
        rejected += [s.Rejection(index=position.get(b.id or "", -1), id=b.id, reason=b.reason)
                     for b in bad]
        if not items:
            return s.UpsertItemsResponse(upserted=[], rejected=rejected)
        with h.write_lock:
            if h.exists:
                encoders = h.encoders
            else:
                from mosaicrec.encoders.profiles import load_profile

                encoders = load_profile(self.service.settings.profile,
                                        device=self.service.settings.device)
                h.create(collection_schema(encoders, dict(kinds)))
                h.forget_schema()
            store = h.store
            self._check_payload_types(store, kinds)
            report = BulkIndexer(encoders, store, IndexerConfig(progress=False, optimize=False,
                                                                prune=False)).run(items, [])
            failed = {r.id: r for r in report.reasons if not getattr(r, "indexed", False)}
            done = [it.id for it in items if it.id not in failed]
            self._sync(h, done)
            h.catalogue_changed()
        rejected += [s.Rejection(index=position.get(r.id or "", -1), id=r.id, reason=r.reason)
                     for r in failed.values() if isinstance(r, Rejected)]
        return s.UpsertItemsResponse(upserted=done, rejected=sorted(rejected,
                                                                    key=lambda r: r.index))

    def delete(self, h: CollectionHandle, req: s.DeleteItemsRequest) -> s.DeleteItemsResponse:
        with h.write_lock:
            found = [r.id for r in h.store.retrieve(req.ids)]
            erased = 0
            if found:
                h.store.delete(found)
                for item in found:  # an item that left the catalogue takes its events along
                    erased += h.events.delete_item(item)
                h.catalogue_changed()
        missing = [i for i in dict.fromkeys(req.ids) if i not in set(found)]
        return s.DeleteItemsResponse(deleted=found, missing=missing, events_erased=erased)

    def index_catalogue(self, h: CollectionHandle, catalogue: Path, *, mapping: Any = None,
                        indexer: Any = None, profile: Any = None) -> Any:
        """Index a catalogue file into the collection (bulk; resumable)."""
        from mosaicrec.engine.models.artefact import current_version
        from mosaicrec.indexing.indexer import index_catalogue

        settings = self.service.settings
        written: list[str] = []  # items (re)written: they need behaviour vectors again
        trained = current_version(h.models_dir) is not None
        with h.write_lock, self.service.busy(f"indexing {h.tenant}/{h.name}"):
            h.close()  # the indexer opens the collection with the profile's schema
            store, encoders, report = index_catalogue(
                catalogue, h.store_config, profile or settings.profile, mapping=mapping,
                indexer=indexer, device=settings.device,
                on_upsert=written.extend if trained else None)
            h._store = store
            h.forget_schema()
            h._encoders = encoders
            self._sync(h, written)
            from mosaicrec.serving.media import record_catalogue

            record_catalogue(h, catalogue, indexer.media_roots if indexer else ())
            model = h.model
            if model is not None and report.indexed:
                from mosaicrec.engine.publish import sync_items

                sync_items(store, model, [r.id for r in store.iter_records()])
        return report

    # -- helpers ------------------------------------------------------------------------------
    def _row(self, h: CollectionHandle, item: s.ItemIn, max_bytes: int) -> dict[str, Any]:
        row: dict[str, Any] = {"id": item.id, "title": item.title,
                               "description": item.description,
                               "tags": "|".join(item.tags) if item.tags else None,
                               "image": item.image, "audio": item.audio, **item.payload}
        for field in ("image", "audio"):
            data = getattr(item, f"{field}_bytes")
            if data is not None:
                if getattr(item, field):
                    raise InputError(f"give {field} or {field}_bytes, not both", item=item.id)
                row[field] = str(self._save_upload(h, item.id, field, data, max_bytes))
        return row

    @staticmethod
    def _save_upload(h: CollectionHandle, item: str, field: str, data: bytes,
                     max_bytes: int) -> Path:
        """Check an uploaded medium (size, decodes) and keep it by content hash."""
        from mosaicrec.encoders.media import load_audio, load_image

        if len(data) > max_bytes:
            raise InputError(f"{field} upload is {len(data)} bytes, over the limit of "
                             f"{max_bytes}", item=item)
        if field == "image":
            load_image(data, item)
        else:
            load_audio(data, item)
        h.media_dir.mkdir(parents=True, exist_ok=True)
        path = h.media_dir / f"{hashlib.sha256(data).hexdigest()[:32]}.{field}"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return path

    @staticmethod
    def _check_payload_types(store: Any, kinds: dict[str, str]) -> None:
        indexed = store.schema.payload_indexes
        for field, kind in kinds.items():
            want = "keyword" if kind == "keywords" else kind
            have = indexed.get(field)
            if have is not None and have != want and not (have == "float" and want == "integer"):
                raise InputError(f"payload field {field!r} is indexed as {have}, got {kind}")

    @staticmethod
    def _sync(h: CollectionHandle, ids: list[str]) -> None:
        try:
            model = h.model
        except NotFoundError:
            return
        if model is not None and ids:
            from mosaicrec.engine.publish import sync_items

            sync_items(h.store, model, ids)
