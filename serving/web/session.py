"""Logging in to the web page with an API key, kept as a server-side session.

The key is entered once on the login form and checked by the service; the browser keeps only a
random session id in a cookie (HttpOnly, SameSite=Strict, Secure over HTTPS). The key itself is
never stored, never put in a URL, and the session maps to the key's principal (its tenant and
scopes), so a tenant sees only its collections. Sessions live in memory and end after
``ttl_s`` idle seconds, at logout, or when the server restarts.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from mosaicrec.errors import MosaicError, UnauthenticatedError
from mosaicrec.serving.auth import Principal
from mosaicrec.serving.rest.deps import Service
from mosaicrec.serving.web.render import render

__all__ = ["COOKIE", "LoginRequired", "Sessions", "WebCaller", "router", "web_caller"]

COOKIE = "mosaicrec_session"


class LoginRequired(UnauthenticatedError):
    """No session: pages answer with the login form (see ``add_web``)."""


class Sessions:
    """Session id -> principal, in memory; the oldest are dropped past ``max_sessions``."""

    def __init__(self, ttl_s: float = 8 * 3600, max_sessions: int = 10_000) -> None:
        self.ttl_s, self.max_sessions = ttl_s, max_sessions
        self._by_id: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    def open(self, who: Principal) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._by_id[sid] = (who, time.monotonic() + self.ttl_s)
            while len(self._by_id) > self.max_sessions:
                self._by_id.popitem(last=False)
        return sid

    def get(self, sid: str | None) -> Principal | None:
        if not sid:
            return None
        with self._lock:
            entry = self._by_id.get(sid)
            if entry is None or entry[1] < time.monotonic():
                self._by_id.pop(sid, None)
                return None
            self._by_id[sid] = (entry[0], time.monotonic() + self.ttl_s)
            self._by_id.move_to_end(sid)
            return entry[0]

    def close(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)


def web_caller(request: Request, service: Service) -> Principal:
    """The logged-in principal; ``UnauthenticatedError`` (a redirect to the login form) when
    there is none. A server started without auth lets everyone in as the local admin."""
    if not service.settings.auth:
        return service.authenticate(None)
    who = request.app.state.web_sessions.get(request.cookies.get(COOKIE))
    if who is None:
        raise LoginRequired("log in with an API key")
    request.state.tenant = who.tenant
    return who


WebCaller = Annotated[Principal, Depends(web_caller)]

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no '//')."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", next=_safe_next(next), error=None)


@router.post("/login")
def login(request: Request, service: Service, key: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/") -> Response:
    try:
        who = service.authenticate(key.strip() or None)
    except MosaicError as err:
        return render(request, "login.html", status=401, next=_safe_next(next),
                      error=str(err))
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(COOKIE, request.app.state.web_sessions.open(who), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    request.app.state.web_sessions.close(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
