"""Templates and the page helpers shared by the web routes: rendering, errors as pages,
cached files."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import mimetypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import escape

from mosaicrec.errors import MosaicError, UnauthenticatedError
from mosaicrec.serving.errors import http_status

__all__ = ["cached_file", "create_templates", "html_errors", "render"]

HERE = Path(__file__).resolve().parent
# pages hold a tenant's data: not cached, not framed, and nothing loaded from elsewhere
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
}
F = TypeVar("F", bound=Callable[..., Any])


def _pct(value: Any) -> str:
    return f"{round(100 * float(value or 0.0))}%"


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _media(collection: str, item_id: str, kind: str) -> str:
    return f"/media/{quote(collection, safe='')}/{kind}/{quote(item_id, safe='')}"


def _num(value: Any, digits: int = 4) -> str:
    if not isinstance(value, int | float) or value != value:  # missing (Undefined) or NaN
        return "–"
    return f"{float(value):.{digits}f}"


def create_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    env = templates.env
    env.trim_blocks = env.lstrip_blocks = True
    env.filters.update(pct=_pct, when=_when, q=lambda v: quote(str(v), safe=""), num=_num)
    env.globals.update(media=_media)
    return templates


def render(request: Request, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render template ``name``; with ``who`` in the context the navigation lists that
    principal's collections (through the service)."""
    who = context.get("who")
    if who is not None and "collections" not in context:
        context["collections"] = request.app.state.service.collections(who)
    context.setdefault("auth", request.app.state.service.settings.auth)
    response = request.app.state.web_templates.TemplateResponse(request, name, context,
                                                                status_code=status)
    response.headers.update(PAGE_HEADERS)
    return response


def html_errors(handler: F) -> F:
    """Service errors raised by a page handler become an error page with the mapped status
    (the one table in serving/errors.py); a missing login becomes the login form."""

    @functools.wraps(handler)
    def page(*args: Any, **kwargs: Any) -> Any:
        request: Request = kwargs["request"]
        try:
            return handler(*args, **kwargs)
        except UnauthenticatedError:
            from mosaicrec.serving.web.session import login_redirect

            return login_redirect(request)
        except MosaicError as err:
            if request.headers.get("x-requested-with") == "fetch":
                return HTMLResponse(f"<p class='error'>{escape(str(err))}</p>",
                                    status_code=http_status(err))
            return render(request, "error.html", status=http_status(err), message=str(err),
                          who=None, title=type(err).__name__)

    return page  # type: ignore[return-value]


def cached_file(request: Request, path: Path, *, max_age: int = 3600) -> Response:
    """``path`` with ETag, Last-Modified and Cache-Control (private: pages need a login);
    ``304`` when the browser's copy is current. Only image and audio types are named; anything
    else goes out as bytes the browser must not sniff."""
    stat = os.stat(path)
    etag = '"' + hashlib.sha256(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode()
                                ).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={max_age}",
               "X-Content-Type-Options": "nosniff"}
    if etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    kind = mimetypes.guess_type(path.name)[0] or ""
    if not kind.startswith(("image/", "audio/")):
        kind = "application/octet-stream"
    return FileResponse(path, media_type=kind, headers=headers, stat_result=stat)
