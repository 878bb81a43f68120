"""Encoder specs as data, a registry of named specs, and the ``create_encoder`` factory.

An :class:`EncoderSpec` says *what* to build: the model family, which tower, the architecture
(hub id, open_clip name or an explicit small config) and the weights (pretrained tag or path,
or random initialisation from a seed). Families map to factories; names map to specs. Nothing
is registered at import time: :func:`default_registry` builds a fresh registry on each call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.encoders.base import Encoder, Modality, Precision
from mosaicrec.errors import ConfigError

__all__ = ["EncoderSpec", "EncoderRegistry", "default_registry", "create_encoder", "Family"]

Family = Literal["hf-text", "open-clip", "clap"]
Factory = Callable[["EncoderSpec"], Encoder]


def _downloads_allowed() -> bool:
    offline = {"1", "true", "yes", "on"}
    return not any(
        os.environ.get(var, "").lower() in offline
        for var in ("MOSAICREC_OFFLINE", "HF_HUB_OFFLINE")
    )


class EncoderSpec(StrictModel):
    """Everything needed to build one encoder, and nothing about how it is used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: Family
    tower: Modality = Field(description="which tower's output: text, image or audio")
    model: str = Field(description="hub id or local directory (hf-text, clap); open_clip name")
    pretrained: str | None = Field(
        default=None, description="open_clip pretrained tag or checkpoint path"
    )
    weights: Literal["pretrained", "random"] = "pretrained"
    architecture: dict[str, Any] | None = Field(
        default=None, description="explicit architecture config (used with random weights)"
    )
    seed: int = 0
    device: str | None = None
    batch_size: int = Field(default=32, ge=1)
    precision: Precision = "auto"
    max_length: int | None = Field(default=None, ge=1, description="token limit for text")
    audio_max_seconds: float = Field(default=10.0, gt=0)
    audio_long: Literal["crop", "chunk"] = "crop"
    allow_download: bool = Field(default_factory=_downloads_allowed)
    cache_dir: str | None = None

    @property
    def display_name(self) -> str:
        """Stable name recorded with collections: family, tower, model and weights."""
        weights = self.pretrained or "hub" if self.weights == "pretrained" else f"random{self.seed}"
        tiny = "-custom" if self.architecture else ""
        return f"{self.family}:{self.tower}:{self.model}{tiny}@{weights}"


class EncoderRegistry:
    """Names -> specs, families -> factories."""

    def __init__(self) -> None:
        self._specs: dict[str, EncoderSpec] = {}
        self._factories: dict[str, Factory] = {}

    def register_factory(self, family: str, factory: Factory) -> None:
        self._factories[family] = factory

    def register(self, name: str, spec: EncoderSpec | dict[str, Any]) -> EncoderSpec:
        spec = spec if isinstance(spec, EncoderSpec) else EncoderSpec.model_validate(spec)
        self._specs[name] = spec
        return spec

    def names(self) -> list[str]:
        return sorted(self._specs)

    def spec(self, name: str) -> EncoderSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise ConfigError(
                f"unknown encoder {name!r}; registered encoders: {', '.join(self.names())}"
            ) from None

    def resolve(self, spec: str | EncoderSpec | dict[str, Any], **overrides: Any) -> EncoderSpec:
        """A name, a spec or a plain dict (e.g. from JSON/YAML) -> a validated spec."""
        if isinstance(spec, str):
            spec = self.spec(spec)
        elif isinstance(spec, dict):
            base = spec.get("name")
            data = {k: v for k, v in spec.items() if k != "name"}
            # Validate the merged fields: model_copy(update=...) would accept anything.
            merged = {**self.spec(base).model_dump(), **data} if base else data
            spec = EncoderSpec.model_validate(merged)
        if overrides:
            spec = EncoderSpec.model_validate({**spec.model_dump(), **overrides})
        return spec

    def create(self, spec: str | EncoderSpec | dict[str, Any], **overrides: Any) -> Encoder:
        spec = self.resolve(spec, **overrides)
        try:
            factory = self._factories[spec.family]
        except KeyError:
            raise ConfigError(
                f"no factory for encoder family {spec.family!r}; known: {sorted(self._factories)}"
            ) from None
        return factory(spec)


def _builtin_factories() -> dict[str, Factory]:
    # Imported lazily so that importing the registry does not import torch or transformers.
    def hf_text(spec: EncoderSpec) -> Encoder:
        from mosaicrec.encoders.text import create_text_encoder

        return create_text_encoder(spec)

    def open_clip(spec: EncoderSpec) -> Encoder:
        from mosaicrec.encoders.image import create_clip_encoder

        return create_clip_encoder(spec)

    def clap(spec: EncoderSpec) -> Encoder:
        from mosaicrec.encoders.audio import create_clap_encoder

        return create_clap_encoder(spec)

    return {"hf-text": hf_text, "open-clip": open_clip, "clap": clap}


def _builtin_specs() -> dict[str, EncoderSpec]:
    from mosaicrec.encoders.tiny import TINY_BERT, TINY_CLAP, TINY_CLIP

    minilm = EncoderSpec(
        family="hf-text", tower="text", model="sentence-transformers/all-MiniLM-L6-v2"
    )
    clip = EncoderSpec(
        family="open-clip", tower="image", model="ViT-B-32", pretrained="laion2b_s34b_b79k"
    )
    clap = EncoderSpec(family="clap", tower="audio", model="laion/clap-htsat-unfused")
    tiny = {"weights": "random", "seed": 0}
    specs = {
        "minilm": minilm,
        "clip-vit-b-32": clip,
        "clip-vit-b-32-text": clip.model_copy(update={"tower": "text"}),
        "clap-htsat-unfused": clap,
        "clap-htsat-unfused-text": clap.model_copy(update={"tower": "text"}),
        "tiny-text": minilm.model_copy(
            update={**tiny, "model": "tiny-bert", "architecture": TINY_BERT}
        ),
        "tiny-clip": clip.model_copy(
            update={**tiny, "model": "tiny-clip", "pretrained": None, "architecture": TINY_CLIP}
        ),
        "tiny-clap": clap.model_copy(
            update={**tiny, "model": "tiny-clap", "architecture": TINY_CLAP}
        ),
    }
    specs["tiny-clip-text"] = specs["tiny-clip"].model_copy(update={"tower": "text"})
    specs["tiny-clap-text"] = specs["tiny-clap"].model_copy(update={"tower": "text"})
    return specs


def default_registry() -> EncoderRegistry:
    """A fresh registry with the built-in families and named specs."""
    registry = EncoderRegistry()
    for family, factory in _builtin_factories().items():
        registry.register_factory(family, factory)
    for name, spec in _builtin_specs().items():
        registry.register(name, spec)
    return registry


def create_encoder(
    spec: str | EncoderSpec | dict[str, Any],
    *,
    registry: EncoderRegistry | None = None,
    **overrides: Any,
) -> Encoder:
    """Build an encoder from a registered name, a spec or a config dict.

    >>> enc = create_encoder("tiny-text")  # doctest: +SKIP
    >>> enc = create_encoder({"name": "minilm", "batch_size": 64})  # doctest: +SKIP
    """
    return (registry or default_registry()).create(spec, **overrides)
