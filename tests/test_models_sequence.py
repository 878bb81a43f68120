"""The SASRec-style sequence model: it learns a deterministic cycle, its scores are a dot
product of user states and item vectors, it saves and loads exactly, and bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mosaicrec.engine.models.sequence import SequenceConfig, SequenceModel
from mosaicrec.errors import ConfigError, RequestError

N_ITEMS = 10
TINY = dict(dim=16, blocks=1, heads=2, max_len=12, dropout=0.0, epochs=40, batch_size=32,
            learning_rate=5e-3, device="cpu", threads=1)


def cycle_sequences(n_users: int = 120, seed: int = 0) -> list[np.ndarray]:
    """Item k is always followed by (k + 1) mod 10; random starts and lengths."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(N_ITEMS) + np.arange(rng.integers(3, 12))) % N_ITEMS
            for _ in range(n_users)]


def queries() -> list[np.ndarray]:
    """For each k, a sequence ending in k."""
    return [np.arange(k - 4, k + 1) % N_ITEMS for k in range(N_ITEMS)]


def next_item_hits(model: SequenceModel) -> int:
    top = model.score(queries(), np.arange(N_ITEMS)).argmax(axis=1)
    return int((top == (np.arange(N_ITEMS) + 1) % N_ITEMS).sum())


@pytest.fixture(scope="module")
def model() -> SequenceModel:
    return SequenceModel(SequenceConfig(**TINY)).fit(cycle_sequences(), N_ITEMS)


def test_learns_the_cycle(model: SequenceModel) -> None:
    assert next_item_hits(model) >= 9
    assert model.n_items == N_ITEMS and model.epochs_run == TINY["epochs"]
    assert model.fit_seconds > 0


def test_scores_are_states_dot_item_vectors(model: SequenceModel) -> None:
    seqs = queries() + [np.array([3], dtype=np.int64)]
    states, items = model.user_states(seqs), model.item_vectors
    assert states.dtype == np.float32 and items.dtype == np.float32
    assert states.shape == (len(seqs), model.state_dim) and items.shape == (N_ITEMS, 16)
    np.testing.assert_allclose(model.score(seqs, np.arange(N_ITEMS)), states @ items.T,
                               rtol=1e-6, atol=1e-6)
    picked = np.array([7, 2])
    np.testing.assert_allclose(model.score(seqs, picked), states @ items[picked].T, atol=1e-6)


def test_states_ignore_padding_and_empty_sequences_are_zero(model: SequenceModel) -> None:
    short, long = np.array([1, 2]), np.arange(11) % N_ITEMS
    together = model.user_states([short, long, np.array([], dtype=np.int64)])
    alone = model.user_states([short])
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)
    assert not together[2].any()
    assert model.user_states([]).shape == (0, model.state_dim)


def test_only_the_newest_max_len_items_count(model: SequenceModel) -> None:
    tail = np.arange(12) % N_ITEMS
    longer = np.concatenate([np.array([5, 5, 5]), tail])
    a, b = model.user_states([tail, longer])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_save_load_gives_identical_scores(model: SequenceModel, tmp_path) -> None:
    model.save(tmp_path)
    loaded = SequenceModel.load(tmp_path)
    assert loaded.config == model.config and loaded.n_items == N_ITEMS
    np.testing.assert_array_equal(loaded.item_vectors, model.item_vectors)
    np.testing.assert_allclose(loaded.user_states(queries()), model.user_states(queries()),
                               atol=1e-6)


def test_same_seed_same_weights() -> None:
    cfg = SequenceConfig(**{**TINY, "epochs": 2, "dropout": 0.2})
    data = cycle_sequences(40)
    a = SequenceModel(cfg).fit(data, N_ITEMS).item_vectors
    b = SequenceModel(cfg).fit(data, N_ITEMS).item_vectors
    c = SequenceModel(cfg.model_copy(update={"seed": 1})).fit(data, N_ITEMS).item_vectors
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_fit_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    SequenceModel(SequenceConfig(**{**TINY, "epochs": 1})).fit(cycle_sequences(20), N_ITEMS)
    torch.testing.assert_close(torch.rand(3), expected)


