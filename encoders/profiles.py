"""Encoder profiles: which encoder embeds each modality, and how they are fused.

A profile is data (names or specs plus fusion weights). ``load_profile`` turns it into an
:class:`EncoderSet`: the item encoders per modality, the *query* encoders that put text into each
space (CLIP's text tower for images, CLAP's for audio), and the :class:`Fuser`.

Built-in profiles:

* ``default`` -- real pretrained models (all-MiniLM-L6-v2, open_clip ViT-B-32 laion2b, CLAP
  htsat-unfused). Fails at load with a clear message when the weights are not available.
* ``offline`` -- runs anywhere with nothing downloaded: real MiniLM text weights when the
  ``mosaicrec[minilm]`` extra is installed (else a tiny untrained text model), and tiny,
  **untrained** image and audio encoders of the real architectures.
* ``tiny`` -- every encoder tiny and untrained (tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.encoders.base import MODALITIES, Encoder, Modality
from mosaicrec.encoders.fusion import Fuser, FusionConfig
from mosaicrec.encoders.loading import packaged_minilm_dir
from mosaicrec.encoders.registry import EncoderRegistry, EncoderSpec, default_registry
from mosaicrec.errors import ConfigError

__all__ = [
    "EncoderProfile",
    "EncoderSet",
    "builtin_profile",
    "fuser_from_schema",
    "load_profile",
    "PROFILE_NAMES",
]

PROFILE_NAMES = ("default", "offline", "tiny")
SpecRef = str | EncoderSpec


class EncoderProfile(StrictModel):
    """Encoder per modality (a registry name or a spec; ``None`` = modality not used)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "custom"
    text: SpecRef | None = "minilm"
    image: SpecRef | None = "clip-vit-b-32"
    audio: SpecRef | None = "clap-htsat-unfused"
    fusion: FusionConfig = Field(default_factory=FusionConfig)

    def specs(self, registry: EncoderRegistry) -> dict[Modality, EncoderSpec]:
        refs = {"text": self.text, "image": self.image, "audio": self.audio}
        return {m: registry.resolve(ref) for m, ref in refs.items() if ref is not None}


def builtin_profile(name: str) -> EncoderProfile:
    """One of :data:`PROFILE_NAMES`."""
    if name == "default":
        return EncoderProfile(name="default")
    if name == "offline":
        text = "minilm" if packaged_minilm_dir() else "tiny-text"
        return EncoderProfile(name="offline", text=text, image="tiny-clip", audio="tiny-clap")
    if name == "tiny":
        return EncoderProfile(name="tiny", text="tiny-text", image="tiny-clip", audio="tiny-clap")
    raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}")


@dataclass
class EncoderSet:
    """Loaded encoders of a profile.

    ``items[m]`` embeds items' modality ``m``; ``text_queries[space]`` embeds a text query into
    ``space`` (``text``, ``image`` or ``audio``); ``fuser`` combines item blocks.
    """

    profile: EncoderProfile
    specs: dict[Modality, EncoderSpec]
    items: dict[Modality, Encoder]
    text_queries: dict[Modality, Encoder]
    fuser: Fuser
    untrained: list[str] = field(default_factory=list)

    @property
    def modalities(self) -> tuple[Modality, ...]:
        return self.fuser.modalities

    def vector_spaces(self) -> dict[str, tuple[int, str]]:
        """Named vector -> (dim, encoder name), ``fused`` included."""
        spaces = {m: (enc.dim, enc.name) for m, enc in self.items.items()}
        weights = ",".join(f"{m}={self.fuser.config.weights[m]:g}" for m in self.modalities)
        spaces["fused"] = (self.fuser.dim, f"fusion[{weights}]")
        return spaces

    def profile_record(self) -> dict[str, Any]:
        """What a collection stores so that readers can rebuild the same encoders."""
        return {
            "name": self.profile.name,
            "specs": {m: s.model_dump(mode="json") for m, s in self.specs.items()},
            "fusion": self.profile.fusion.model_dump(mode="json"),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], device: str | None = None) -> EncoderSet:
        """Rebuild the encoders recorded with a collection (see :meth:`profile_record`)."""
        specs = {m: EncoderSpec.model_validate(s) for m, s in record["specs"].items()}
        profile = EncoderProfile(
            name=record.get("name", "custom"),
            fusion=FusionConfig.model_validate(record["fusion"]),
            **{m: specs.get(m) for m in MODALITIES},
        )
        return load_profile(profile, device=device)


def load_profile(
    profile: str | EncoderProfile,
    *,
    device: str | None = None,
    registry: EncoderRegistry | None = None,
) -> EncoderSet:
    """Build every encoder of a profile; CLIP and CLAP are loaded once for both towers."""
    registry = registry or default_registry()
    profile = builtin_profile(profile) if isinstance(profile, str) else profile
    specs = profile.specs(registry)
    if device is not None:
        specs = {m: s.model_copy(update={"device": device}) for m, s in specs.items()}
    items: dict[Modality, Encoder] = {m: registry.create(s) for m, s in specs.items()}
    queries: dict[Modality, Encoder] = {}
    if "text" in items:
        queries["text"] = items["text"]
    for m in ("image", "audio"):
        if m in items and hasattr(items[m], "text_tower"):
            queries[m] = items[m].text_tower()
    untrained = [f"{m}: {s.display_name}" for m, s in specs.items() if s.weights == "random"]
    fuser = Fuser({m: enc.dim for m, enc in items.items()}, profile.fusion)
    return EncoderSet(profile, specs, items, queries, fuser, untrained)


def fuser_from_schema(schema: Any) -> Fuser | None:
    """The fuser a collection was built with, from its recorded schema alone (no model load):
    the modality widths and the fusion weights. ``None`` when the schema records no profile."""
    record = getattr(schema, "profile", None)
    if not record or "fusion" not in record:
        return None
    dims = {m: schema.vectors[m].dim for m in MODALITIES if m in schema.vectors}
    return Fuser(dims, FusionConfig.model_validate(record["fusion"])) if dims else None
