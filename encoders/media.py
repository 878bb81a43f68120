"""Decoding images and audio into model-ready arrays, with one typed error per bad item.

* Images come from a path, raw bytes or a PIL image and leave as an RGB ``PIL.Image``. The pixel
  count is checked from the header *before* decoding, so a decompression bomb is refused without
  allocating it.
* Audio comes from a path or raw bytes and is decoded with soundfile (libsndfile: WAV, FLAC, OGG,
  MP3, ...) from the *content*: paths are opened as file objects, so the extension is never used.
  It is mixed down to mono, resampled with torchaudio and cut deterministically: ``"crop"`` keeps
  the first ``max_seconds``; ``"chunk"`` splits the clip into consecutive ``max_seconds`` windows.
  A file cut short (WAV, Ogg, MP3 cut inside a frame; see ``_truncation``) is refused, since
  libsndfile would decode its remains silently. Silence is valid audio and is embedded.

Every failure raises :class:`~mosaicrec.errors.MediaDecodeError` naming the item (its key, or the
path when no key is given).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mosaicrec.encoders._truncation import truncation
from mosaicrec.errors import MediaDecodeError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "MAX_IMAGE_PIXELS",
    "MAX_AUDIO_CHUNKS",
    "SILENCE_PEAK",
    "load_image",
    "load_audio",
]

# Same ceiling as Pillow's own bomb guard (~89.5 megapixels), but checked by us on the header so
# the error is ours and names the item; Pillow only warns below twice this size.
MAX_IMAGE_PIXELS = 89_478_485
# A window whose absolute peak stays below this (-80 dBFS) is silence: "chunk" mode skips such
# windows when the clip has louder ones. Silence is never an error.
SILENCE_PEAK = 1e-4
# "chunk" mode reads at most this many windows: a two-hour file must not fill the memory.
MAX_AUDIO_CHUNKS = 64

Source = Any  # str | os.PathLike | bytes | bytearray | memoryview | PIL.Image.Image


def _name(source: Source, key: Any) -> Any:
    """The item name used in errors: the caller's key, else the path, else nothing."""
    if key is not None:
        return key
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return None


