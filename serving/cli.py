"""``mosaicrec`` command line: a thin adapter over :class:`MosaicService`.

Examples::

    mosaicrec index data/sample/catalogue.csv --profile offline
    mosaicrec search "waves on a beach"
    mosaicrec search "birdsong" --space audio
    mosaicrec search --item ocean-01 --filter category=ocean
    mosaicrec info
    mosaicrec delete ocean-01 ocean-02
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mosaicrec.errors import MosaicError

__all__ = ["main", "build_parser"]

STORE_HELP = "where the collection lives (default: ./mosaicrec-data, embedded Qdrant Edge)"


def _add_store_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("collection")
    g.add_argument("--path", default=None, help=STORE_HELP)
    g.add_argument("--collection", default="items", help="collection name (default: items)")
    g.add_argument("--url", default=None, help="Qdrant server/cluster URL instead of --path")
    g.add_argument("--api-key", default=None, help="API key for --url")
    g.add_argument("--device", default=None, help="torch device (default: CUDA when present)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mosaicrec",
        description="Multimodal recommendation engine: index a catalogue, then search it.",
        epilog="Start with: mosaicrec index data/sample/catalogue.csv --profile offline",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("index", help="embed a catalogue (CSV/Parquet/JSONL) into a collection")
    p.add_argument("catalogue", type=Path, help="catalogue file")
    p.add_argument(
        "--profile",
        default="default",
        help="encoders: 'default' (pretrained; weights must be available), 'offline' "
        "(real MiniLM text if installed, untrained tiny image/audio), 'tiny' (all untrained)",
    )
    p.add_argument(
        "--mapping",
        type=Path,
        default=None,
        help="column mapping JSON (default: <catalogue>.mapping.json if present)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2, help="media decoding threads")
    p.add_argument("--prune", action="store_true", help="delete items no longer in the catalogue")
    p.add_argument(
        "--quarantine",
        type=Path,
        default=None,
        help="JSONL file for rejected rows (default: <path>/<collection>.quarantine.jsonl)",
    )
    p.add_argument("--no-progress", action="store_true")
    _add_store_args(p)

    p = sub.add_parser("search", help="search by text (any space) or by an example item")
    p.add_argument("text", nargs="?", default=None, help="query text")
    p.add_argument("--item", default=None, help="find items similar to this catalogue id")
    p.add_argument(
        "--space",
        default="fused",
        choices=["fused", "text", "image", "audio"],
        help="which vector space to search (text is encoded into it)",
    )
    p.add_argument("--limit", "-n", type=int, default=5)
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="payload filter, repeatable; FIELD=a,b matches any; FIELD>=N, FIELD<N",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_store_args(p)

    p = sub.add_parser("info", help="show a collection's size, vectors and encoders")
    _add_store_args(p)

    p = sub.add_parser("delete", help="delete items by catalogue id")
    p.add_argument("ids", nargs="+")
    _add_store_args(p)

    p = sub.add_parser("movielens", help="convert a MovieLens 100K folder into a catalogue")
    p.add_argument("folder", type=Path, help="folder with u.item, tmdb_items.csv, posters/")
    p.add_argument("--out", type=Path, default=Path("movielens-catalogue.csv"))

    p = sub.add_parser("download", help="download a public data set (needs internet)")
    p.add_argument("dataset", choices=["movielens-100k"])
    p.add_argument("--out", type=Path, default=Path("datasets"))

    try:
        from mosaicrec.evaluation.cli import add_parser as add_evaluate
    except ImportError:  # evaluation extra not installed
        add_evaluate = None
    if add_evaluate is not None:
        add_evaluate(sub)
    return parser


def _settings(args: argparse.Namespace, profile: str = "default"):  # -> ServiceSettings
    from mosaicrec.indexing.stores import StoreConfig
    from mosaicrec.serving.service import ServiceSettings

    if args.url:
        store = StoreConfig(
            backend="qdrant", url=args.url, api_key=args.api_key, collection=args.collection
        )
    else:
        store = StoreConfig(path=args.path or "mosaicrec-data", collection=args.collection)
    return ServiceSettings(store=store, profile=profile, device=args.device)


def _run(args: argparse.Namespace) -> int:
    from mosaicrec.serving import commands

    handler = getattr(commands, f"cmd_{args.command}", None)
    if handler is None:
        return args.func(args)
    return handler(args, _settings)


def main(argv: Sequence[str] | None = None) -> int:
    # Model loading draws its own progress bars; the CLI shows one bar, for indexing.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except MosaicError as err:
        print(f"mosaicrec: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mosaicrec: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
