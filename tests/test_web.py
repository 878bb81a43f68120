"""The web page over HTTP: login and sessions, tenants, media confinement and caching, pages.

One real server on 127.0.0.1 (the sample catalogue, tiny encoders); the browser tests are in
test_web_browser.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from web_support import WebServed, serve_web

from mosaicrec.serving.auth import Principal

pytestmark = pytest.mark.timeout(300)
WRITER = Principal("test", "default", frozenset({"read", "write"}))
SECRET = "TOP-SECRET-CONTENT"


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServed]:
    with serve_web(tmp_path_factory.mktemp("web")) as served:
        yield served


@contextmanager
def client(web: WebServed, key: str | None = "writer") -> Iterator[httpx.Client]:
    """A client logged in with the role's key (or not logged in)."""
    with httpx.Client(base_url=web.url, timeout=60) as http:
        if key is not None:
            r = http.post("/login", data={"key": web.keys.get(key, key), "next": "/"})
            assert r.status_code == 303, r.text
        yield http


# -- login, sessions, tenants -----------------------------------------------------------------
def test_pages_need_a_login_and_keep_the_next_page(web: WebServed) -> None:
    with client(web, None) as http:
        r = http.get("/c/items/search?q=waves")
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=%2Fc%2Fitems%2Fsearch%3Fq%3Dwaves"
        assert http.get("/media/items/image/ocean-01").status_code == 303
        refused = http.post("/c/items/users/ana/events", data={"item_id": "ocean-01",
                                                               "type": "like"})
        assert refused.status_code == 401
        r = http.post("/login", data={"key": web.keys["reader"], "next": "/c/items"})
        assert (r.status_code, r.headers["location"]) == (303, "/c/items")


def test_the_session_cookie_holds_no_key_and_is_httponly_and_strict(web: WebServed) -> None:
    with httpx.Client(base_url=web.url) as http:
        r = http.post("/login", data={"key": web.keys["writer"], "next": "//evil.example/x"})
        assert r.headers["location"] == "/"  # only paths on this site
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        assert web.keys["writer"] not in cookie
        assert http.get("/").status_code == 200
        http.post("/logout")
        http.cookies.set("mosaicrec_session", re.search(r"=([^;]+)", cookie).group(1))
        assert http.get("/").status_code == 303  # the old session is gone


def test_a_wrong_key_is_refused_on_the_form(web: WebServed) -> None:
    with httpx.Client(base_url=web.url) as http:
        r = http.post("/login", data={"key": "mrk_not-a-key"})
        assert r.status_code == 401 and "not valid" in r.text
        assert "set-cookie" not in r.headers


def test_a_tenant_sees_only_its_collections(web: WebServed) -> None:
    with client(web, "acme") as http:
        home = http.get("/").text
        assert "shop" in home and "/c/items" not in home
        for path in ("/c/items", "/c/items/search?q=waves", "/c/items/users/ana",
                     "/c/items/items/ocean-01", "/media/items/image/ocean-01"):
            assert http.get(path).status_code == 404, path


