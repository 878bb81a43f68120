"""open_clip CLIP: the image tower, and its text tower for text queries into the image space.

One loaded CLIP model serves both towers: :meth:`ClipImageEncoder.text_tower` and
:meth:`ClipTextEncoder.image_tower` wrap the *same* module, so a profile that needs images and
text-to-image queries loads the weights once. Weights are either pretrained (an open_clip tag such
as ``laion2b_s34b_b79k``, a checkpoint file, or a local open_clip directory) or random from
``spec.seed`` with the architecture in ``spec.architecture`` (default: open_clip's own config for
``spec.model``, e.g. ``ViT-B-32``).
"""

from __future__ import annotations

import os
from typing import Any

from mosaicrec.encoders.base import TorchEncoder
from mosaicrec.encoders.loading import can_download, missing_weights, seeded
from mosaicrec.encoders.media import load_image
from mosaicrec.encoders.registry import EncoderSpec
from mosaicrec.encoders.text import check_text
from mosaicrec.errors import ConfigError

__all__ = ["ClipImageEncoder", "ClipTextEncoder", "create_clip_encoder"]


class _ClipTower(TorchEncoder):
    """What both towers share: the open_clip model, its preprocessing and tokenizer."""

    tower: str

    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, *, spec: EncoderSpec):
        spec = spec.model_copy(update={"tower": self.tower})
        super().__init__(
            name=spec.display_name,
            dim=_embed_dim(model),
            device=spec.device,
            batch_size=spec.batch_size,
            precision=spec.precision,
        )
        self.spec = spec
        self.model = model.to(self.device).eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer

    def _sibling(self, cls: type[_ClipTower]) -> Any:
        # Same weights, same device; the spec records which tower the vectors come from.
        return cls(self.model, self.preprocess, self.tokenizer, spec=self.spec)


class ClipImageEncoder(_ClipTower):
    """Images (paths, bytes, PIL images) -> CLIP image embeddings."""

    modality = "image"
    tower = "image"

    def prepare(self, item: Any, key: Any = None) -> Any:
        return self.preprocess(load_image(item, key))

    def _forward(self, prepared: list[Any]) -> Any:
        import torch

        pixels = torch.stack(prepared).to(self.device)
        return self.model.encode_image(pixels)

    def text_tower(self) -> ClipTextEncoder:
        """The text encoder into this image space, sharing the loaded model."""
        return self._sibling(ClipTextEncoder)


class ClipTextEncoder(_ClipTower):
    """Text queries -> vectors in the CLIP *image* space (for text-to-image search)."""

    modality = "text"
    tower = "text"

    def prepare(self, item: Any, key: Any = None) -> Any:
        # Tokenised here (CPU, per item): every row is padded to the fixed context length.
        return self.tokenizer([check_text(item, key)])[0]

    def _forward(self, prepared: list[Any]) -> Any:
        import torch

        tokens = torch.stack(prepared).to(self.device)
        return self.model.encode_text(tokens)

    def image_tower(self) -> ClipImageEncoder:
        """The image encoder of the same model."""
        return self._sibling(ClipImageEncoder)


def _embed_dim(model: Any) -> int:
    visual = getattr(model, "visual", None)
    dim = getattr(visual, "output_dim", None)
    if dim is None:
        raise ConfigError(f"cannot tell the embedding width of {type(model).__name__}")
    return int(dim)


def create_clip_encoder(spec: EncoderSpec) -> ClipImageEncoder | ClipTextEncoder:
    """Build the image or text tower (``spec.tower``) of an open_clip model."""
    if spec.tower not in ("image", "text"):
        raise ConfigError(f"open_clip has image and text towers, not {spec.tower!r}")
    load = _random_clip if spec.weights == "random" else _pretrained_clip
    model, preprocess, tokenizer = load(spec)
    image = ClipImageEncoder(model, preprocess, tokenizer, spec=spec)
    return image if spec.tower == "image" else image.text_tower()


def _random_clip(spec: EncoderSpec) -> tuple[Any, Any, Any]:
    import open_clip
    from open_clip.model import CLIP, CustomTextCLIP

    cfg = dict(spec.architecture or open_clip.get_model_config(spec.model) or {})
    if not cfg:
        raise ConfigError(
            f"unknown open_clip model {spec.model!r} and no architecture given; "
            f"known models: {', '.join(open_clip.list_models())}"
        )
    cls = CustomTextCLIP if cfg.pop("custom_text", False) else CLIP
    with seeded(spec.seed):
        model = cls(**cfg)
    preprocess = open_clip.image_transform(model.visual.image_size, is_train=False)
    context = int(cfg.get("text_cfg", {}).get("context_length", 77))
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=context)
    return model, preprocess, tokenizer


