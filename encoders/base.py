"""The ``Encoder`` protocol and the shared batching machinery behind every torch encoder.

Encoding is split in two steps so that the indexer can overlap them:

* ``prepare(item, key)``: CPU-side work for one item (decode an image, read and resample audio,
  check text). It raises :class:`~mosaicrec.errors.InputError` naming the item when the input is
  bad. It holds no model state, so worker threads may call it concurrently.
* ``encode_prepared(prepared)``: the model forward pass over many prepared items, in batches
  sorted by cost (long texts with long texts) with the caller's order restored.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from mosaicrec.errors import InputError

Modality = Literal["text", "image", "audio"]
MODALITIES: tuple[Modality, ...] = ("text", "image", "audio")
Precision = Literal["auto", "float32", "float16", "bfloat16"]

__all__ = [
    "MODALITIES",
    "BatchEncoding",
    "Encoder",
    "Modality",
    "Precision",
    "TorchEncoder",
    "l2_normalize",
    "resolve_device",
]


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns a batch of inputs into L2-normalised float32 rows."""

    name: str
    dim: int
    modality: Modality

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        """Encode ``batch`` into a ``float32`` array of shape ``(len(batch), dim)``."""
        ...


@dataclass
class BatchEncoding:
    """Result of :meth:`TorchEncoder.encode_many`: good rows plus one error per bad item.

    ``vectors[j]`` belongs to input position ``ok[j]``; ``errors`` maps input positions (or the
    caller's keys, when given) to the typed error that item raised.
    """

    vectors: np.ndarray
    ok: list[int]
    errors: dict[Any, InputError] = field(default_factory=dict)


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation in float32; zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32, copy=False)


def resolve_device(device: str | None = None) -> Any:
    """``None`` or ``"auto"`` picks CUDA when present, else CPU; any torch device string works."""
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class TorchEncoder(ABC):
    """Base for encoders backed by a torch module: device, precision, batching, normalisation.

    Subclasses set ``modality`` and implement :meth:`prepare`, :meth:`_forward` and optionally
    :meth:`_cost`. ``name`` is the stable identifier recorded with a collection; ``dim`` the
    output width.
    """

    modality: Modality

    def __init__(
        self,
        *,
        name: str,
        dim: int,
        device: str | None = None,
        batch_size: int = 32,
        precision: Precision = "auto",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.name = name
        self.dim = int(dim)
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.precision = precision

    # -- to implement -------------------------------------------------------------------------
    @abstractmethod
    def prepare(self, item: Any, key: Any = None) -> Any:
        """Validate and pre-process one input on the CPU; raise ``InputError`` naming ``key``."""

    @abstractmethod
    def _forward(self, prepared: list[Any]) -> Any:
        """Run the model on a list of prepared items; return a ``(n, dim)`` torch tensor."""

    def _cost(self, prepared: Any) -> int:
        """Relative cost of one prepared item, used to group similar items into batches."""
        return 0

    # -- shared machinery ---------------------------------------------------------------------
    def encode(self, batch: Sequence[Any], keys: Sequence[Any] | None = None) -> np.ndarray:
        """Encode every item or raise the first item's ``InputError`` (naming that item)."""
        keys = list(range(len(batch))) if keys is None else list(keys)
        prepared = [self.prepare(item, key) for item, key in zip(batch, keys, strict=True)]
        return self.encode_prepared(prepared)

    def encode_many(self, batch: Sequence[Any], keys: Sequence[Any] | None = None) -> BatchEncoding:
        """Encode what can be encoded; report each bad item instead of failing the batch."""
        keys = list(range(len(batch))) if keys is None else list(keys)
        prepared, ok, errors = [], [], {}
        for pos, (item, key) in enumerate(zip(batch, keys, strict=True)):
            try:
                prepared.append(self.prepare(item, key))
                ok.append(pos)
            except InputError as err:
                errors[key] = err
        return BatchEncoding(self.encode_prepared(prepared), ok, errors)

    def encode_prepared(self, prepared: Sequence[Any]) -> np.ndarray:
        """Forward pass in cost-sorted batches; rows come back in the caller's order."""
        import torch

        out = np.empty((len(prepared), self.dim), dtype=np.float32)
        if not prepared:
            return out
        # Stable sort by cost so that padding is minimal and equal-cost items keep their order.
        order = sorted(range(len(prepared)), key=lambda i: self._cost(prepared[i]))
        with torch.inference_mode(), self._autocast():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                rows = self._forward([prepared[i] for i in idx])
                rows = torch.nn.functional.normalize(rows.float(), dim=-1)
                out[idx] = rows.cpu().numpy()
        return out

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        import torch

        dtype = self._autocast_dtype()
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _autocast_dtype(self) -> Any:
        import torch

        if self.precision == "float32":
            return None
        if self.precision == "auto":
            # Half precision only where it is both fast and safe: on a GPU.
            return torch.float16 if self.device.type == "cuda" else None
        return {"float16": torch.float16, "bfloat16": torch.bfloat16}[self.precision]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, device={self.device})"
