"""CLAP through transformers: the audio tower, and its text tower for text queries into audio space.

Audio is decoded by :func:`~mosaicrec.encoders.media.load_audio` (soundfile, by content), mixed to
mono, resampled to the feature extractor's rate (48 kHz) and cut *before* feature extraction into
windows no longer than the extractor's ``max_length``: ``ClapFeatureExtractor`` crops longer input
at a random offset (``rand_trunc``) or stacks random crops (``fusion``), and we want the same
vector for the same file every time. ``audio_long="crop"`` embeds the first window;
``"chunk"`` embeds every window and averages the (normalised) window embeddings.

One loaded ``ClapModel`` serves both towers (:meth:`ClapAudioEncoder.text_tower`,
:meth:`ClapTextEncoder.audio_tower`).
"""

from __future__ import annotations

import math
from typing import Any

from mosaicrec.encoders.base import TorchEncoder
from mosaicrec.encoders.loading import load_pretrained, seeded
from mosaicrec.encoders.media import load_audio
from mosaicrec.encoders.registry import EncoderSpec
from mosaicrec.encoders.text import TokenizedTextTower
from mosaicrec.errors import ConfigError

__all__ = ["ClapAudioEncoder", "ClapTextEncoder", "create_clap_encoder"]


class _ClapTower(TorchEncoder):
    tower: str

    def __init__(
        self, model: Any, feature_extractor: Any, tokenizer: Any, *, spec: EncoderSpec
    ) -> None:
        spec = spec.model_copy(update={"tower": self.tower})
        super().__init__(
            name=spec.display_name,
            dim=model.config.projection_dim,
            device=spec.device,
            batch_size=spec.batch_size,
            precision=spec.precision,
        )
        self.spec = spec
        self.model = model.to(self.device).eval()
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer

    def _sibling(self, cls: type[_ClapTower]) -> Any:
        return cls(self.model, self.feature_extractor, self.tokenizer, spec=self.spec)


class ClapAudioEncoder(_ClapTower):
    """Audio (paths or bytes; WAV, FLAC, OGG, MP3, ...) -> CLAP audio embeddings."""

    modality = "audio"
    tower = "audio"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fe = self.feature_extractor
        # Never hand the extractor more than its max_length: that is where its randomness lives.
        self.window_seconds = min(self.spec.audio_max_seconds, fe.nb_max_samples / fe.sampling_rate)
        self.fusion = bool(getattr(self.model.config.audio_config, "enable_fusion", False))

    def prepare(self, item: Any, key: Any = None) -> Any:
        import torch

        fe = self.feature_extractor
        wave = load_audio(
            item,
            key,
            target_sr=fe.sampling_rate,
            max_seconds=self.window_seconds,
            long=self.spec.audio_long,
        )
        windows = [wave] if self.spec.audio_long == "crop" else wave
        features = fe(
            windows,
            sampling_rate=fe.sampling_rate,
            max_length=fe.nb_max_samples,
            truncation="fusion" if self.fusion else "rand_trunc",
            padding="repeatpad",
            return_tensors="np",
        )["input_features"]
        return torch.from_numpy(features)  # (windows, channels, frames, mel bins)

    def _cost(self, prepared: Any) -> int:
        return int(prepared.shape[0])

    def _forward(self, prepared: list[Any]) -> Any:
        import torch

        counts = [int(p.shape[0]) for p in prepared]
        features = torch.cat(prepared).to(self.device)
        # No window is longer than max_length, so is_longer is False everywhere (the extractor
        # would otherwise flag a random clip as "longer" when none is).
        is_longer = torch.zeros((features.shape[0], 1), dtype=torch.bool, device=self.device)
        out = self.model.get_audio_features(input_features=features, is_longer=is_longer)
        vectors = torch.nn.functional.normalize(out.pooler_output.float(), dim=-1)
        # Chunked clips: the mean of their window embeddings (renormalised by the caller).
        return torch.stack([part.mean(0) for part in torch.split(vectors, counts)])

    def text_tower(self) -> ClapTextEncoder:
        """The text encoder into this audio space, sharing the loaded model."""
        return self._sibling(ClapTextEncoder)


