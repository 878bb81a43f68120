"""Server time of each web page, on the 40-item sample and on the MovieLens 100K catalogue.

Each catalogue is indexed (the ``offline`` profile: MiniLM text when packaged, tiny image and
audio encoders), its events imported, a model trained, and the real server started on
127.0.0.1. Every page is then requested ``--repeats`` times after two warm-up requests, with a
different user, item or query each time so that no cached list answers; the server's own time
comes from the ``Server-Timing`` header the web app sets, the wall time from the client. With a
system Chromium and Playwright, screenshots of the MovieLens pages go to
``benchmarks/results/screenshots/``.

    .venv/bin/python benchmarks/web.py            # writes benchmarks/results/web.json
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, RESULTS_DIR, percentiles, write_result  # noqa: E402

SAMPLE = REPO / "data" / "sample"
MOVIELENS = REPO.parent / "shared" / "data" / "movielens-100k"
QUERIES = ["waves crashing on a beach", "a quiet forest at dawn", "city lights at night",
           "a space adventure", "a funny love story", "a dark crime thriller"]
TRAINING = {"ease_lams": [100.0], "als": {"factors": 16, "iterations": 5},
            "sequence": {"dim": 16, "epochs": 1, "max_len": 50}, "max_tuning_users": 200}
BUDGET_MS = 300.0


def build(tmp: Path, catalogue: Path, events: Path, profile: str) -> Any:
    from mosaicrec.serving import schemas as s
    from mosaicrec.serving.auth import ADMIN
    from mosaicrec.serving.service import RecommendationService
    from mosaicrec.serving.settings import load_settings

    settings = load_settings(data_dir=tmp, profile=profile, auth=False,
                             reports_dir=RESULTS_DIR / "evaluation")
    service = RecommendationService(settings)
    t0 = time.perf_counter()
    service.index_catalogue(ADMIN, "items", catalogue, profile=profile)
    service.import_events(ADMIN, "items", events)
    service.train(ADMIN, "items", s.TrainRequest(settings=TRAINING))
    print(f"built {catalogue.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    return service


def measure(http: Any, paths: list[str], repeats: int, method: str = "GET",
            data: list[dict[str, str]] | None = None,
            headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Server and wall milliseconds of ``repeats`` requests cycling through ``paths``."""
    server, wall = [], []
    cycle = itertools.cycle(range(len(paths)))
    for n in range(repeats + 2):
        i = next(cycle)
        t0 = time.perf_counter()
        r = http.request(method, paths[i], data=data[i] if data else None, headers=headers)
        elapsed = 1000 * (time.perf_counter() - t0)
        if r.status_code >= 400:
            raise RuntimeError(f"{paths[i]}: {r.status_code} {r.text[:300]}")
        if n >= 2:  # two warm-up requests
            server.append(float(re.search(r"dur=([\d.]+)", r.headers["server-timing"])[1]))
            wall.append(elapsed)
    out = {"server_ms": percentiles(server), "wall_ms": percentiles(wall)}
    out["server_ms"]["p95"] = float(np.percentile(server, 95))
    out["server_ms"]["max"] = max(server)
    return out


def pages(service: Any, users: list[str], items: list[str], repeats: int) -> dict[str, Any]:
    import httpx

    from mosaicrec.serving.auth import ADMIN
    from mosaicrec.serving.server import ServerThread

    posters = [i for i in items if service.item(ADMIN, "items", i).payload.get("image")]
    with ServerThread(service, grpc=False) as server, \
            httpx.Client(base_url=server.rest_url, timeout=60) as http:
        figures = {
            "home": measure(http, ["/"], repeats),
            "search": measure(http, [f"/c/items/search?q={q}&space=fused" for q in QUERIES],
                              repeats),
            "search_filtered": measure(
                http, [f"/c/items/search?q={q}&space=text&f.year.min=1990" for q in QUERIES],
                repeats),
            "item": measure(http, [f"/c/items/items/{i}" for i in items], repeats),
            "user": measure(http, [f"/c/items/users/{u}" for u in users], repeats),
            # what the like button does: record, then render the refreshed lists
            "like_and_refresh": measure(
                http, [f"/c/items/users/{u}/events" for u in users], repeats, "POST",
                [{"item_id": i, "type": "like"} for i in items[:len(users)]],
                {"X-Requested-With": "fetch"}),
            "collection": measure(http, ["/c/items"], repeats),
            "evaluation": measure(http, ["/evaluation"], repeats),
            "media_image": measure(http, [f"/media/items/image/{i}" for i in posters], repeats),
        }
    return figures


def screenshots(service: Any, user: str) -> list[str]:
    """The MovieLens search and user pages in headless Chromium, when it is installed."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return []
    if chromium is None:
        return []
    from mosaicrec.serving.server import ServerThread

    out = RESULTS_DIR / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with ServerThread(service, grpc=False) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for name, path in (("movielens-search", "/c/items/search?q=a+space+adventure"),
                           ("movielens-user", f"/c/items/users/{user}")):
            page.goto(server.rest_url + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out / f"{name}.png"), full_page=name.endswith("user"))
            saved.append(str((out / f"{name}.png").relative_to(REPO)))
        browser.close()
    return saved


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=40)
    p.add_argument("--profile", default="offline")
    p.add_argument("--movielens", type=Path, default=MOVIELENS)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        service = build(Path(tmp) / "sample", SAMPLE / "catalogue.csv",
                        SAMPLE / "events.csv", args.profile)
        ids = [line.split(",", 1)[0] for line in
               (SAMPLE / "catalogue.csv").read_text().splitlines()[1:]]
        users = sorted({line.split(",", 1)[0] for line in
                        (SAMPLE / "events.csv").read_text().splitlines()[1:]})[:args.repeats]
        figures["sample_40"] = pages(service, users, ids, args.repeats)
        service.close()
        if (args.movielens / "u.item").is_file():
            from mosaicrec.indexing.movielens import movielens_catalogue

            catalogue, count = movielens_catalogue(args.movielens, Path(tmp) / "movies.csv")
            service = build(Path(tmp) / "movielens", catalogue, args.movielens / "u.data",
                            args.profile)
            users = [str(u) for u in range(1, args.repeats + 1)]
            items = [str(i) for i in range(1, 2 * args.repeats + 1)]
            figures["screenshots"] = screenshots(service, "7")  # before any like is recorded
            figures[f"movielens_{count}"] = pages(service, users, items, args.repeats)
            service.close()
        else:
            figures["movielens"] = f"skipped: MovieLens 100K not found at {args.movielens}"
    measured = [f["server_ms"] for data in figures.values() if isinstance(data, dict)
                for f in data.values()]
    # p95 is the budget's test; single slow requests on a shared 2-core machine come from
    # other processes (the same request repeated is fast), so the maximum is reported beside it
    figures["worst_server_p95_ms"] = max(m["p95"] for m in measured)
    figures["worst_server_max_ms"] = max(m["max"] for m in measured)
    figures["under_budget_p95"] = figures["worst_server_p95_ms"] < BUDGET_MS
    write_result("web", {"repeats": args.repeats, "profile": args.profile,
                         "budget_ms": BUDGET_MS, "training": TRAINING}, figures)


if __name__ == "__main__":
    main()
