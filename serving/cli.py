"""``mosaicrec`` command line: a thin adapter over :class:`RecommendationService`.

Examples::

    mosaicrec index data/sample/catalogue.csv --profile offline
    mosaicrec events import data/sample/events.csv
    mosaicrec train
    mosaicrec recommend ana
    mosaicrec search "waves on a beach"
    mosaicrec serve --port 8000 --grpc-port 50051
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from mosaicrec.errors import MosaicError

__all__ = ["main", "build_parser", "print_json"]

STORE_HELP = "data folder: collections, events and models (default: ./mosaicrec-data)"
TYPES = ("view", "click", "like", "purchase", "rating", "skip", "dislike")


def _add_store_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("collection")
    g.add_argument("--path", default=None, help=STORE_HELP)
    g.add_argument("--collection", default="items", help="collection name (default: items)")
    g.add_argument("--url", default=None, help="Qdrant server/cluster URL (instead of Edge)")
    g.add_argument("--api-key", default=None, help="API key for --url")
    g.add_argument("--device", default=None, help="torch device (default: CUDA when present)")


def _index_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="embed a catalogue (CSV/Parquet/JSONL) into a collection")
    p.add_argument("catalogue", type=Path, help="catalogue file")
    p.add_argument(
        "--profile", default="default",
        help="encoders: 'default' (pretrained; weights must be available), 'offline' "
        "(real MiniLM text if installed, untrained tiny image/audio), 'tiny' (all untrained)")
    p.add_argument("--mapping", type=Path, default=None,
                   help="column mapping JSON (default: <catalogue>.mapping.json if present)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2, help="media decoding threads")
    p.add_argument("--prune", action="store_true", help="delete items no longer in the catalogue")
    p.add_argument("--quarantine", type=Path, default=None,
                   help="JSONL file for rejected rows (default: <path>/<collection>.quarantine"
                        ".jsonl)")
    p.add_argument("--no-progress", action="store_true")
    g = p.add_argument_group("media")
    g.add_argument("--media-root", action="append", default=[], type=Path, metavar="DIR",
                   help="a folder local media may come from besides the catalogue's (repeatable)")
    g.add_argument("--retry-failed", action="store_true",
                   help="fetch and decode media that failed on an earlier run again")
    g.add_argument("--failed-media", type=Path, default=None,
                   help="memory of failed media (default: beside the quarantine file)")
    g.add_argument("--chunk-size", type=int, default=1000, help="catalogue rows read at a time")
    g.add_argument("--fetch-timeout", type=float, default=10.0, help="seconds per socket read")
    g.add_argument("--fetch-retries", type=int, default=2)
    g.add_argument("--fetch-item-deadline", type=float, default=30.0,
                   help="seconds for all of one item's downloads")
    g.add_argument("--fetch-run-deadline", type=float, default=None,
                   help="seconds for all downloads of the run")
    g.add_argument("--fetch-concurrency", type=int, default=4)
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="'local' (default): this process; 'ray': Ray Data decodes in parallel "
                   "tasks and one actor pool per encoder embeds (GPUs when the cluster has "
                   "them); needs mosaicrec[distributed]")
    g.add_argument("--ray-address", "--address", dest="ray_address", default=None,
                   metavar="ADDRESS", help="Ray cluster to join ('auto', HOST:6379, "
                   "ray://HOST:10001); default: a local Ray started for the run")
    g.add_argument("--ray-block-rows", type=int, default=None, metavar="N",
                   help="items per block sent to Ray (default 128): the unit of progress and "
                   "of what a killed run redoes")
    _add_store_args(p)


def _query_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search by text (any space) or by an example item")
    p.add_argument("text", nargs="?", default=None, help="query text")
    p.add_argument("--item", default=None, help="find items similar to this catalogue id")
    p.add_argument("--space", default="fused", choices=["fused", "text", "image", "audio"],
                   help="which vector space to search (text is encoded into it)")
    p.add_argument("--limit", "-n", type=int, default=5)
    p.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                   help="payload filter, repeatable; FIELD=a,b matches any; FIELD>=N, FIELD<N")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_store_args(p)

    p = sub.add_parser("recommend", help="recommendations (with explanations) for a user")
    p.add_argument("user")
    p.add_argument("--limit", "-n", type=int, default=10)
    p.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                   help="payload filter, repeatable (as in search)")
    p.add_argument("--diversity", type=float, default=None, help="MMR diversity in [0, 1]")
    p.add_argument("--prompt", default=None, help="steer the list with a text prompt")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_store_args(p)

    p = sub.add_parser("info", help="show a collection's size, vectors, encoders and model")
    _add_store_args(p)


def _write_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("delete", help="delete items by catalogue id (and their events)")
    p.add_argument("ids", nargs="+")
    _add_store_args(p)

    p = sub.add_parser("events", help="record interactions: import a log or add one event")
    ev = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = ev.add_parser("import", help="import an interaction log (CSV/TSV/Parquet/JSONL, u.data)")
    q.add_argument("file", type=Path)
    q.add_argument("--mapping", type=Path, default=None,
                   help="column mapping JSON (user, item, type, rating, timestamp, event_id)")
    q.add_argument("--quarantine", type=Path, default=None, help="JSONL file for bad rows")
    q.add_argument("--no-progress", action="store_true")
    _add_store_args(q)
    q = ev.add_parser("add", help="record one event")
    q.add_argument("user")
    q.add_argument("item")
    q.add_argument("type", choices=TYPES)
    q.add_argument("--value", type=float, default=None, help="the rating, for type rating")
    q.add_argument("--timestamp", type=float, default=None, help="unix seconds (default: now)")
    _add_store_args(q)

    p = sub.add_parser("forget", help="erase a user's events and cached state")
    p.add_argument("user")
    _add_store_args(p)

    p = sub.add_parser("train", help="learn from the events; serve the tuned model")
    p.add_argument("--config", type=Path, default=None,
                   help="JSON with training settings (mosaicrec.engine.training.TrainingConfig)")
    p.add_argument("--no-progress", action="store_true")
    _add_store_args(p)


def _server_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve REST and gRPC (one process, threads)")
    p.add_argument("--host", default=None, help="bind address (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="REST port (default: 8000)")
    p.add_argument("--grpc-port", type=int, default=None, help="gRPC port (default: 50051; "
                   "0 turns gRPC off)")
    p.add_argument("--no-auth", action="store_true",
                   help="serve without API keys (local experiments only)")
    _add_store_args(p)

    p = sub.add_parser("keys", help="API keys: create, list, revoke")
    ks = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = ks.add_parser("create", help="create a key; it is printed once, only its hash is kept")
    q.add_argument("name")
    q.add_argument("--tenant", default="default")
    q.add_argument("--scopes", default="read", help="comma-separated: read,write,admin")
    q.add_argument("--path", default=None, help=STORE_HELP)
    q = ks.add_parser("list", help="list keys (names, tenants, scopes)")
    q.add_argument("--path", default=None, help=STORE_HELP)
    q = ks.add_parser("revoke", help="revoke a key by name")
    q.add_argument("name")
    q.add_argument("--path", default=None, help=STORE_HELP)

    p = sub.add_parser("movielens", help="convert a MovieLens 100K folder into a catalogue")
    p.add_argument("folder", type=Path, help="folder with u.item, tmdb_items.csv, posters/")
    p.add_argument("--out", type=Path, default=Path("movielens-catalogue.csv"))

    p = sub.add_parser("download", help="download a public data set (needs internet)")
    p.add_argument("dataset", choices=["movielens-100k"])
    p.add_argument("--out", type=Path, default=Path("datasets"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mosaicrec",
        description="Multimodal recommendation engine: index a catalogue, record events, "
        "train, recommend, search and serve.",
        epilog="Start with: mosaicrec index data/sample/catalogue.csv --profile offline",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _index_parser(sub)
    _query_parsers(sub)
    _write_parsers(sub)
    _server_parsers(sub)
    try:
        from mosaicrec.evaluation.cli import add_parser as add_evaluate
    except ImportError:  # evaluation extra not installed
        add_evaluate = None
    if add_evaluate is not None:
        add_evaluate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Model loading draws its own progress bars; the CLI shows one bar per long job.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    args = build_parser().parse_args(argv)
    try:
        from mosaicrec.serving import commands

        name = args.command + (f"_{args.action}" if hasattr(args, "action") else "")
        handler = getattr(commands, f"cmd_{name}", None)
        return handler(args) if handler is not None else args.func(args)
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
