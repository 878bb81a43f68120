"""Encoders: one protocol, a registry of specs, text / image / audio towers, and fusion."""

from mosaicrec.encoders.base import MODALITIES, BatchEncoding, Encoder, Modality, l2_normalize
from mosaicrec.encoders.fusion import Fuser, FusionConfig
from mosaicrec.encoders.registry import (
    EncoderRegistry,
    EncoderSpec,
    create_encoder,
    default_registry,
)

__all__ = [
    "MODALITIES",
    "BatchEncoding",
    "Encoder",
    "EncoderRegistry",
    "EncoderSpec",
    "FusionConfig",
    "Fuser",
    "Modality",
    "create_encoder",
    "default_registry",
    "l2_normalize",
]
