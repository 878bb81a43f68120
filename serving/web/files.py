"""Files behind the pages: items' media and the latest evaluation report.

Media are looked up by item, never by path: ``/media/{collection}/{image|audio}/{item id}``
serves the file that item's payload names, resolved inside the collection's media folders
(:func:`~mosaicrec.serving.media.media_file`), so a path the collection does not reference
cannot be asked for. The report is the newest ``evaluation.json`` in ``reports_dir`` (or a
folder directly under it), written by ``mosaicrec evaluate``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from mosaicrec.errors import MosaicError, NotFoundError
from mosaicrec.serving.errors import http_status
from mosaicrec.serving.media import Medium, media_file
from mosaicrec.serving.rest.deps import Service
from mosaicrec.serving.web.render import cached_file, html_errors, render
from mosaicrec.serving.web.session import WebCaller

__all__ = ["latest_report", "router"]

router = APIRouter(include_in_schema=False)


@router.get("/media/{collection}/{kind}/{item_id:path}")
def media(request: Request, collection: str, kind: Medium, item_id: str, svc: Service,
          who: WebCaller) -> Response:
    try:
        path = media_file(svc, who, collection, item_id, kind)
    except MosaicError as err:
        return PlainTextResponse(str(err), status_code=http_status(err))
    return cached_file(request, path)


def latest_report(folder: Path) -> Path | None:
    """The newest ``evaluation.json`` in ``folder`` or a folder directly under it."""
    found = [p for p in (folder / "evaluation.json", *folder.glob("*/evaluation.json"))
             if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def _load(path: Path) -> dict[str, Any]:
    return _parsed(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _parsed(path: str, mtime_ns: int) -> dict[str, Any]:
    """The report at ``path`` as of ``mtime_ns`` (parsed once per version)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise NotFoundError(f"the report {path} is unreadable: {type(err).__name__}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise NotFoundError(f"{path} is not an evaluation report (it has no rows)")
    return data


@router.get("/evaluation")
@html_errors
def evaluation(request: Request, svc: Service, who: WebCaller) -> Response:
    folder = svc.settings.reports_dir
    path = latest_report(folder)
    report = _load(path) if path is not None else None
    chart = path is not None and path.with_name("evaluation.png").is_file()
    return render(request, "evaluation.html", who=who, folder=folder, path=path,
                  report=report, chart=chart,
                  version=int(path.stat().st_mtime) if path is not None else 0)


@router.get("/evaluation/chart.png")
def evaluation_chart(request: Request, svc: Service, who: WebCaller) -> Response:
    path = latest_report(svc.settings.reports_dir)
    chart = path.with_name("evaluation.png") if path is not None else None
    if chart is None or not chart.is_file():
        return PlainTextResponse("no evaluation chart", status_code=404)
    return cached_file(request, chart)