def test_sampled_softmax_learns_the_cycle() -> None:
    cfg = SequenceConfig(**{**TINY, "full_softmax_max_items": 5, "sampled_negatives": 6})
    assert next_item_hits(SequenceModel(cfg).fit(cycle_sequences(), N_ITEMS)) >= 8


def test_bad_input_is_refused(model: SequenceModel) -> None:
    with pytest.raises(ConfigError, match="no sequences"):
        SequenceModel(SequenceConfig(**TINY)).fit([], N_ITEMS)
    with pytest.raises(ConfigError, match="item index 10 outside"):
        SequenceModel(SequenceConfig(**TINY)).fit([np.array([1, 10])], N_ITEMS)
    with pytest.raises(ConfigError, match="item index -1 outside"):
        SequenceModel(SequenceConfig(**TINY)).fit([np.array([1, -1])], N_ITEMS)
    with pytest.raises(ConfigError, match="n_items"):
        SequenceModel(SequenceConfig(**TINY)).fit([np.array([0, 0])], 0)
    with pytest.raises(ConfigError, match="2 or more"):
        SequenceModel(SequenceConfig(**TINY)).fit([np.array([1]), np.array([])], N_ITEMS)
    with pytest.raises(ConfigError, match="before fit"):
        SequenceModel().user_states([np.array([1])])
    with pytest.raises(RequestError, match="item index 12 outside"):
        model.user_states([np.array([1, 12])])
    with pytest.raises(RequestError, match="integer"):
        model.user_states([np.array([1.5])])
    with pytest.raises(RequestError, match="outside"):
        model.score([np.array([1])], np.array([N_ITEMS]))
    with pytest.raises(ConfigError, match="no saved sequence model"):
        SequenceModel.load(__import__("pathlib").Path("/nonexistent"))


def test_config_is_strict() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        SequenceConfig(dim=10, heads=3)
    with pytest.raises(ConfigError, match="blocs: Extra inputs"):
        SequenceConfig(blocs=2)


@pytest.mark.gpu
def test_fits_on_cuda_with_bf16() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device (torch.cuda.is_available() is false)")
    cfg = SequenceConfig(**{**TINY, "device": "cuda", "mixed_precision": True, "threads": None})
    model = SequenceModel(cfg).fit(cycle_sequences(), N_ITEMS)
    assert next(model._fitted().parameters()).is_cuda
    assert next_item_hits(model) >= 8
    states = model.user_states(queries())
    assert states.dtype == np.float32 and np.isfinite(states).all()


def test_members_sum_their_logits(tmp_path) -> None:
    cfg = SequenceConfig(**{**TINY, "epochs": 3})
    data = cycle_sequences(40)
    pair = SequenceModel(cfg.model_copy(update={"members": 2})).fit(data, N_ITEMS)
    one = SequenceModel(cfg).fit(data, N_ITEMS)
    other = SequenceModel(cfg.model_copy(update={"seed": 1})).fit(data, N_ITEMS)
    assert pair.state_dim == 32 and pair.item_vectors.shape == (N_ITEMS, 32)
    np.testing.assert_array_equal(pair.item_vectors[:, :16], one.item_vectors)
    np.testing.assert_array_equal(pair.item_vectors[:, 16:], other.item_vectors)
    expected = (one.score(queries(), np.arange(N_ITEMS))
                + other.score(queries(), np.arange(N_ITEMS)))
    np.testing.assert_allclose(pair.score(queries(), np.arange(N_ITEMS)), expected, atol=1e-5)
    pair.save(tmp_path)
    loaded = SequenceModel.load(tmp_path)
    np.testing.assert_array_equal(loaded.item_vectors, pair.item_vectors)
    np.testing.assert_allclose(loaded.user_states(queries()), pair.user_states(queries()),
                               atol=1e-6)


def test_max_steps_bounds_the_epochs_of_a_large_log() -> None:
    data = cycle_sequences(120)  # 4 batches of 32 per epoch
    model = SequenceModel(SequenceConfig(**{**TINY, "epochs": 10, "max_steps": 8})).fit(
        data, N_ITEMS)
    assert model.epochs_run == 2
    assert SequenceModel(SequenceConfig(**{**TINY, "epochs": 3})).fit(
        data, N_ITEMS).epochs_run == 3
    # the budget is for all members together: two members get half the epochs each
    pair = SequenceModel(SequenceConfig(**{**TINY, "epochs": 10, "max_steps": 16,
                                           "members": 2})).fit(data, N_ITEMS)
    assert pair.epochs_run == 2


