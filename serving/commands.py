"""CLI command handlers: parse arguments into service calls, print the results."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mosaicrec.errors import RequestError
from mosaicrec.indexing.stores import Condition, Filter

__all__ = [
    "parse_filters",
    "cmd_index",
    "cmd_search",
    "cmd_info",
    "cmd_delete",
    "cmd_movielens",
    "cmd_download",
]

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


Settings = Callable[..., Any]


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from mosaicrec.indexing.indexer import IndexerConfig
    from mosaicrec.serving.service import MosaicService, load_mapping

    service = MosaicService(settings(args, args.profile))
    store = service.settings.store
    quarantine = args.quarantine or (
        Path(store.path or ".") / f"{store.collection}.quarantine.jsonl"
    )
    config = IndexerConfig(
        batch_size=args.batch_size,
        decode_workers=args.workers,
        prune=args.prune,
        progress=not args.no_progress,
        quarantine_path=quarantine,
    )
    try:
        report = service.index(
            args.catalogue, mapping=load_mapping(args.catalogue, args.mapping), indexer=config
        )
        total = service.store.count()
        untrained = service.encoders.untrained
    finally:
        service.close()
    print(
        f"indexed {report.indexed} items ({report.unchanged} unchanged, {report.deleted} deleted, "
        f"{report.quarantined} quarantined) in {report.seconds:.1f}s "
        f"({report.items_per_s:.1f} items/s); the collection now holds {total} items"
    )
    if report.quarantined:
        print(f"quarantined rows and reasons: {report.quarantine_path}")
        for row in report.reasons[:5]:
            print(f"  row {row.row} id={row.id}: {row.reason}")
    if untrained:
        print(
            "note: these encoders are UNTRAINED (random weights), so their vectors carry no "
            "meaning: " + "; ".join(untrained)
        )
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from mosaicrec.serving.cli import print_json
    from mosaicrec.serving.service import MosaicService

    if (args.text is None) == (args.item is None):
        raise RequestError("give either query text or --item ID (not both)")
    service = MosaicService(settings(args))
    try:
        hits = service.search(
            text=args.text,
            item=args.item,
            space=args.space,
            limit=args.limit,
            filter=parse_filters(args.filter),
        )
    finally:
        service.close()
    if args.json:
        print_json([{"id": h.id, "score": h.score, "payload": h.payload} for h in hits])
        return 0
    query = f"text {args.text!r}" if args.text else f"item {args.item!r}"
    print(f"top {len(hits)} for {query} in the {args.space} space:")
    for rank, hit in enumerate(hits, 1):
        title = hit.payload.get("title") or hit.payload.get("text", "")
        tags = hit.payload.get("category") or ",".join(hit.payload.get("genres", []))
        print(f"{rank:>3}. {hit.score:6.3f}  {hit.id:<14} {title}  [{tags}]")
    return 0


def cmd_info(args: argparse.Namespace, settings: Settings) -> int:
    from mosaicrec.serving.cli import print_json
    from mosaicrec.serving.service import MosaicService

    service = MosaicService(settings(args))
    try:
        print_json(service.info())
    finally:
        service.close()
    return 0


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    from mosaicrec.serving.service import MosaicService

    service = MosaicService(settings(args))
    try:
        deleted = service.delete(args.ids)
    finally:
        service.close()
    missing = len(set(args.ids)) - deleted
    print(
        f"deleted {deleted} items"
        + (f"; {missing} ids were not in the collection" if missing else "")
    )
    return 0


def cmd_movielens(args: argparse.Namespace, settings: Settings) -> int:
    from mosaicrec.indexing.movielens import movielens_catalogue

    path, count = movielens_catalogue(args.folder, args.out)
    print(
        f"wrote {count} movies to {path} (mapping beside it); index it with:\n"
        f"  mosaicrec index {path} --profile offline --collection movies"
    )
    return 0


def cmd_download(args: argparse.Namespace, settings: Settings) -> int:
    from mosaicrec.indexing.datasets import download_dataset

    folder = download_dataset(args.dataset, args.out)
    print(
        f"downloaded {args.dataset} to {folder}; make a catalogue with:\n"
        f"  mosaicrec movielens {folder} --out movies.csv"
    )
    return 0
