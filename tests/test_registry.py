"""Registry: configs round-trip to identical encoders; clear errors for bad names and weights."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
import soundfile as sf

from mosaicrec.encoders import EncoderRegistry, EncoderSpec, create_encoder, default_registry
from mosaicrec.errors import ConfigError, ModelNotAvailableError

TINY = ["tiny-text", "tiny-clip", "tiny-clip-text", "tiny-clap", "tiny-clap-text"]
SAMPLE_TEXT = ["a song about rivers", "dark film noir", "x"]


def sample_for(encoder):
    if encoder.modality == "text":
        return SAMPLE_TEXT
    if encoder.modality == "image":
        from PIL import Image

        rng = np.random.default_rng(0)
        return [Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8))]
    buf = io.BytesIO()
    t = np.arange(24_000) / 48_000
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 48_000, format="WAV")
    return [buf.getvalue()]


def test_builtin_names():
    names = default_registry().names()
    expected = {
        "minilm",
        "clip-vit-b-32",
        "clip-vit-b-32-text",
        "clap-htsat-unfused",
        "clap-htsat-unfused-text",
        *TINY,
    }
    assert expected <= set(names)
    assert names == sorted(names)


def test_default_registry_is_fresh_each_time():
    first = default_registry()
    first.register("mine", {"family": "hf-text", "tower": "text", "model": "x"})
    assert "mine" not in default_registry().names()


@pytest.mark.parametrize("name", TINY)
def test_round_trip_spec_json_spec_encoder_gives_identical_vectors(name):
    registry = default_registry()
    spec = registry.resolve(name, device="cpu", audio_max_seconds=1.0)
    restored = EncoderSpec.model_validate_json(spec.model_dump_json())
    assert restored == spec
    a, b = registry.create(spec), registry.create(json.loads(spec.model_dump_json()))
    assert a.name == b.name == spec.display_name
    sample = sample_for(a)
    np.testing.assert_array_equal(a.encode(sample), b.encode(sample))


def test_seed_changes_weights_and_name():
    a = create_encoder("tiny-text", device="cpu")
    b = create_encoder("tiny-text", device="cpu", seed=1)
    assert a.name != b.name and b.name.endswith("@random1")
    assert np.abs(a.encode(SAMPLE_TEXT) - b.encode(SAMPLE_TEXT)).max() > 1e-3


def test_dict_config_with_name_and_overrides():
    enc = create_encoder(
        {"name": "tiny-text", "batch_size": 4, "device": "cpu", "precision": "float32"}
    )
    assert (enc.batch_size, enc.device.type, enc.precision) == (4, "cpu", "float32")
    enc = create_encoder({"name": "tiny-text"}, batch_size=3)
    assert enc.batch_size == 3
    spec = default_registry().resolve({"name": "tiny-clap", "audio_long": "chunk"})
    assert (
        spec.audio_long == "chunk"
        and spec.architecture == default_registry().spec("tiny-clap").architecture
    )


def test_dict_config_overrides_are_validated():
    with pytest.raises(ConfigError):
        default_registry().resolve({"name": "tiny-text", "batch_size": "many"})
    with pytest.raises(ConfigError):
        default_registry().resolve({"name": "tiny-text", "no_such_field": 1})
    with pytest.raises(ConfigError):
        create_encoder("tiny-text", batch_size=0)


def test_full_dict_config_without_name():
    spec = default_registry().spec("tiny-text").model_dump()
    enc = create_encoder({**spec, "device": "cpu"})
    assert enc.name == default_registry().spec("tiny-text").display_name


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ConfigError) as err:
        create_encoder("no-such-encoder")
    message = str(err.value)
    assert "no-such-encoder" in message
    for name in ("minilm", "tiny-clip", "clap-htsat-unfused"):
        assert name in message
    with pytest.raises(ConfigError, match="tiny-text"):
        create_encoder({"name": "nope"})


def test_unknown_family():
    with pytest.raises(ConfigError, match="family"):
        EncoderSpec(family="word2vec", tower="text", model="x")
    registry = EncoderRegistry()  # a registry without factories
    registry.register("t", default_registry().spec("tiny-text"))
    with pytest.raises(ConfigError, match="no factory for encoder family 'hf-text'"):
        registry.create("t")


def test_wrong_tower_for_family():
    with pytest.raises(ConfigError, match="towers"):
        create_encoder("tiny-clip", tower="audio")
    with pytest.raises(ConfigError, match="towers"):
        create_encoder("tiny-clap", tower="image")


def test_custom_factory_and_spec():
    registry = default_registry()
    registry.register("small", {**default_registry().spec("tiny-text").model_dump(), "seed": 5})
    enc = create_encoder("small", registry=registry, device="cpu")
    assert enc.name.endswith("@random5")


def test_device_override_and_default():
    assert create_encoder("tiny-text", device="cpu").device.type == "cpu"
    import torch

    auto = create_encoder("tiny-text")
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


# -- real weights that are not here -------------------------------------------------------------
MISSING = [
    ({"name": "minilm", "model": "sentence-transformers/no-such-model-xyz"}, "no-such-model-xyz"),
    ({"name": "minilm", "model": "/nonexistent/local/minilm"}, "/nonexistent/local/minilm"),
    ({"name": "clip-vit-b-32"}, "ViT-B-32"),
    ({"name": "clip-vit-b-32-text"}, "ViT-B-32"),
    ({"name": "clip-vit-b-32", "pretrained": "/nonexistent/clip.pt"}, "ViT-B-32"),
    ({"name": "clip-vit-b-32", "model": "hf-hub:someone/some-clip"}, "someone/some-clip"),
    ({"name": "clap-htsat-unfused"}, "laion/clap-htsat-unfused"),
    ({"name": "clap-htsat-unfused-text"}, "laion/clap-htsat-unfused"),
]


@pytest.mark.parametrize("config, model", MISSING, ids=[m for _, m in MISSING])
def test_missing_weights_fail_fast_with_one_clear_message(config, model):
    start = time.perf_counter()
    with pytest.raises(ModelNotAvailableError) as err:
        create_encoder({**config, "allow_download": False})
    assert time.perf_counter() - start < 10  # no network retries
    message = str(err.value)
    assert model in message and "not available" in message and "local copy" in message
    assert err.value.__cause__ is None  # one message, not a library traceback


def test_unknown_clip_tag_or_model_is_a_config_error():
    with pytest.raises(ConfigError, match="laion2b_s34b_b79k"):
        create_encoder("clip-vit-b-32", pretrained="no-such-tag")
    with pytest.raises(ConfigError, match="ViT-B-32"):
        create_encoder("clip-vit-b-32", model="ViT-Nope")
    with pytest.raises(ConfigError, match="known models"):
        create_encoder("tiny-clip", architecture=None, model="ViT-Nope")


# -- "pretrained" weights from local folders, built here from the tiny models --------------------
def test_clip_from_a_local_open_clip_folder(tmp_path):
    import torch

    from mosaicrec.encoders.tiny import TINY_CLIP

    tiny = create_encoder("tiny-clip", device="cpu")
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP}))
    torch.save(tiny.model.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    local = create_encoder(
        {
            "family": "open-clip",
            "tower": "image",
            "model": str(tmp_path),
            "device": "cpu",
            "allow_download": False,
        }
    )
    sample = sample_for(tiny)
    np.testing.assert_allclose(local.encode(sample), tiny.encode(sample), atol=1e-6)
    np.testing.assert_allclose(
        local.text_tower().encode(SAMPLE_TEXT), tiny.text_tower().encode(SAMPLE_TEXT), atol=1e-6
    )


def test_clap_from_a_local_folder(tmp_path):
    tiny = create_encoder("tiny-clap", device="cpu", audio_max_seconds=1.0)
    tiny.model.save_pretrained(tmp_path)
    tiny.feature_extractor.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    local = create_encoder(
        {
            "name": "clap-htsat-unfused",
            "model": str(tmp_path),
            "device": "cpu",
            "audio_max_seconds": 1.0,
            "allow_download": False,
        }
    )
    sample = sample_for(tiny)
    np.testing.assert_allclose(local.encode(sample), tiny.encode(sample), atol=1e-5)
    np.testing.assert_allclose(
        local.text_tower().encode(SAMPLE_TEXT), tiny.text_tower().encode(SAMPLE_TEXT), atol=1e-5
    )


def test_text_encoder_from_a_local_folder(tmp_path):
    tiny = create_encoder("tiny-text", device="cpu")
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    local = create_encoder({"name": "minilm", "model": str(tmp_path), "device": "cpu"})
    np.testing.assert_allclose(local.encode(SAMPLE_TEXT), tiny.encode(SAMPLE_TEXT), atol=1e-5)
