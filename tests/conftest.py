"""Shared fixtures: the real data sets beside the checkout, and encoders loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MOSAICREC_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA} (set MOSAICREC_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def movielens_dir(shared_data: Path) -> Path:
    path = shared_data / "movielens-100k"
    if not (path / "u.item").is_file():
        pytest.skip(f"MovieLens 100K not found at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_text():
    from mosaicrec.encoders import create_encoder

    return create_encoder("tiny-text", device="cpu")


@pytest.fixture(autouse=True, scope="session")
def _offline_and_single_thread():
    """Tests never touch the network, and use one torch thread (2-core CI box)."""
    os.environ.setdefault("MOSAICREC_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    yield
