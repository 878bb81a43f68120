"""A served sample collection for the web page's tests (imported by their modules).

:func:`serve_web` copies the sample catalogue into ``tmp`` (so a test may add files and
symlinks beside it), indexes it into ``items`` with the tiny profile, imports the sample events
(user ``ana`` and others), optionally trains, writes an evaluation report where the page looks
for it, creates one key per role and runs the real server (REST and the pages) on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from serving_support import TRAIN_SETTINGS

from mosaicrec.serving import schemas as s
from mosaicrec.serving.auth import ADMIN
from mosaicrec.serving.server import ServerThread
from mosaicrec.serving.service import RecommendationService
from mosaicrec.serving.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
SCREENSHOTS = REPO / "benchmarks" / "results" / "screenshots"
REPORT = REPO / "benchmarks" / "results" / "evaluation"
ROLES = {"reader": ("default", ["read"]), "writer": ("default", ["read", "write"]),
         "acme": ("acme", ["read", "write", "admin"])}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# a blend with popularity, so that explanations show more than one signal
WEB_TRAINING = {**TRAIN_SETTINGS,
                "blend_grid": {"sequence": [1.0], "popularity": [0.3], "new_item": [0.5]}}


@dataclass
class WebServed:
    service: RecommendationService
    server: ServerThread
    keys: dict[str, str]
    catalogue: Path  # the copied sample catalogue's folder
    reports: Path

    @property
    def url(self) -> str:
        return self.server.rest_url


def find_chromium() -> str | None:
    """The system Chromium (``MOSAICREC_CHROMIUM`` first, then the usual names on PATH)."""
    named = os.environ.get("MOSAICREC_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def write_reports(folder: Path) -> Path:
    """An old synthetic report and, newer, the committed one (or a synthetic stand-in);
    returns the folder of the newer one, which the page must show."""
    old = folder / "old"
    old.mkdir(parents=True)
    (old / "evaluation.json").write_text(json.dumps({"rows": [
        {"name": "stale method", "family": "baseline", "test": {"ndcg@10": 0.01}}]}))
    os.utime(old / "evaluation.json", (1_600_000_000, 1_600_000_000))
    latest = folder / "latest"
    if (REPORT / "evaluation.json").is_file():
        shutil.copytree(REPORT, latest)
    else:
        latest.mkdir()
        (latest / "evaluation.json").write_text(json.dumps({"rows": [
            {"name": "popular", "family": "baseline", "test": {"ndcg@10": 0.05}},
            {"name": "mosaicrec hybrid", "family": "mosaicrec", "test": {"ndcg@10": 0.1}}]}))
    return latest


@contextmanager
def serve_web(tmp: Path, *, train: bool = False) -> Iterator[WebServed]:
    catalogue = tmp / "catalogue"
    shutil.copytree(SAMPLE, catalogue)
    reports = tmp / "reports"
    write_reports(reports)
    settings = load_settings(data_dir=tmp / "data", profile="tiny", reports_dir=reports,
                             tenants={"default": ["items"], "acme": ["shop"]})
    service = RecommendationService(settings)
    keys = {name: service.keys.create(name, tenant, scopes)  # type: ignore[arg-type]
            for name, (tenant, scopes) in ROLES.items()}
    service.index_catalogue(ADMIN, "items", catalogue / "catalogue.csv", profile="tiny")
    service.import_events(ADMIN, "items", catalogue / "events.csv")
    if train:
        service.train(ADMIN, "items", s.TrainRequest(settings=WEB_TRAINING))
    server = ServerThread(service, grpc=False).start()
    try:
        yield WebServed(service, server, keys, catalogue, reports)
    finally:
        server.stop()
        service.close()
