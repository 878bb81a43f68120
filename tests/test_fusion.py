"""Fusion: every subset of modalities, renormalised weights, the cosine formula, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mosaicrec.encoders.base import MODALITIES, l2_normalize
from mosaicrec.encoders.fusion import Fuser, FusionConfig
from mosaicrec.errors import ConfigError, InputError

DIMS = {"text": 8, "image": 6, "audio": 4}
WEIGHTS = {"text": 2.0, "image": 1.0, "audio": 0.5}
SUBSETS = [s for r in (1, 2, 3) for s in itertools.combinations(MODALITIES, r)]


@pytest.fixture
def fuser() -> Fuser:
    return Fuser(DIMS, FusionConfig(weights=WEIGHTS))


def item(rng: np.random.Generator, modalities) -> dict:
    # Deliberately not normalised: the fuser must normalise each block itself.
    return {m: rng.normal(size=DIMS[m]).astype(np.float32) * 3 for m in modalities}


def expected_cosine(a: dict, b: dict) -> float:
    """cos(a, b) = sum over shared m of sqrt(w_a,m * w_b,m) * cos(a_m, b_m) (fusion.py)."""
    wa = {m: WEIGHTS[m] / sum(WEIGHTS[k] for k in a) for m in a}
    wb = {m: WEIGHTS[m] / sum(WEIGHTS[k] for k in b) for m in b}
    total = 0.0
    for m in set(a) & set(b):
        cos = float(l2_normalize(a[m]) @ l2_normalize(b[m]))
        total += np.sqrt(wa[m] * wb[m]) * cos
    return total


@pytest.mark.parametrize("subset", SUBSETS, ids="+".join)
def test_every_subset_gives_a_unit_vector_with_renormalised_weights(fuser, subset):
    rng = np.random.default_rng(len(subset))
    vectors = item(rng, subset)
    fused = fuser.fuse(vectors, key="x")
    assert fused.shape == (sum(DIMS.values()),) and fused.dtype == np.float32
    assert np.linalg.norm(fused) == pytest.approx(1.0, abs=1e-6)
    total = sum(WEIGHTS[m] for m in subset)
    for m, block in fuser.split(fused).items():
        if m in subset:
            # Block m carries exactly w_m / sum(w present) of the squared norm...
            assert np.linalg.norm(block) ** 2 == pytest.approx(WEIGHTS[m] / total, rel=1e-5)
            # ...and points the same way as the input vector.
            cos = float(l2_normalize(block) @ l2_normalize(vectors[m]))
            assert cos == pytest.approx(1.0, abs=1e-6)
        else:
            assert not block.any()


@pytest.mark.parametrize("sa, sb", itertools.product(SUBSETS, SUBSETS))
def test_fused_cosine_is_the_weighted_mix_of_shared_modality_cosines(fuser, sa, sb):
    rng = np.random.default_rng(hash((sa, sb)) % 2**32)
    a, b = item(rng, sa), item(rng, sb)
    cos = float(fuser.fuse(a) @ fuser.fuse(b))
    assert cos == pytest.approx(expected_cosine(a, b), abs=1e-5)
    assert -1.0 - 1e-6 <= cos <= 1.0 + 1e-6


def test_identical_items_score_one_and_disjoint_items_zero(fuser):
    rng = np.random.default_rng(1)
    a = item(rng, MODALITIES)
    assert float(fuser.fuse(a) @ fuser.fuse(a)) == pytest.approx(1.0, abs=1e-6)
    text_only = {"text": a["text"]}
    image_only = {"image": a["image"]}
    assert float(fuser.fuse(text_only) @ fuser.fuse(image_only)) == 0.0


def test_batch_with_masks_equals_item_by_item(fuser):
    rng = np.random.default_rng(2)
    n = len(SUBSETS)
    blocks = {m: rng.normal(size=(n, DIMS[m])).astype(np.float32) for m in MODALITIES}
    present = {m: np.array([m in s for s in SUBSETS]) for m in MODALITIES}
    batch = fuser.fuse_batch(blocks, present)
    for i, subset in enumerate(SUBSETS):
        one = fuser.fuse({m: blocks[m][i] for m in subset})
        np.testing.assert_allclose(batch[i], one, atol=1e-6)
    # A modality absent from ``blocks`` counts as missing for every row.
    only_text = fuser.fuse_batch({"text": blocks["text"]})
    np.testing.assert_allclose(only_text[:, : DIMS["text"]], l2_normalize(blocks["text"]))


def test_item_with_no_modality_is_an_input_error_naming_it(fuser):
    with pytest.raises(InputError, match="no modality") as err:
        fuser.fuse({"text": None, "image": None}, key="movie-42")
    assert err.value.item == "movie-42"
    blocks = {"text": np.ones((3, 8), np.float32)}
    present = {"text": np.array([True, False, True])}
    with pytest.raises(InputError) as err:
        fuser.fuse_batch(blocks, present, keys=["a", "b", "c"])
    assert err.value.item == "b"


def test_wrong_dimensions_are_input_errors(fuser):
    with pytest.raises(InputError, match="shape"):
        fuser.fuse({"text": np.ones(7, np.float32)})
    with pytest.raises(InputError, match="shape"):
        fuser.fuse_batch({"text": np.ones((2, 8)), "image": np.ones((3, 6))})


def test_unknown_modalities_in_the_input_are_ignored():
    fuser = Fuser({"text": 8, "image": 6})
    fused = fuser.fuse({"text": np.ones(8), "audio": np.ones(4)})
    assert fused.shape == (14,)
    assert np.linalg.norm(fused) == pytest.approx(1.0)


def test_fusion_config_validation_and_round_trip():
    with pytest.raises(ConfigError, match="must be > 0"):
        FusionConfig(weights={"text": 0.0, "image": 1.0})
    with pytest.raises(ConfigError, match="must be > 0"):
        FusionConfig(weights={"text": -1.0})
    with pytest.raises(ConfigError):
        FusionConfig(weights={"smell": 1.0})
    with pytest.raises(ConfigError):
        FusionConfig(weights={"text": 1.0}, extra=1)
    with pytest.raises(ConfigError, match="missing"):
        Fuser({"text": 8, "audio": 4}, FusionConfig(weights={"text": 1.0}))
    with pytest.raises(ConfigError):
        Fuser({})
    cfg = FusionConfig(weights=WEIGHTS)
    assert FusionConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_equal_default_weights():
    fuser = Fuser(DIMS)
    fused = fuser.fuse({m: np.ones(d) for m, d in DIMS.items()})
    for block in fuser.split(fused).values():
        assert np.linalg.norm(block) ** 2 == pytest.approx(1 / 3, rel=1e-5)