def _pretrained_clip(spec: EncoderSpec) -> tuple[Any, Any, Any]:
    import open_clip
    from open_clip.pretrained import get_pretrained_cfg

    what = "open_clip"
    kwargs: dict[str, Any] = {"cache_dir": spec.cache_dir}
    if os.path.isdir(spec.model):  # a local open_clip folder: open_clip_config.json + weights
        name, pretrained = f"local-dir:{spec.model}", None
        kwargs["require_pretrained"] = True
    elif spec.model.startswith("hf-hub:"):
        if not can_download(spec.allow_download):
            raise missing_weights(
                what, spec.model, " (downloads are disabled or the hub is unreachable)"
            )
        name, pretrained = spec.model, None
        kwargs["require_pretrained"] = True
    else:
        if open_clip.get_model_config(spec.model) is None:
            raise ConfigError(
                f"unknown open_clip model {spec.model!r}; known models: "
                f"{', '.join(open_clip.list_models())}"
            )
        name, pretrained = spec.model, spec.pretrained
        if not pretrained:
            raise ConfigError(
                f"open_clip model {spec.model!r} needs `pretrained` (a tag such as "
                f"{open_clip.list_pretrained_tags_by_model(spec.model)[:3]} or a checkpoint "
                "path), or weights='random'"
            )
        if not os.path.isfile(pretrained):
            tag_cfg = get_pretrained_cfg(spec.model, pretrained)
            if not tag_cfg and _looks_like_path(pretrained):
                raise missing_weights(what, spec.model, f": no checkpoint file at {pretrained!r}")
            if not tag_cfg:
                raise ConfigError(
                    f"{pretrained!r} is neither a checkpoint file nor a pretrained tag of "
                    f"{spec.model!r}; tags: {open_clip.list_pretrained_tags_by_model(spec.model)}"
                )
            cached = _cached_checkpoint(tag_cfg, spec.cache_dir)
            if cached:
                # Load the cached file directly (no network round trip), with the tag's settings.
                pretrained = cached
                kwargs.update(_tag_options(tag_cfg))
            elif not can_download(spec.allow_download):
                raise missing_weights(
                    what,
                    f"{spec.model} / {spec.pretrained}",
                    " (not in the cache; downloads are disabled or the hub is unreachable)",
                )
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=pretrained, **kwargs
        )
        tokenizer = open_clip.get_tokenizer(name, cache_dir=spec.cache_dir)
    except Exception as err:  # open_clip raises RuntimeError, FileNotFoundError, HTTP errors
        raise missing_weights(
            what, f"{spec.model} / {spec.pretrained}", f": {type(err).__name__}"
        ) from None
    return model, preprocess, tokenizer


def _looks_like_path(value: str) -> bool:
    suffixes = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
    return os.sep in value or "/" in value or value.endswith(suffixes)


def _cached_checkpoint(tag_cfg: dict[str, Any], cache_dir: str | None) -> str | None:
    """The already-downloaded checkpoint for a pretrained tag, or None. Never touches the net."""
    if tag_cfg.get("file"):
        return str(tag_cfg["file"])
    if tag_cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(tag_cfg["hf_hub"])
        # open_clip prefers a .safetensors twin of the named file, then the file itself.
        filename = filename or "open_clip_pytorch_model.bin"
        safe = filename.rsplit(".", 1)[0] + ".safetensors"
        for candidate in dict.fromkeys([safe, filename]):
            found = try_to_load_from_cache(repo, candidate, cache_dir=cache_dir)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    if tag_cfg.get("url"):
        folder = cache_dir or os.path.expanduser("~/.cache/clip")
        path = os.path.join(folder, os.path.basename(tag_cfg["url"]))
        if os.path.isfile(path):
            return path
    return None


def _tag_options(tag_cfg: dict[str, Any]) -> dict[str, Any]:
    """The preprocessing and activation a pretrained tag implies, for loading it from a file."""
    options: dict[str, Any] = {"force_quick_gelu": bool(tag_cfg.get("quick_gelu", False))}
    for key in ("mean", "std", "interpolation", "resize_mode"):
        if tag_cfg.get(key) is not None:
            options[f"image_{key}"] = tag_cfg[key]
    return options
