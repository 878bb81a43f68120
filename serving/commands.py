"""CLI command handlers: arguments -> one service call -> printed result. No logic of their own
beyond parsing and formatting."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mosaicrec.errors import RequestError
from mosaicrec.indexing.stores import Condition, Filter
from mosaicrec.serving import schemas as s
from mosaicrec.serving.auth import ADMIN

__all__ = ["parse_filters", "local_service"]

_FILTER = re.compile(r"^(?P<field>[\w.-]+)\s*(?P<op>>=|<=|>|<|=)\s*(?P<value>.+)$")
_RANGE = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}


def parse_filters(expressions: list[str]) -> Filter | None:
    """``genre=Drama``, ``genre=Drama,Comedy`` (any), ``year>=1990``, ``year<2000``."""
    conditions = []
    for expr in expressions:
        match = _FILTER.match(expr)
        if not match:
            raise RequestError(f"bad filter {expr!r}: use FIELD=VALUE, FIELD=A,B or FIELD>=NUMBER")
        field, op, value = match["field"], match["op"], match["value"].strip()
        if op != "=":
            try:
                conditions.append(Condition(field=field, **{_RANGE[op]: float(value)}))
            except ValueError:
                raise RequestError(f"bad filter {expr!r}: {value!r} is not a number") from None
        elif "," in value:
            conditions.append(Condition(field=field, any=[_scalar(v) for v in value.split(",")]))
        else:
            conditions.append(Condition(field=field, match=_scalar(value)))
    return Filter(must=conditions) if conditions else None


def _scalar(value: str) -> str | int:
    value = value.strip()
    return int(value) if re.fullmatch(r"-?\d+", value) else value


@contextlib.contextmanager
def local_service(args: argparse.Namespace, **extra: Any) -> Iterator[Any]:
    """The service over the collection the arguments name, as the local administrator."""
    from mosaicrec.serving.service import RecommendationService
    from mosaicrec.serving.settings import load_settings

    settings = load_settings(
        data_dir=Path(args.path) if getattr(args, "path", None) else None,
        backend="qdrant" if getattr(args, "url", None) else None,
        qdrant_url=getattr(args, "url", None), qdrant_api_key=getattr(args, "api_key", None),
        device=getattr(args, "device", None),
        tenants={"default": [args.collection]} if hasattr(args, "collection") else None,
        **extra)
    service = RecommendationService(settings)
    try:
        yield service
    finally:
        service.close()


def _read_json(path: Path | None, what: str) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RequestError(f"{what} {path}: {err}") from None


def cmd_index(args: argparse.Namespace) -> int:
    from mosaicrec.indexing.distributed import RayEngineConfig, require_ray
    from mosaicrec.indexing.fetch import FetchConfig
    from mosaicrec.indexing.indexer import IndexerConfig, load_mapping

    ray_options = {k: v for k, v in (("address", args.ray_address),
                                     ("block_rows", args.ray_block_rows)) if v is not None}
    if ray_options and args.engine != "ray":
        raise RequestError("--ray-address and --ray-block-rows apply to --engine ray only")
    if args.engine == "ray":
        require_ray()  # before anything is loaded: the error names the extra to install
    mapping = load_mapping(args.catalogue, args.mapping)
    with local_service(args, profile=args.profile) as service:
        root = service.settings.data_dir
        config = IndexerConfig(
            batch_size=args.batch_size, decode_workers=args.workers, prune=args.prune,
            progress=not args.no_progress, chunk_size=args.chunk_size,
            quarantine_path=args.quarantine or root / f"{args.collection}.quarantine.jsonl",
            media_roots=args.media_root, retry_failed=args.retry_failed,
            failed_media_path=args.failed_media,
            fetch=FetchConfig(timeout_s=args.fetch_timeout, retries=args.fetch_retries,
                              item_deadline_s=args.fetch_item_deadline,
                              run_deadline_s=args.fetch_run_deadline,
                              max_concurrency=args.fetch_concurrency),
            engine=args.engine, ray=RayEngineConfig(**ray_options))
        report = service.index_catalogue(ADMIN, args.collection, args.catalogue,
                                         mapping=mapping, indexer=config, profile=args.profile)
        handle = service.collection(ADMIN, args.collection, "read")
        total, untrained = handle.store.count(), handle.encoders.untrained
    print(f"indexed {report.indexed} items ({report.unchanged} unchanged, {report.deleted} "
          f"deleted, {report.quarantined} quarantined, {report.degraded} without one of their "
          f"media) in {report.seconds:.1f}s ({report.items_per_s:.1f} items/s); the collection "
          f"now holds {total} items; search index: {report.search_index}")
    if report.quarantined:
        print(f"quarantined rows and reasons: {report.quarantine_path}")
        for row in report.reasons[:5]:
            print(f"  row {row.row} id={row.id}: {row.reason}")
    if untrained:
        print("note: these encoders are UNTRAINED (random weights), so their vectors carry no "
              "meaning: " + "; ".join(untrained))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    if (args.text is None) == (args.item is None):
        raise RequestError("give either query text or --item ID (not both)")
    if args.limit < 1:
        raise RequestError(f"limit must be at least 1, got {args.limit}")
    query = s.SearchQuery(text=args.text, item_id=args.item, space=args.space,
                          limit=args.limit, filter=parse_filters(args.filter))
    with local_service(args) as service:
        hits = service.search(ADMIN, args.collection, query).items
    if args.json:
        print_json([h.model_dump() for h in hits])
        return 0
    what = f"text {args.text!r}" if args.text else f"item {args.item!r}"
    print(f"top {len(hits)} for {what} in the {args.space} space:")
    for rank, hit in enumerate(hits, 1):
        title = hit.payload.get("title") or hit.payload.get("text", "")
        tags = hit.payload.get("category") or ",".join(hit.payload.get("genres", []))
        print(f"{rank:>3}. {hit.score:6.3f}  {hit.id:<14} {title}  [{tags}]")
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    req = s.RecommendRequest(user_id=args.user, n=args.limit, filter=parse_filters(args.filter),
                             diversity=args.diversity, prompt=args.prompt)
    with local_service(args) as service:
        recs = service.recommend(ADMIN, args.collection, req)
    if args.json:
        print_json(recs.model_dump())
        return 0
    model = f"trained model {recs.model_version}" if recs.model_version else "no trained model"
    print(f"top {len(recs.items)} for user {args.user!r} ({recs.reason}; {model}):")
    for rank, r in enumerate(recs.items, 1):
        title = r.payload.get("title") or r.id
        print(f"{rank:>3}. {r.score:6.2f}  {r.id:<14} {title}")
        if r.explanation is not None:
            print(f"       {r.explanation.sentence}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with local_service(args) as service:
        print_json(service.info(ADMIN, args.collection).model_dump())
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with local_service(args) as service:
        out = service.delete_items(ADMIN, args.collection, s.DeleteItemsRequest(ids=args.ids))
    print(f"deleted {len(out.deleted)} items"
          + (f"; {len(out.missing)} ids were not in the collection" if out.missing else "")
          + (f"; {out.events_erased} events about them erased" if out.events_erased else ""))
    return 0


def cmd_events_import(args: argparse.Namespace) -> int:
    from mosaicrec.engine.event_import import EventMapping

    mapping = EventMapping.model_validate(_read_json(args.mapping, "mapping file")) \
        if args.mapping else None
    with local_service(args) as service:
        report = service.import_events(ADMIN, args.collection, args.file, mapping,
                                       quarantine=args.quarantine,
                                       progress=not args.no_progress)
        total = service.collection(ADMIN, args.collection, "read").events.count()
    print(f"read {report.rows_read} rows: {report.written} new events, {report.duplicates} "
          f"already stored, {report.quarantined} quarantined, in {report.seconds:.1f}s; the "
          f"store holds {total} events")
    if report.quarantined:
        print(f"quarantined rows and reasons: {report.quarantine_path}")
        for row in report.reasons[:5]:
            print(f"  row {row.row} {row.field}: {row.reason}")
    return 0


def cmd_events_add(args: argparse.Namespace) -> int:
    event = s.EventIn(user_id=args.user, item_id=args.item, type=args.type, value=args.value,
                      timestamp=time.time() if args.timestamp is None else args.timestamp)
    with local_service(args) as service:
        out = service.record_events(ADMIN, args.collection, s.RecordEventsRequest(
            events=[event]))
    if out.rejected:
        raise RequestError(out.rejected[0].reason)
    print("recorded 1 event" if out.written else "this event was already recorded")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    with local_service(args) as service:
        receipt = service.forget_user(ADMIN, args.collection, args.user)
    print_json(receipt.model_dump())
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from mosaicrec.engine.training import TrainingConfig

    data = _read_json(args.config, "training config") or {}
    config = TrainingConfig.model_validate({**data, "progress": not args.no_progress})
    with local_service(args) as service:
        handle = service.collection(ADMIN, args.collection, "admin")
        out = service.train(ADMIN, args.collection, s.TrainRequest(
            settings=config.model_dump(mode="json")))
        device = handle.model.manifest.device
    weights = ", ".join(f"{k} {v:g}" for k, v in out.blend.items())
    print(f"trained model {out.version} on {out.counts['events']} events "
          f"({out.counts['users']} users, {out.counts['items']} items) in {out.seconds:.1f}s "
          f"on {device}")
    print(f"validation NDCG@10 {out.validation_ndcg:.4f} over {out.validation_users} users; "
          f"blend: {weights}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from mosaicrec.serving.server import serve

    with local_service(args, host=args.host, port=args.port, grpc_port=args.grpc_port,
                       auth=False if args.no_auth else None) as service:
        serve(service)
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    scopes = [x.strip() for x in args.scopes.split(",") if x.strip()]
    bad = sorted(set(scopes) - {"read", "write", "admin"})
    if bad or not scopes:
        raise RequestError(f"scopes must be among read, write, admin; got {args.scopes!r}")
    with local_service(args) as service:
        key = service.keys.create(args.name, args.tenant, scopes)  # type: ignore[arg-type]
        path = service.keys.path
    print(f"created key {args.name!r} for tenant {args.tenant!r} with scopes {','.join(scopes)}"
          f" (only its hash is kept in {path}); it is shown once:\n{key}")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    with local_service(args) as service:
        print_json([{"name": k.name, "tenant": k.tenant, "scopes": k.scopes}
                    for k in service.keys.keys])
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    with local_service(args) as service:
        gone = service.keys.revoke(args.name)
    print(f"revoked key {args.name!r}" if gone else f"no key named {args.name!r}")
    return 0 if gone else 2


def cmd_movielens(args: argparse.Namespace) -> int:
    from mosaicrec.indexing.movielens import movielens_catalogue

    path, count = movielens_catalogue(args.folder, args.out)
    print(f"wrote {count} movies to {path} (mapping beside it); index it with:\n"
          f"  mosaicrec index {path} --profile offline --collection movies")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from mosaicrec.indexing.datasets import download_dataset

    folder = download_dataset(args.dataset, args.out)
    print(f"downloaded {args.dataset} to {folder}; make a catalogue with:\n"
          f"  mosaicrec movielens {folder} --out movies.csv")
    return 0


def print_json(data: object) -> None:
    from mosaicrec.serving.cli import print_json as _print

    _print(data)