# -- media --------------------------------------------------------------------------------------
def test_media_are_served_with_caching_headers(web: WebServed) -> None:
    with client(web) as http:
        r = http.get("/media/items/image/ocean-01")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content == (web.catalogue / "images" / "ocean-01.png").read_bytes()
        assert r.headers["cache-control"].startswith("private, max-age=")
        again = http.get("/media/items/image/ocean-01",
                         headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and not again.content
        audio = http.get("/media/items/audio/ocean-01", headers={"Range": "bytes=0-99"})
        assert audio.status_code == 206 and len(audio.content) == 100
        assert audio.headers["content-type"].startswith("audio/")


def test_files_the_collection_does_not_reference_are_refused(web: WebServed,
                                                             tmp_path: Path) -> None:
    secret = web.catalogue.parent / "secret.txt"  # beside the catalogue folder, not in it
    secret.write_text(SECRET)
    (web.catalogue / "images" / "escape.png").symlink_to(secret)
    (web.catalogue / "images" / "alias.png").symlink_to(web.catalogue / "images" / "city-01.png")
    # payloads as a tampered or hand-edited collection could hold them
    store = web.service.collection(WRITER, "items", "write").store
    hostile = {"city-02": "../../etc/passwd", "city-03": "/etc/passwd",
               "city-04": "../secret.txt", "city-05": str(secret),
               "city-06": "images/escape.png", "city-07": "images"}
    for item, value in hostile.items():
        store.set_payload([item], {"image": value})
    store.set_payload(["city-08"], {"image": "images/alias.png"})  # a link inside: fine
    with client(web) as http:
        for item in hostile:
            r = http.get(f"/media/items/image/{item}")
            assert r.status_code in (403, 404), (item, r.status_code)
            assert SECRET not in r.text and "root:" not in r.text
        assert http.get("/media/items/image/city-02").status_code == 403
        assert http.get("/media/items/image/city-08").status_code == 200
        # paths in the URL name items, never files
        for path in ("/media/items/image/..%2F..%2Fetc%2Fpasswd", "/media/items/image//etc/passwd",
                     "/media/items/image/%2Fetc%2Fpasswd", "/media/items/../../etc/passwd",
                     f"/media/items/image/{os.fspath(secret)}", "/media/items/text/ocean-01"):
            r = http.get(path)
            assert r.status_code in (400, 404, 422), (path, r.status_code)
            assert SECRET not in r.text and "root:" not in r.text


# -- pages --------------------------------------------------------------------------------------
def test_search_with_a_space_and_filters(web: WebServed) -> None:
    with client(web) as http:
        page = http.get("/c/items/search", params={"q": "waves on a beach", "space": "text",
                                                   "f.category": "forest",
                                                   "f.year.min": "2016"}).text
        ids = re.findall(r'href="/c/items/items/([^"]+)" title', page)
        assert ids and all(i.startswith("forest-") for i in ids)
        assert 'value="text" selected' in page
        assert http.get("/c/items/search", params={"q": "x", "space": "smell"}).status_code == 400


def test_item_page_shows_media_fields_and_neighbours_per_space(web: WebServed) -> None:
    with client(web) as http:
        page = http.get("/c/items/items/ocean-01").text
        for space in ("fused", "text", "image", "audio"):
            assert f'data-space="{space}"' in page
        assert "/media/items/audio/ocean-01" in page and "Morning Tide" in page
        assert http.get("/c/items/items/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_like_without_script_records_the_event_and_returns_to_the_user(web: WebServed) -> None:
    with client(web) as http:
        r = http.post("/c/items/users/web-nojs/events", data={"item_id": "city-01",
                                                               "type": "like"})
        assert (r.status_code, r.headers["location"]) == (303, "/c/items/users/web-nojs")
    events = web.service.history(WRITER, "items", "web-nojs")
    assert [(e.item_id, e.type) for e in events] == [("city-01", "like")]


def test_a_read_only_key_gets_no_buttons_and_cannot_record(web: WebServed) -> None:
    with client(web, "reader") as http:
        page = http.get("/c/items/users/ana")
        assert page.status_code == 200 and "Recommended" in page.text
        assert 'class="feedback"' not in page.text
        r = http.post("/c/items/users/ana/events", data={"item_id": "ocean-02", "type": "like"})
        assert r.status_code == 403


def test_collection_and_evaluation_pages(web: WebServed) -> None:
    with client(web) as http:
        r = http.get("/c/items")
        assert '<b id="points">40</b>' in r.text and "fusion[" in r.text
        assert r.headers["cache-control"] == "no-store"
        assert "default-src 'self'" in r.headers["content-security-policy"]
        evaluation = http.get("/evaluation")
        assert evaluation.headers["server-timing"].startswith("app;dur=")
        assert str(web.reports / "latest" / "evaluation.json") in evaluation.text
        assert "stale method" not in evaluation.text  # the newest report is shown
        assert evaluation.text.count('<tr class="') >= 2