def _open_binary(source: Source, what: str, item: Any) -> io.IOBase:
    """A seekable binary file object over a path or raw bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise MediaDecodeError(f"{what} bytes are empty", item=item)
        return io.BytesIO(bytes(source))
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            if path.stat().st_size == 0:
                raise MediaDecodeError(f"{what} file {str(path)!r} is empty", item=item)
            return open(path, "rb")  # noqa: SIM115 - closed by the caller
        except OSError as err:
            raise MediaDecodeError(
                f"cannot read {what} file {str(path)!r}: {err.strerror or err}", item=item
            ) from None
    raise MediaDecodeError(
        f"expected a path or bytes for {what}, got {type(source).__name__}", item=item
    )


# -- images -------------------------------------------------------------------------------------
def load_image(
    source: Source, key: Any = None, *, max_pixels: int = MAX_IMAGE_PIXELS
) -> Image.Image:
    """Decode ``source`` (path, bytes or PIL image) into an RGB image.

    EXIF orientation is applied; transparent images are composed onto white (CLIP was trained on
    opaque photos, and black under transparent pixels would dominate).
    """
    from PIL import Image, ImageOps

    item = _name(source, key)
    if isinstance(source, Image.Image):
        img = source
        _check_pixels(img, max_pixels, item)
    else:
        fh = _open_binary(source, "image", item)
        try:
            with fh, warnings.catch_warnings():
                # Our own check below replaces Pillow's warning; its hard error still applies.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(fh)
                _check_pixels(img, max_pixels, item)
                img.load()
        except MediaDecodeError:
            raise
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
            raise MediaDecodeError(
                f"cannot decode image: {type(err).__name__}: {err}", item=item
            ) from None
    try:
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(canvas, rgba)
        return img.convert("RGB")
    except (OSError, ValueError) as err:
        raise MediaDecodeError(f"cannot convert image to RGB: {err}", item=item) from None


def _check_pixels(img: Image.Image, max_pixels: int, item: Any) -> None:
    width, height = img.size
    if width <= 0 or height <= 0:
        raise MediaDecodeError(f"image has no pixels ({width}x{height})", item=item)
    if width * height > max_pixels:
        raise MediaDecodeError(
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (possible decompression bomb); downscale it first",
            item=item,
        )


# -- audio --------------------------------------------------------------------------------------
def load_audio(
    source: Source,
    key: Any = None,
    *,
    target_sr: int,
    max_seconds: float,
    long: Literal["crop", "chunk"] = "crop",
    max_chunks: int = MAX_AUDIO_CHUNKS,
) -> np.ndarray | list[np.ndarray]:
    """Decode, mix to mono, resample to ``target_sr`` and cut to ``max_seconds`` windows.

    ``"crop"``: a float32 array of at most ``max_seconds * target_sr`` samples, taken from the
    start of the clip. ``"chunk"``: a list of consecutive windows of exactly that length, from the
    start, at most ``max_chunks`` of them; the shorter tail is kept as a last window when it is at
    least half a window long or when it is the whole clip (so a short clip gives the same single
    window in both modes). Nothing random happens.
    """
    if long not in ("crop", "chunk"):
        raise ValueError(f"long must be 'crop' or 'chunk', got {long!r}")
    if max_seconds <= 0 or target_sr <= 0:
        raise ValueError("max_seconds and target_sr must be > 0")
    item = _name(source, key)
    window = int(round(max_seconds * target_sr))
    limit_s = max_seconds * (1 if long == "crop" else max_chunks)
    wave, sr = _decode(source, item, limit_s)
    wave = _resample(wave, sr, target_sr)
    if long == "crop":
        wave = wave[:window]
        _check_signal(wave, item)
        return wave
    _check_signal(wave, item)
    n_full = len(wave) // window
    chunks = [wave[i * window : (i + 1) * window] for i in range(min(n_full, max_chunks))]
    tail = wave[n_full * window :]
    if len(chunks) < max_chunks and len(tail) and (not chunks or len(tail) >= window // 2):
        chunks.append(tail)
    # A window of pure silence between sounds carries nothing to embed; a clip that is silent
    # throughout is still valid audio (a pause, a silent track) and keeps its first window.
    loud = [c for c in chunks if float(np.max(np.abs(c))) >= SILENCE_PEAK]
    return loud or chunks[:1]


def _decode(source: Source, item: Any, limit_s: float) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of at most ``limit_s`` seconds of ``source``."""
    import soundfile as sf

    fh = _open_binary(source, "audio", item)
    with fh:
        _check_complete(fh, item)
        try:
            with sf.SoundFile(fh) as snd:
                sr = int(snd.samplerate)
                frames = math.ceil(limit_s * sr) + 1
                data = snd.read(frames=frames, dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as err:
            raise MediaDecodeError(f"cannot decode audio: {err}", item=item) from None
    if data.shape[0] == 0 or sr <= 0:
        raise MediaDecodeError("audio has no samples (zero length)", item=item)
    return data.mean(axis=1, dtype=np.float32), sr


def _check_complete(fh: Any, item: Any) -> None:
    """libsndfile silently decodes what is there of a cut file: check the container first."""
    reason = truncation(fh)
    if reason is not None:
        raise MediaDecodeError(f"audio file is truncated: {reason}", item=item)


def _resample(wave: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    if sr == target_sr:
        return np.ascontiguousarray(wave, dtype=np.float32)
    import torch
    import torchaudio.functional as AF

    with torch.inference_mode():
        out = AF.resample(torch.from_numpy(np.ascontiguousarray(wave)), sr, target_sr)
    return out.numpy().astype(np.float32, copy=False)


def _check_signal(wave: np.ndarray, item: Any) -> None:
    if wave.size == 0:
        raise MediaDecodeError("audio has no samples (zero length)", item=item)
    if not np.isfinite(wave).all():
        raise MediaDecodeError("audio contains NaN or infinite samples", item=item)
    # Silence is valid audio: it is embedded like any other clip.
