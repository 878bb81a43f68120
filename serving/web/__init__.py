"""The web page: server-rendered pages over the one service, at ``/`` of the REST app.

Search, item, user (history, recommendations with their explanations, like / dislike),
evaluation and collection pages, rendered with Jinja2; one small vendored script and a style
sheet under ``static/`` (no build step, nothing fetched from the internet). Logging in takes an
API key once and keeps a server-side session (:mod:`.session`). Every response carries a
``Server-Timing: app;dur=<ms>`` header: the server's time for it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from mosaicrec.serving.web.render import HERE, create_templates

__all__ = ["add_web"]


def add_web(app: FastAPI) -> None:
    """Add the pages, their static files, sessions and the timing header to ``app``."""
    from mosaicrec.serving.web import files, pages, session

    app.state.web_templates = create_templates()
    app.state.web_sessions = session.Sessions()
    for router in (session.router, pages.router, files.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="web-static")

    @app.exception_handler(session.LoginRequired)
    async def login_required(request: Request, err: session.LoginRequired) -> Response:
        if request.method == "GET" and request.headers.get("x-requested-with") != "fetch":
            return session.login_redirect(request)
        return PlainTextResponse("log in first: your session has ended", status_code=401)

    @app.middleware("http")
    async def server_timing(request: Request,
                            call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = \
            f"app;dur={1000 * (time.perf_counter() - started):.1f}"
        return response