class ClapTextEncoder(TokenizedTextTower, _ClapTower):
    """Text queries -> vectors in the CLAP *audio* space (for text-to-audio search)."""

    modality = "text"
    tower = "text"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # RoBERTa positions start after the padding index: two fewer than the table holds.
        positions = int(self.model.config.text_config.max_position_embeddings) - 2
        limit = int(self.tokenizer.model_max_length or positions)
        self.max_length = min(self.spec.max_length or limit, limit, positions)

    def _forward(self, prepared: list[str]) -> Any:
        batch = self._tokenize(prepared)
        out = self.model.get_text_features(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        )
        return out.pooler_output

    def audio_tower(self) -> ClapAudioEncoder:
        """The audio encoder of the same model."""
        return self._sibling(ClapAudioEncoder)


def create_clap_encoder(spec: EncoderSpec) -> ClapAudioEncoder | ClapTextEncoder:
    """Build the audio or text tower (``spec.tower``) of a CLAP model."""
    if spec.tower not in ("audio", "text"):
        raise ConfigError(f"CLAP has audio and text towers, not {spec.tower!r}")
    if spec.weights == "random":
        model, fe, tokenizer = _random_clap(spec)
    else:
        model, fe, tokenizer = _pretrained_clap(spec)
    audio = ClapAudioEncoder(model, fe, tokenizer, spec=spec)
    return audio if spec.tower == "audio" else audio.text_tower()


def _random_clap(spec: EncoderSpec) -> tuple[Any, Any, Any]:
    from transformers import ClapConfig, ClapModel

    from mosaicrec.encoders.tiny import tiny_tokenizer

    # ClapConfig() defaults are the laion/clap-htsat-unfused architecture (HTSAT + RoBERTa).
    config = ClapConfig(**(spec.architecture or {}))
    with seeded(spec.seed):
        model = ClapModel(config)
    fe = feature_extractor_for(config.audio_config, spec.audio_max_seconds)
    # Character-level ids (< 256) fit any CLAP text vocabulary; no tokenizer files needed.
    return model, fe, tiny_tokenizer(model_max_length=512)


def feature_extractor_for(audio_config: Any, max_seconds: float) -> Any:
    """A ``ClapFeatureExtractor`` matching an HTSAT config, built locally (no files).

    The settings are those of laion/clap-htsat-unfused (48 kHz, 50-14000 Hz, ``rand_trunc``,
    ``repeatpad``), with the hop widened only when ``max_seconds`` would give more frames than
    the HTSAT input takes (``spec_size * freq_ratio``), as in the tiny test configs.
    """
    from transformers import ClapFeatureExtractor

    sr = 48_000
    mel_bins = int(audio_config.num_mel_bins)
    frames = int(audio_config.spec_size) * (int(audio_config.spec_size) // mel_bins)
    samples = int(round(max_seconds * sr))
    hop = max(480, math.ceil(samples / (frames - 1)))
    fft = max(1024, 2 ** math.ceil(math.log2(hop)))
    fe = ClapFeatureExtractor(
        feature_size=mel_bins,
        sampling_rate=sr,
        hop_length=hop,
        fft_window_size=fft,
        max_length_s=max_seconds,
        frequency_min=50,
        frequency_max=14_000,
        truncation="rand_trunc",
        padding="repeatpad",
    )
    fe.nb_max_samples = samples  # it stores max_length_s * sr, a float for fractional seconds
    return fe


def _pretrained_clap(spec: EncoderSpec) -> tuple[Any, Any, Any]:
    from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

    opts = {"what": "CLAP", "allow_download": spec.allow_download, "cache_dir": spec.cache_dir}
    model = load_pretrained(ClapModel.from_pretrained, spec.model, **opts)
    fe = load_pretrained(ClapFeatureExtractor.from_pretrained, spec.model, **opts)
    fe.nb_max_samples = int(round(fe.nb_max_samples))  # max_length_s * sr: may be a float
    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, spec.model, **opts)
    return model, fe, tokenizer
