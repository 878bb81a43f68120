"""Missing weights fail fast with one clear message, even when downloads are allowed."""

from __future__ import annotations

import time

import pytest

from mosaicrec.encoders import create_encoder
from mosaicrec.encoders.loading import hub_reachable
from mosaicrec.errors import ModelNotAvailableError


@pytest.fixture()
def unreachable_hub(monkeypatch):
    # port 9 on loopback: nothing listens, the connect is refused at once
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")


def test_hub_probe_says_no_when_nothing_answers(unreachable_hub) -> None:
    start = time.perf_counter()
    assert hub_reachable() is False
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("minilm", "org/model-that-is-not-cached"),
        ("clip-vit-b-32", None),
        ("clap-htsat-unfused", "org/clap-not-cached"),
    ],
)
def test_allowed_download_to_an_unreachable_hub_fails_fast(unreachable_hub, name, model) -> None:
    overrides = {"allow_download": True, "cache_dir": "/nonexistent-cache"}
    if model:
        overrides["model"] = model
    start = time.perf_counter()
    with pytest.raises(ModelNotAvailableError, match="not available on this machine") as info:
        create_encoder(name, **overrides)
    assert time.perf_counter() - start < 10
    assert "--profile offline" in str(info.value)
