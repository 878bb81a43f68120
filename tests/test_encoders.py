"""Every tiny encoder: shape, dtype, unit rows, batch == one-by-one, order, bad inputs, towers."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mosaicrec.encoders import Encoder, Fuser, create_encoder
from mosaicrec.encoders.base import BatchEncoding
from mosaicrec.errors import EncodeError, InputError, MediaDecodeError

NAMES = ["tiny-text", "tiny-clip", "tiny-clip-text", "tiny-clap", "tiny-clap-text"]
SR = 16_000


# -- inputs -------------------------------------------------------------------------------------
def texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words = ["red", "blue", "quiet", "river", "music", "guitar", "dog", "film", "night", "war"]
    # Lengths from 1 to ~40 words so that length-sorted batches really reorder things.
    return [" ".join(rng.choice(words, size=int(rng.integers(1, 40)))) for _ in range(n)]


def images(n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = (int(x) for x in rng.integers(8, 80, size=2))
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def wav(seconds: float, seed: int = 0, sr: int = SR) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    freq = rng.uniform(100, 2000)
    wave = 0.4 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(len(t))
    buf = io.BytesIO()
    sf.write(buf, wave.astype(np.float32), sr, format="WAV")
    return buf.getvalue()


def clips(n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [wav(float(rng.uniform(0.2, 2.5)), seed=seed * 100 + i) for i in range(n)]


def inputs_for(encoder: Encoder, n: int, seed: int = 0) -> list:
    return {"text": texts, "image": images, "audio": clips}[encoder.modality](n, seed)


# -- encoders, built once -----------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_encoders(tiny_text) -> dict[str, Encoder]:
    clip = create_encoder("tiny-clip", device="cpu")
    # Short audio windows keep feature extraction cheap; the architecture is unchanged.
    clap = create_encoder("tiny-clap", device="cpu", audio_max_seconds=2.0)
    return {
        "tiny-text": tiny_text,
        "tiny-clip": clip,
        "tiny-clip-text": clip.text_tower(),
        "tiny-clap": clap,
        "tiny-clap-text": clap.text_tower(),
    }


@pytest.fixture(params=NAMES)
def encoder(request, tiny_encoders) -> Encoder:
    return tiny_encoders[request.param]


# -- the contract -------------------------------------------------------------------------------
def test_shape_dtype_and_unit_rows(encoder):
    assert isinstance(encoder, Encoder)
    vectors = encoder.encode(inputs_for(encoder, 5))
    assert vectors.shape == (5, encoder.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.isfinite(vectors).all()
    assert encoder.device.type == "cpu"


def test_empty_batch(encoder):
    assert encoder.encode([]).shape == (0, encoder.dim)


def test_batch_equals_one_by_one(encoder):
    batch = inputs_for(encoder, 6, seed=1)
    together = encoder.encode(batch)
    alone = np.stack([encoder.encode([x])[0] for x in batch])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_order_is_preserved_with_length_sorted_batches(encoder, monkeypatch):
    monkeypatch.setattr(encoder, "batch_size", 2)  # several batches, each sorted by cost
    batch = inputs_for(encoder, 7, seed=2)
    reference = encoder.encode(batch)
    perm = np.random.default_rng(3).permutation(len(batch))
    shuffled = encoder.encode([batch[i] for i in perm])
    np.testing.assert_allclose(shuffled, reference[perm], atol=1e-5)
    # Distinct inputs give distinct rows: the test above could not pass by accident.
    assert np.abs(reference[0] - reference[1]).max() > 1e-3


def test_deterministic_across_calls(encoder):
    batch = inputs_for(encoder, 3, seed=4)
    np.testing.assert_array_equal(encoder.encode(batch), encoder.encode(batch))


def test_names_are_stable_and_distinct(tiny_encoders):
    names = {key: enc.name for key, enc in tiny_encoders.items()}
    assert len(set(names.values())) == len(names)
    assert names["tiny-clip"] == "open-clip:image:tiny-clip-custom@random0"
    assert names["tiny-clip-text"] == "open-clip:text:tiny-clip-custom@random0"
    assert names["tiny-clap-text"].startswith("clap:text:tiny-clap")


# -- bad inputs ---------------------------------------------------------------------------------
BAD = {
    "text": [
        ("", EncodeError, "empty text"),
        ("   \n", EncodeError, "empty text"),
        (42, EncodeError, "expected text"),
        (None, EncodeError, "expected text"),
        (b"bytes", EncodeError, "expected text"),
    ],
    "image": [
        ("/definitely/not/here.jpg", MediaDecodeError, "cannot read image"),
        (b"\x89PNG\r\n\x1a\ncorrupt", MediaDecodeError, "cannot decode image"),
        (b"", MediaDecodeError, "empty"),
        (3.5, MediaDecodeError, "expected a path or bytes"),
    ],
    "audio": [
        ("/definitely/not/here.wav", MediaDecodeError, "cannot read audio"),
        (None, MediaDecodeError, "expected a path or bytes"),
        (b"garbage" * 50, MediaDecodeError, "cannot decode audio"),
    ],
}


def _bad_audio() -> list:
    nan = io.BytesIO()
    sf.write(nan, np.full(SR, np.nan, np.float32), SR, format="WAV", subtype="FLOAT")
    good = wav(1.0)
    return [
        (nan.getvalue(), MediaDecodeError, "NaN"),
        (good[: len(good) // 2], MediaDecodeError, "truncated"),
    ]


def test_silent_audio_is_embedded_like_any_clip(tiny_encoders):
    silent = io.BytesIO()
    sf.write(silent, np.zeros(SR, np.float32), SR, format="WAV")
    vec = tiny_encoders["tiny-clap"].encode([silent.getvalue()])[0]
    assert np.isfinite(vec).all() and abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5


def bad_inputs(encoder: Encoder) -> list:
    extra = _bad_audio() if encoder.modality == "audio" else []
    return BAD[encoder.modality] + extra


def test_bad_inputs_raise_typed_errors_naming_the_item(encoder):
    for bad, kind, pattern in bad_inputs(encoder):
        good = inputs_for(encoder, 2)
        with pytest.raises(kind, match=pattern) as err:
            encoder.encode([good[0], bad, good[1]], keys=["ok-1", "bad-item", "ok-2"])
        assert err.value.item == "bad-item", (bad, err.value)
        assert "bad-item" in str(err.value)


def test_encode_many_reports_bad_items_and_encodes_the_rest(encoder):
    bad = bad_inputs(encoder)
    good = inputs_for(encoder, 3, seed=5)
    batch = [good[0], *[b for b, _, _ in bad], good[1], good[2]]
    keys = [f"item-{i}" for i in range(len(batch))]
    result = encoder.encode_many(batch, keys=keys)
    assert isinstance(result, BatchEncoding)
    good_pos = [0, len(batch) - 2, len(batch) - 1]
    assert result.ok == good_pos
    assert sorted(result.errors) == sorted(keys[1 : 1 + len(bad)])
    for (_, kind, _), key in zip(bad, keys[1:], strict=False):
        assert isinstance(result.errors[key], kind) and result.errors[key].item == key
    np.testing.assert_allclose(result.vectors, encoder.encode(good), atol=1e-5)


def test_encode_many_with_only_bad_items(encoder):
    result = encoder.encode_many([bad for bad, _, _ in bad_inputs(encoder)])
    assert result.vectors.shape == (0, encoder.dim) and result.ok == []
    assert all(isinstance(e, InputError) for e in result.errors.values())


# -- image tower specifics ----------------------------------------------------------------------
def test_clip_accepts_paths_bytes_and_pil_alike(tiny_encoders, tmp_path):
    enc = tiny_encoders["tiny-clip"]
    raw = images(1, seed=9)[0]
    path = tmp_path / "poster.dat"
    path.write_bytes(raw)
    rows = enc.encode([raw, path, str(path), Image.open(io.BytesIO(raw))])
    np.testing.assert_allclose(rows, np.repeat(rows[:1], 4, axis=0), atol=1e-6)


def test_towers_share_one_model_and_one_space(tiny_encoders):
    clip, clip_text = tiny_encoders["tiny-clip"], tiny_encoders["tiny-clip-text"]
    clap, clap_text = tiny_encoders["tiny-clap"], tiny_encoders["tiny-clap-text"]
    assert clip_text.model is clip.model and clip_text.image_tower().model is clip.model
    assert clap_text.model is clap.model and clap_text.audio_tower().model is clap.model
    assert clip_text.dim == clip.dim and clap_text.dim == clap.dim
    assert (clip.modality, clip_text.modality) == ("image", "text")
    assert (clap.modality, clap_text.modality) == ("audio", "text")


def test_registry_text_towers_match_towers_of_the_image_and_audio_encoders(tiny_encoders):
    for name, tower in [("tiny-clip-text", "tiny-clip-text"), ("tiny-clap-text", "tiny-clap-text")]:
        built = create_encoder(name, device="cpu")
        assert built.name == tiny_encoders[tower].name
        sample = texts(3, seed=6)
        np.testing.assert_allclose(
            built.encode(sample), tiny_encoders[tower].encode(sample), atol=1e-6
        )


def test_bfloat16_autocast_on_cpu(tiny_encoders):
    for key in ("tiny-clip", "tiny-clap-text"):
        ref = tiny_encoders[key]
        spec_name = key
        overrides = {"audio_max_seconds": 2.0} if "clap" in key else {}
        half = create_encoder(spec_name, device="cpu", precision="bfloat16", **overrides)
        batch = inputs_for(ref, 4, seed=7)
        low, full = half.encode(batch), ref.encode(batch)
        assert low.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(low, axis=1), 1.0, atol=1e-5)
        assert (low * full).sum(axis=1).min() > 0.97  # same vectors, bf16 rounding aside


# -- audio tower specifics ----------------------------------------------------------------------
def test_long_audio_crop_is_deterministic_and_uses_the_start(tiny_encoders):
    enc = tiny_encoders["tiny-clap"]  # 2 s window
    long_clip = wav(6.0, seed=11, sr=48_000)  # at the model's rate: no resampling edge effects
    np.random.seed(1)
    first = enc.encode([long_clip])
    np.random.seed(2)  # the feature extractor's random crop would draw from this
    np.testing.assert_array_equal(first, enc.encode([long_clip]))
    start = io.BytesIO()
    data, sr = sf.read(io.BytesIO(long_clip), dtype="float32")
    sf.write(start, data[: 2 * sr], sr, format="WAV")
    np.testing.assert_allclose(first, enc.encode([start.getvalue()]), atol=1e-5)


def test_chunk_mode_averages_window_embeddings():
    crop = create_encoder("tiny-clap", device="cpu", audio_max_seconds=1.0)
    chunk = create_encoder("tiny-clap", device="cpu", audio_max_seconds=1.0, audio_long="chunk")
    # At the model's 48 kHz, so the windows of the joined clip are exactly the two clips.
    a, b = wav(1.0, seed=21, sr=48_000), wav(1.0, seed=22, sr=48_000)
    both = io.BytesIO()
    parts = [sf.read(io.BytesIO(x), dtype="float32")[0] for x in (a, b)]
    sf.write(both, np.concatenate(parts), 48_000, format="WAV")
    va, vb = crop.encode([a, b])
    expected = (va + vb) / np.linalg.norm(va + vb)
    np.testing.assert_allclose(chunk.encode([both.getvalue()])[0], expected, atol=1e-5)
    # A clip shorter than one window is the same single window in both modes.
    short = wav(0.6, seed=23)
    np.testing.assert_allclose(chunk.encode([short]), crop.encode([short]), atol=1e-6)
    # Batches of clips with different window counts still come back in order.
    batch = [both.getvalue(), short, a]
    rows = chunk.encode(batch)
    np.testing.assert_allclose(rows, np.stack([chunk.encode([x])[0] for x in batch]), atol=1e-5)


# -- a fused item from the three tiny towers ---------------------------------------------------
def test_tiny_encoders_feed_fusion(tiny_encoders):
    text, image, audio = (tiny_encoders[k] for k in ("tiny-text", "tiny-clip", "tiny-clap"))
    fuser = Fuser({"text": text.dim, "image": image.dim, "audio": audio.dim})
    blocks = {
        "text": text.encode(texts(3)),
        "image": image.encode(images(3)),
        "audio": audio.encode(clips(3)),
    }
    present = {"audio": np.array([True, False, True])}
    fused = fuser.fuse_batch(blocks, present, keys=["a", "b", "c"])
    assert fused.shape == (3, text.dim + image.dim + audio.dim)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
    assert not fused[1, fuser.slices["audio"]].any()
