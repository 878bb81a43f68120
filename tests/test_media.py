"""Image and audio decoding: formats by content, deterministic cuts, typed errors per item."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mosaicrec.encoders.media import SILENCE_PEAK, load_audio, load_image
from mosaicrec.errors import InputError, MediaDecodeError

SR = 16_000


def tone(seconds: float, sr: int = SR, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    wave = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)


def audio_bytes(wave: np.ndarray, sr: int = SR, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, sr, format=fmt)
    return buf.getvalue()


def image_bytes(size=(20, 12), mode="RGB", fmt="PNG", color=(200, 30, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format=fmt)
    return buf.getvalue()


# -- images -------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP"])
def test_image_from_bytes_path_and_pil(tmp_path, fmt):
    raw = image_bytes(fmt=fmt)
    path = tmp_path / "picture.bin"  # the extension is deliberately meaningless
    path.write_bytes(raw)
    for source in (raw, path, str(path), Image.open(io.BytesIO(raw))):
        img = load_image(source, key="it")
        assert img.mode == "RGB" and img.size == (20, 12)


def test_image_modes_become_rgb_and_transparency_goes_white():
    assert load_image(image_bytes(mode="L", color=90)).getpixel((0, 0)) == (90, 90, 90)
    clear = image_bytes(mode="RGBA", color=(0, 0, 0, 0))
    assert load_image(clear).getpixel((3, 3)) == (255, 255, 255)
    opaque = image_bytes(mode="RGBA", color=(10, 20, 30, 255))
    assert load_image(opaque).getpixel((3, 3)) == (10, 20, 30)


def test_image_exif_orientation_is_applied():
    img = Image.new("RGB", (30, 10), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    assert load_image(buf.getvalue()).size == (10, 30)


def _huge_png_header(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR announcing a giant image, and almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_from_header_without_decoding():
    bomb = _huge_png_header(60_000, 60_000)  # 3.6 gigapixels in a few dozen bytes
    with pytest.raises(MediaDecodeError, match="decompression bomb") as err:
        load_image(bomb, key="bomb")
    assert err.value.item == "bomb"


def test_pixel_limit_is_configurable():
    with pytest.raises(MediaDecodeError, match="over the limit"):
        load_image(image_bytes(size=(20, 12)), key=1, max_pixels=200)
    assert load_image(image_bytes(size=(20, 12)), max_pixels=240).size == (20, 12)


@pytest.mark.parametrize(
    "source, pattern",
    [
        (b"this is not an image at all", "cannot decode image"),
        (b"", "empty"),
        (12345, "expected a path or bytes"),
        (["list"], "expected a path or bytes"),
        (None, "expected a path or bytes"),
    ],
)
def test_bad_image_inputs_raise_typed_errors_naming_the_item(source, pattern):
    with pytest.raises(MediaDecodeError, match=pattern) as err:
        load_image(source, key="item-7")
    assert err.value.item == "item-7"
    assert "item-7" in str(err.value)
    assert isinstance(err.value, InputError)


def test_truncated_image_raises():
    raw = image_bytes(size=(64, 64), fmt="JPEG")
    with pytest.raises(MediaDecodeError, match="cannot decode image") as err:
        load_image(raw[: len(raw) // 2], key="cut")
    assert err.value.item == "cut"


def test_unreadable_image_paths(tmp_path):
    with pytest.raises(MediaDecodeError, match="cannot read image file") as err:
        load_image(tmp_path / "missing.jpg")
    assert err.value.item == str(tmp_path / "missing.jpg")  # no key: the path names the item
    with pytest.raises(MediaDecodeError, match="cannot read image file"):
        load_image(tmp_path, key="a-directory")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(MediaDecodeError, match="empty"):
        load_image(empty, key="e")


# -- audio --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG"])
def test_audio_formats_decode_by_content_not_extension(tmp_path, fmt):
    raw = audio_bytes(tone(0.5), fmt=fmt)
    misnamed = tmp_path / "clip.mp3"  # wrong extension on purpose
    misnamed.write_bytes(raw)
    for source in (raw, misnamed, str(misnamed), bytearray(raw), memoryview(raw)):
        wave = load_audio(source, "k", target_sr=SR, max_seconds=5)
        assert wave.dtype == np.float32 and wave.ndim == 1
        assert abs(len(wave) - SR // 2) <= 1
    lossless = load_audio(raw, target_sr=SR, max_seconds=5)
    if fmt != "OGG":
        np.testing.assert_allclose(lossless, tone(0.5), atol=1e-4)


def test_mono_mixdown_and_resampling():
    stereo = np.stack([tone(1.0), np.zeros(SR, np.float32)], axis=1)
    wave = load_audio(audio_bytes(stereo), target_sr=SR, max_seconds=5)
    np.testing.assert_allclose(wave, tone(1.0) / 2, atol=1e-4)
    up = load_audio(audio_bytes(tone(1.0)), target_sr=48_000, max_seconds=5)
    assert len(up) == 48_000
    down = load_audio(audio_bytes(tone(1.0)), target_sr=8_000, max_seconds=5)
    assert len(down) == 8_000
    # Resampling keeps the pitch: the spectrum peaks at 440 Hz either way.
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) * 48_000 / len(up) - 440) < 2


def test_crop_keeps_the_start_deterministically():
    rng = np.random.default_rng(0)
    wave = np.clip(0.2 * rng.standard_normal(5 * SR), -0.9, 0.9).astype(np.float32)
    raw = audio_bytes(wave, fmt="FLAC")
    first = load_audio(raw, target_sr=SR, max_seconds=1.5)
    assert len(first) == int(1.5 * SR)
    np.testing.assert_allclose(first, wave[: len(first)], atol=1e-4)
    np.testing.assert_array_equal(first, load_audio(raw, target_sr=SR, max_seconds=1.5))
    # With resampling the crop is still the start of the resampled clip (edge aside).
    full = load_audio(raw, target_sr=22_050, max_seconds=10)
    crop = load_audio(raw, target_sr=22_050, max_seconds=1.5)
    assert len(crop) == int(round(1.5 * 22_050))
    np.testing.assert_allclose(crop[:-64], full[: len(crop) - 64], atol=1e-4)


@pytest.mark.parametrize(
    "seconds, expected",
    [(0.4, [0.4]), (1.0, [1.0]), (2.3, [1.0, 1.0]), (2.6, [1.0, 1.0, 0.6])],
)
def test_chunking_into_windows(seconds, expected):
    wave = tone(seconds)
    chunks = load_audio(audio_bytes(wave), target_sr=SR, max_seconds=1.0, long="chunk")
    assert [round(len(c) / SR, 2) for c in chunks] == expected
    np.testing.assert_allclose(np.concatenate(chunks), wave[: sum(map(len, chunks))], atol=1e-4)


def test_chunking_limits_and_skips_silent_windows():
    many = tone(7.0)
    assert (
        len(load_audio(audio_bytes(many), target_sr=SR, max_seconds=1, long="chunk", max_chunks=3))
        == 3
    )
    gap = np.concatenate([tone(1.0), np.zeros(SR, np.float32), tone(1.0)])
    chunks = load_audio(audio_bytes(gap), target_sr=SR, max_seconds=1, long="chunk")
    assert len(chunks) == 2 and all(np.abs(c).max() > 0.1 for c in chunks)


def test_short_clip_gives_the_same_window_in_both_modes():
    raw = audio_bytes(tone(0.3))
    crop = load_audio(raw, target_sr=SR, max_seconds=1)
    (chunk,) = load_audio(raw, target_sr=SR, max_seconds=1, long="chunk")
    np.testing.assert_array_equal(crop, chunk)


def test_truncated_wav_is_detected():
    raw = audio_bytes(tone(1.0))
    with pytest.raises(MediaDecodeError, match="truncated") as err:
        load_audio(raw[: len(raw) // 2], "cut", target_sr=SR, max_seconds=5)
    assert err.value.item == "cut"
    with pytest.raises(MediaDecodeError, match="truncated"):
        load_audio(raw[:20], "header", target_sr=SR, max_seconds=5)


@pytest.mark.parametrize("fmt", ["FLAC", "OGG"])
def test_truncated_compressed_audio_raises(fmt):
    raw = audio_bytes(tone(1.0), fmt=fmt)
    with pytest.raises(MediaDecodeError):
        load_audio(raw[: len(raw) // 3], "cut", target_sr=SR, max_seconds=5)


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: audio_bytes(np.zeros(0, np.float32)), "zero length"),
        (lambda: b"RIFF" + struct.pack("<I", 13) + b"WAVEnot a fmt", "cannot decode audio"),
        (lambda: b"RIFF....WAVEnot really", "truncated"),
        (lambda: b"\x00" * 1000, "cannot decode audio"),
        (lambda: b"", "empty"),
        (lambda: 3.14, "expected a path or bytes"),
        (lambda: np.zeros(100), "expected a path or bytes"),
    ],
)
def test_bad_audio_raises_typed_errors_naming_the_item(make, pattern):
    with pytest.raises(MediaDecodeError, match=pattern) as err:
        load_audio(make(), "clip-3", target_sr=SR, max_seconds=2)
    assert err.value.item == "clip-3" and "clip-3" in str(err.value)


@pytest.mark.parametrize("long", ["crop", "chunk"])
def test_silent_audio_is_valid_audio(long):
    for wave in (np.zeros(SR, np.float32), np.full(SR, SILENCE_PEAK / 10, np.float32)):
        out = load_audio(audio_bytes(wave), "quiet", target_sr=SR, max_seconds=2, long=long)
        (window,) = out if long == "chunk" else [out]
        assert len(window) == SR and np.abs(window).max() < SILENCE_PEAK


def test_silence_before_the_sound_is_kept_in_crop_and_skipped_between_chunks():
    late = np.concatenate([np.zeros(2 * SR, np.float32), tone(1.0)])
    crop = load_audio(audio_bytes(late), "late", target_sr=SR, max_seconds=1)
    assert np.abs(crop).max() == 0.0  # the part used is silent, and that is fine
    assert len(load_audio(audio_bytes(late), target_sr=SR, max_seconds=1, long="chunk")) == 1


def test_missing_audio_path_names_the_path(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(MediaDecodeError, match="cannot read audio file") as err:
        load_audio(path, target_sr=SR, max_seconds=1)
    assert err.value.item == str(path)


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError):
        load_audio(audio_bytes(tone(0.2)), target_sr=SR, max_seconds=1, long="middle")
    with pytest.raises(ValueError):
        load_audio(audio_bytes(tone(0.2)), target_sr=SR, max_seconds=0)
