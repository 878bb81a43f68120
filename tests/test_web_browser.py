"""The web page in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright for Python, against the real server on 127.0.0.1 with the sample catalogue.

Each test opens a page as a visitor would, checks what is shown, and saves a screenshot under
``benchmarks/results/screenshots/``. Skipped, with the reason, when Playwright or a system
Chromium is missing (``apt-get install chromium``; ``pip install playwright``; Playwright's own
browser download is never used).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web_support import SCREENSHOTS, WebServed, find_chromium, serve_web

pytestmark = pytest.mark.timeout(300)
CHROMIUM = find_chromium()
if CHROMIUM is None:
    pytest.skip("no Chromium found: apt-get install chromium (or set MOSAICREC_CHROMIUM)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="Playwright for Python is missing: pip install playwright")


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServed]:
    with serve_web(tmp_path_factory.mktemp("web-browser"), train=True) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--autoplay-policy=no-user-gesture-required"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def context(browser: Any, web: WebServed) -> Iterator[Any]:
    """A browser session logged in through the login form, recording every request."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.requests = []  # type: ignore[attr-defined]
    ctx.on("request", lambda request: ctx.requests.append(request.url))
    page = ctx.new_page()
    page.goto(web.url + "/c/items/search")
    assert "/login" in page.url
    page.fill("input[name=key]", web.keys["writer"])
    page.click("button[type=submit]")
    page.wait_for_url("**/c/items/search")
    page.close()
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any) -> Iterator[Any]:
    page = context.new_page()
    yield page
    page.close()


def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def images_loaded(page: Any, selector: str, count: int) -> None:
    page.wait_for_function(
        "([sel, n]) => { const imgs = [...document.querySelectorAll(sel)].slice(0, n);"
        " return imgs.length === n && imgs.every(i => i.complete && i.naturalWidth > 0); }",
        arg=[selector, count])


def test_login_form(browser: Any, web: WebServed) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 700})
    page = ctx.new_page()
    page.goto(web.url + "/")
    assert page.url.startswith(web.url + "/login")
    shot(page, "login")
    page.fill("input[name=key]", "mrk_wrong")
    page.click("button[type=submit]")
    assert "not valid" in page.inner_text(".error")
    page.fill("input[name=key]", web.keys["writer"])
    page.click("button[type=submit]")
    page.wait_for_url(web.url + "/")
    assert "items" in page.inner_text(".collections")
    assert web.keys["writer"] not in page.url
    ctx.close()


def test_search_shows_posters_and_playable_audio(page: Any, web: WebServed) -> None:
    page.goto(web.url + "/c/items/search")
    page.fill("input[name=q]", "waves crashing on a beach")
    page.select_option("select[name=space]", "fused")
    page.click("form.search button[type=submit]")
    page.wait_for_selector("#results .poster")
    assert page.locator("#results .poster").count() >= 10
    images_loaded(page, "#results img", 4)
    assert page.locator("#results audio").count() > 0
    shot(page, "search", full_page=False)
    page.click("details.filters summary")
    page.fill("input[name='f.category']", "forest")
    page.click("form.search button[type=submit]")
    page.wait_for_selector("#results .poster")
    titles = page.locator("#results figcaption a").all_inner_texts()
    assert titles and len(titles) <= 10  # the ten forest items at most


def test_item_page_neighbours_and_audio_plays(page: Any, web: WebServed) -> None:
    page.goto(web.url + "/c/items/search?q=whale+song")
    page.locator("#results .poster:has(audio):has(img) figcaption a").first.click()
    page.wait_for_selector(".columns")
    spaces = page.locator(".column h3").all_inner_texts()
    assert [s.lower() for s in spaces] == ["fused", "text", "image", "audio"]
    played = page.evaluate(
        "async () => { const a = document.querySelector('.item audio');"
        " if (!a) return null; a.muted = true; await a.play();"
        " await new Promise(r => setTimeout(r, 400));"
        " return {paused: a.paused, duration: a.duration, time: a.currentTime}; }")
    assert played is not None and not played["paused"] and played["duration"] > 0
    images_loaded(page, ".item .media img", 1)
    shot(page, "item")


def rec_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("#recs li.rec", "els => els.map(e => e.dataset.item)")


def test_like_a_recommendation_and_the_list_reacts(page: Any, web: WebServed) -> None:
    page.goto(web.url + "/c/items/users")
    page.fill("input[name=user_id]", "ana")
    page.click("form.search button[type=submit]")
    page.wait_for_url("**/c/items/users/ana")
    before = rec_ids(page)
    assert len(before) >= 5
    assert page.locator("#recs .why .sentence").count() == len(before)
    assert page.locator("#recs .shares.signals").count() > 0  # trained: signal shares
    assert page.locator("#recs .shares.modalities").count() > 0
    images_loaded(page, ".history img", 2)
    shot(page, "user")
    page.evaluate("window.__samePage = true")
    liked = before[0]
    page.locator(f"#recs li.rec[data-item='{liked}'] button.like").click()
    page.wait_for_function(
        "liked => { const f = document.querySelector('#recs li.rec');"
        " return f && f.dataset.item !== liked; }", arg=liked)
    after = rec_ids(page)
    assert liked not in after and after != before
    assert page.evaluate("window.__samePage") is True  # swapped in place, no reload
    newest = page.locator(".history .poster").first
    assert newest.locator("small").inner_text().startswith("like")
    assert newest.locator("a").first.get_attribute("href").endswith(f"/items/{liked}")
    disliked = after[0]
    page.locator(f"#recs li.rec[data-item='{disliked}'] button.dislike").click()
    page.wait_for_function(
        "d => !document.querySelector(`#recs li.rec[data-item='${d}']`)", arg=disliked)
    images_loaded(page, ".history img", 2)
    shot(page, "user-after-like")


def test_evaluation_page_table_and_chart(page: Any, web: WebServed) -> None:
    page.goto(web.url + "/evaluation")
    assert page.locator("#report tr").count() >= 3
    assert "stale method" not in page.content()
    if page.locator("img.chart").count():
        images_loaded(page, "img.chart", 1)
    shot(page, "evaluation")


def test_collection_page(page: Any, web: WebServed) -> None:
    page.goto(web.url + "/c/items")
    assert page.inner_text("#points") == "40"
    assert page.locator("table#model").count() == 1  # the trained model's manifest
    assert page.inner_text("#search-index")
    shot(page, "collection")


def test_nothing_is_fetched_from_elsewhere(context: Any, web: WebServed) -> None:
    """Last in the module: every request the pages made went to the server."""
    assert context.requests
    assert all(url.startswith(web.url) for url in context.requests), \
        sorted({u for u in context.requests if not u.startswith(web.url)})