def branching_log(n_users: int = 160, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """After a liked item k comes k + 1; after a disliked one, k + 5 (mod 10)."""
    rng = np.random.default_rng(seed)
    seqs, liked = [], []
    for _ in range(n_users):
        items, flags = [int(rng.integers(N_ITEMS))], []
        for _ in range(int(rng.integers(3, 12))):
            flags.append(bool(rng.random() < 0.5))
            items.append((items[-1] + (1 if flags[-1] else 5)) % N_ITEMS)
        flags.append(bool(rng.random() < 0.5))
        seqs.append(np.array(items))
        liked.append(np.array(flags))
    return seqs, liked


def test_negative_weight_needs_the_liked_flags() -> None:
    seqs, flags = branching_log(20)
    cfg = SequenceConfig(**{**TINY, "epochs": 1, "negative_weight": 0.5})
    with pytest.raises(ConfigError, match="liked="):
        SequenceModel(cfg).fit(seqs, N_ITEMS)
    with pytest.raises(ConfigError, match="3 items but 2 liked flags"):
        SequenceModel(cfg).fit([np.array([1, 2, 3])], N_ITEMS, liked=[np.array([True, False])])


def test_negative_weight_zero_learns_only_the_liked_next_items() -> None:
    # the same log read the other way round: an item the user liked is k + 1 after k, one
    # they did not like is k + 5 (each flag now belongs to the next item)
    seqs, flags = branching_log()
    liked = [np.r_[True, f[:-1]] for f in flags]

    def liked_next_hits(weight: float) -> int:
        cfg = SequenceConfig(**{**TINY, "negative_weight": weight})
        top = SequenceModel(cfg).fit(seqs, N_ITEMS, liked=liked).score(
            queries(), np.arange(N_ITEMS)).argmax(axis=1)
        return int((top == (np.arange(N_ITEMS) + 1) % N_ITEMS).sum())

    # the model does not read the flags: weighted, only liked next items (k + 1) are targets
    weighted, unweighted = liked_next_hits(0.0), liked_next_hits(1.0)
    assert weighted >= 9 and unweighted < weighted


def test_stacked_members_match_each_network_run_alone() -> None:
    from mosaicrec.engine.models.sasrec import StackedSASRec

    cfg = SequenceConfig(**{**TINY, "blocks": 2, "epochs": 2, "members": 3, "dropout": 0.1})
    nets = SequenceModel(cfg).fit(cycle_sequences(40), N_ITEMS)._nets
    # left-padded rows of different lengths, one of them a single item
    batch = torch.tensor([[0, 0, 0, 0, 4], [1, 2, 3, 4, 5], [0, 0, 7, 8, 9], [0, 0, 0, 2, 2]])
    with torch.no_grad():
        alone = torch.cat([net(batch)[:, -1] for net in nets], dim=1)
        stacked = StackedSASRec(nets)(batch)
    assert stacked.shape == (4, 3 * 16)
    torch.testing.assert_close(stacked, alone, atol=1e-5, rtol=1e-5)
    # one user's history has no padding: the unmasked causal kernel gives the same states
    single = batch[1:2]
    with torch.no_grad():
        alone = torch.cat([net(single)[:, -1] for net in nets], dim=1)
        torch.testing.assert_close(StackedSASRec(nets)(single), alone, atol=1e-5, rtol=1e-5)
        # a caller that knows there is no padding skips finding out: the same states
        torch.testing.assert_close(StackedSASRec(nets)(single, padded=False), alone,
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(StackedSASRec(nets)(batch, padded=True), stacked)


def test_dropout_drops_the_configured_share_and_keeps_the_mean() -> None:
    from mosaicrec.engine.models.sasrec import _Dropout

    drop = _Dropout(0.2)
    x = torch.ones(200, 500)
    torch.manual_seed(0)
    y = drop.train()(x)
    assert abs(float((y == 0).float().mean()) - 0.2) < 0.01
    assert abs(float(y.mean()) - 1.0) < 0.02  # survivors scaled by 1 / (1 - p)
    assert torch.equal(drop.eval()(x), x)
