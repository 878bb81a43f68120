"""SASRec-style next-item transformer (Kang & McAuley 2018), one behaviour signal.

Causal self-attention over the user's newest ``max_len`` items; the output at the last position
is the user's query vector and the (shared) item embedding table gives the next-item logits, so
``user_states(seqs) @ item_vectors.T`` are the model's scores and serving is a vector search.
Trained with next-item cross-entropy at every position: a full softmax over the catalogue up to
``full_softmax_max_items``, above it a sampled softmax with uniform negatives shared by the batch
so a 100k-item catalogue trains in bounded memory.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field, model_validator
from torch.nn import functional as F

from mosaicrec.config import StrictModel
from mosaicrec.engine.models.sasrec import SASRec, StackedSASRec
from mosaicrec.errors import ConfigError, RequestError

__all__ = ["SequenceConfig", "SequenceModel"]

_BUCKET_JITTER = 0.5
_WEIGHTS, _META = "sequence.safetensors", "sequence.json"


class SequenceConfig(StrictModel):
    dim: int = Field(64, ge=1, description="hidden size = item embedding size")
    blocks: int = Field(2, ge=1, description="self-attention blocks")
    heads: int = Field(1, ge=1, description="attention heads (must divide dim)")
    max_len: int = Field(200, ge=1, description="newest items kept per sequence")
    dropout: float = Field(0.2, ge=0, lt=1)
    # epochs and learning rate chosen on MovieLens 100K validation (positive-only sequences)
    epochs: int = Field(30, ge=1, description="passes over the training sequences")
    max_steps: int | None = Field(
        3600, ge=1, description="optimizer steps at most, all members together: a large log "
        "gets fewer epochs (each of them sees more data), so training time stays bounded")
    batch_size: int = Field(128, ge=1, description="sequences per training step")
    learning_rate: float = Field(5e-3, gt=0, description="AdamW peak learning rate")
    weight_decay: float = Field(0.0, ge=0, description="AdamW decoupled weight decay")
    cosine: bool = Field(True, description="cosine learning-rate decay to 0 over the epochs")
    full_softmax_max_items: int = Field(
        5_000, ge=1, description="above this many items, train with a sampled softmax (the "
        "full softmax's output layer dominates a step on a large catalogue)")
    sampled_negatives: int = Field(512, ge=1, description="shared uniform negatives per batch")
    device: str | None = Field(None, description="None: cuda when available, else cpu")
    mixed_precision: bool = Field(True, description="bf16 autocast on CUDA; CPU is float32")
    threads: int | None = Field(
        None, ge=1, description="torch CPU threads during fit/inference; None = leave as is")
    inference_batch_size: int = Field(256, ge=1, description="sequences per user_states pass")
    members: int = Field(
        1, ge=1, description="models trained from seeds seed, seed + 1, ...: their logits are "
        "summed (states and item vectors side by side, so serving is still one dot product)")
    negative_weight: float = Field(
        1.0, ge=0, description="loss weight of a next item the user did not like (1: every "
        "next item counts the same; lower: learn what users like next, not only what they see)")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> SequenceConfig:
        if self.dim % self.heads:
            raise ConfigError(f"dim {self.dim} is not divisible by heads {self.heads}")
        return self


class SequenceModel:
    name = "sequence"

    def __init__(self, config: SequenceConfig | None = None) -> None:
        self.config = config or SequenceConfig()
        self.n_items, self.fit_seconds, self.epochs_run = 0, 0.0, 0
        self._nets: list[SASRec] = []
        self._stack: StackedSASRec | None = None
        self._items: np.ndarray | None = None
        self._device: torch.device | None = None

    @property
    def device(self) -> torch.device:
        if self._device is None:  # asking CUDA costs ~0.1 ms: once per model, not per call
            self._device = torch.device(self.config.device or (
                "cuda" if torch.cuda.is_available() else "cpu"))
        return self._device

    def fit(self, sequences: Sequence[np.ndarray], n_items: int, *,
            liked: Sequence[np.ndarray] | None = None, progress: bool = False,
            ) -> SequenceModel:
        """Train on item-row sequences; ``liked`` flags each event (needed when the next items
        the user did not like are weighted differently, ``negative_weight`` != 1)."""
        if n_items < 1:
            raise ConfigError(f"n_items must be >= 1, got {n_items}")
        seqs = _check_sequences(sequences, n_items, ConfigError)
        if not any(len(s) >= 2 for s in seqs):
            raise ConfigError("no training sequence has 2 or more items: nothing to learn from")
        cfg = self.config
        flags = _check_liked(liked, seqs, cfg.negative_weight != 1.0)
        start = time.perf_counter()
        # each row holds the newest max_len + 1 items: inputs are row[:-1], targets row[1:]
        long = [i for i, s in enumerate(seqs) if len(s) >= 2]
        rows = _left_pad([seqs[i] for i in long], cfg.max_len + 1)
        # 0 padding, 1 not liked, 2 liked: aligned with rows
        liked_rows = None if flags is None else _left_pad([flags[i] for i in long],
                                                          cfg.max_len + 1)
        per_epoch = math.ceil(len(rows) / cfg.batch_size)
        epochs = cfg.epochs if cfg.max_steps is None else max(
            1, min(cfg.epochs, cfg.max_steps // (per_epoch * cfg.members)))
        steps = epochs * per_epoch
        bar = _progress(steps * cfg.members, progress)
        nets = [self._train(rows, liked_rows, n_items, cfg.seed + k, epochs, steps, bar)
                for k in range(cfg.members)]
        if bar is not None:
            bar.close()
        self._set(nets, n_items)
        self.epochs_run = epochs
        self.fit_seconds = time.perf_counter() - start
        return self

    def _train(self, rows: torch.Tensor, liked_rows: torch.Tensor | None, n_items: int, seed: int,
               epochs: int, steps: int, bar: Any) -> SASRec:
        """One member, trained from ``seed``."""
        cfg, dev = self.config, self.device
        lengths = (rows > 0).sum(1)
        with _threads(cfg.threads), torch.random.fork_rng(
                devices=[dev.index or 0] if dev.type == "cuda" else []):
            torch.manual_seed(seed)
            net = SASRec(n_items, cfg).to(dev)
            # the fused kernel: the default per-parameter loop took 6 ms of a CPU step
            opt = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate,
                                    weight_decay=cfg.weight_decay, fused=True)
            gen = torch.Generator().manual_seed(seed)
            sampled = n_items > cfg.full_softmax_max_items
            autocast = dev.type == "cuda" and cfg.mixed_precision
            net.train()
            # cosine decay to zero: the last epoch is a settled model, not a noisy snapshot
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / steps)) if cfg.cosine else 1.0)
            for _ in range(epochs):
                for idx in _batches(lengths, cfg.batch_size, gen):
                    width = int(lengths[idx].max())  # trim the all-padding columns
                    batch = rows[idx, -width:].to(dev, non_blocking=True)
                    liked = None if liked_rows is None else liked_rows[idx, -width:].to(dev)
                    neg = (torch.randint(n_items, (cfg.sampled_negatives,), generator=gen)
                           if sampled else None)
                    with torch.autocast(dev.type, torch.bfloat16, enabled=autocast):
                        loss = _loss(net, batch, liked, neg, cfg)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    if bar is not None:
                        bar.update()
                        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
        return net.eval()

    def _set(self, nets: list[SASRec], n_items: int) -> None:
        self._nets, self.n_items = nets, n_items
        with torch.no_grad():
            self._stack = StackedSASRec(nets)
        # the stacked network's table without its padding row: on CPU a read-only view of
        # it (no second copy), on CUDA the host copy serving scores with
        self._items = self._stack.items[1:].float().cpu().numpy()
        self._items.flags.writeable = False

    def user_states(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """The members' outputs at the newest position, side by side (one row per sequence)."""
        self._fitted()
        seqs = _check_sequences(sequences, self.n_items, RequestError)
        out = np.zeros((len(seqs), self.state_dim), np.float32)
        keep = [i for i, s in enumerate(seqs) if len(s)]  # empty sequence -> zeros row
        dev, cfg = self.device, self.config
        with _threads(cfg.threads), torch.inference_mode():
            for start in range(0, len(keep), cfg.inference_batch_size):
                chunk = keep[start:start + cfg.inference_batch_size]
                lengths = [min(len(seqs[i]), cfg.max_len) for i in chunk]
                width = max(lengths)
                batch = _left_pad([seqs[i] for i in chunk], width).to(dev)
                with self._inference_precision(dev):
                    h = self._stack(batch, padded=min(lengths) < width)  # type: ignore[misc]
                out[chunk] = h.float().cpu().numpy()
        return out

    def _inference_precision(self, dev: torch.device) -> AbstractContextManager[Any]:
        # entering even a disabled autocast costs ~0.1 ms a call on CPU
        if dev.type == "cuda" and self.config.mixed_precision:
            return torch.autocast("cuda", torch.bfloat16)
        return nullcontext()

    @property
    def state_dim(self) -> int:
        return self.config.dim * self.config.members

    @property
    def item_vectors(self) -> np.ndarray:
        """``(n_items, state_dim)``: the members' item tables side by side, so a user state
        times an item vector is the sum of the members' logits. Read-only: on CPU it shares
        memory with the network serving the states."""
        self._fitted()
        assert self._items is not None
        return self._items

    def score(self, sequences: Sequence[np.ndarray], items: np.ndarray) -> np.ndarray:
        """Logits ``(len(sequences), len(items))`` of the given item indices."""
        self._fitted()
        items = _check_sequences([np.asarray(items)], self.n_items, RequestError)[0]
        return self.user_states(sequences) @ self.item_vectors[items].T

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        self._fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({_prefix(m, len(self._nets)) + k: v.detach().cpu().contiguous()
                   for m, net in enumerate(self._nets) for k, v in net.state_dict().items()},
                  str(folder / _WEIGHTS))
        meta = {"config": self.config.model_dump(), "n_items": self.n_items,
                "epochs_run": self.epochs_run, "fit_seconds": self.fit_seconds}
        (folder / _META).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: Path) -> SequenceModel:
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / _META).exists() or not (folder / _WEIGHTS).exists():
            raise ConfigError(f"no saved sequence model in {folder} ({_META}, {_WEIGHTS})")
        meta = json.loads((folder / _META).read_text())
        model = cls(SequenceConfig.model_validate(meta["config"]))
        weights, members = load_file(str(folder / _WEIGHTS)), model.config.members
        nets = []
        for m in range(members):
            net = SASRec(meta["n_items"], model.config)
            p = _prefix(m, members)
            net.load_state_dict({k[len(p):]: v for k, v in weights.items() if k.startswith(p)})
            nets.append(net.to(model.device).eval())
        model._set(nets, meta["n_items"])
        model.epochs_run = meta["epochs_run"]
        model.fit_seconds = meta["fit_seconds"]
        return model

    def _fitted(self) -> SASRec:
        """The first member (all of them are in ``_nets``)."""
        if not self._nets:
            raise ConfigError("sequence model used before fit (call fit or load first)")
        return self._nets[0]


def _prefix(member: int, members: int) -> str:
    """Weight-name prefix of a member (none for a single model: the one-model file format)."""
    return f"m{member}." if members > 1 else ""


def _loss(net: SASRec, batch: torch.Tensor, liked_rows: torch.Tensor | None,
          neg: torch.Tensor | None, cfg: SequenceConfig) -> torch.Tensor:
    """Next-item cross-entropy over the non-padding input positions, averaged with each
    target's weight (``negative_weight`` for a next item the user did not like)."""
    inp, tgt = batch[:, :-1], batch[:, 1:]
    keep = (inp > 0) & (tgt > 0)
    h = net(inp)[keep]
    tgt = tgt[keep]
    weight = None
    if liked_rows is not None and cfg.negative_weight != 1.0:
        liked = liked_rows[:, 1:][keep] == 2
        weight = torch.where(liked, 1.0, cfg.negative_weight).to(h.dtype)
    table = net.item.weight
    if neg is None:  # full softmax over rows 1..n (row 0 is padding)
        return _weighted_mean(F.cross_entropy(h @ table[1:].T, tgt - 1, reduction="none"),
                              weight)
    # sampled softmax: the positive first, then shared uniform negatives (uniform sampling gives
    # every logit the same logQ correction, so it is left out); accidental hits are masked
    neg = neg.to(h.device) + 1
    pos_logit = (h * table[tgt]).sum(-1, keepdim=True)
    neg_logit = (h @ table[neg].T).masked_fill(neg[None, :] == tgt[:, None], float("-inf"))
    logits = torch.cat([pos_logit, neg_logit], dim=1)
    return _weighted_mean(F.cross_entropy(
        logits, torch.zeros(len(h), dtype=torch.long, device=h.device), reduction="none"),
        weight)


def _weighted_mean(losses: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return losses.mean()
    return (losses * weight).sum() / weight.sum().clamp_min(1e-6)


def _check_liked(liked: Sequence[np.ndarray] | None, seqs: list[np.ndarray],
                 needed: bool) -> list[np.ndarray] | None:
    """Liked flags as int64 arrays aligned with ``seqs`` (None when the fit needs none)."""
    if not needed:
        return None
    if liked is None or len(liked) != len(seqs):
        raise ConfigError("negative_weight != 1 weighs the next items by whether the user "
                          "liked them: pass one flag array per sequence (liked=...)")
    out = []
    for i, (flags, s) in enumerate(zip(liked, seqs, strict=True)):
        f = np.asarray(flags)
        if f.shape != s.shape:
            raise ConfigError(f"sequence {i} has {len(s)} items but {f.size} liked flags")
        out.append(f.astype(np.int64))
    return out


def _batches(lengths: torch.Tensor, size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Shuffled batches of rows of similar length (log-length plus noise, so the batches still
    change every epoch): padding, which costs as much as items in the transformer, shrinks."""
    key = lengths.float().log() + _BUCKET_JITTER * torch.rand(len(lengths), generator=gen)
    batches = torch.argsort(key).split(size)
    return [batches[i] for i in torch.randperm(len(batches), generator=gen)]


def _check_sequences(sequences: Sequence[np.ndarray], n_items: int,
                     error: type[Exception]) -> list[np.ndarray]:
    if len(sequences) == 0 and error is ConfigError:
        raise ConfigError("no sequences given: fit needs at least one sequence of 2+ items")
    out = []
    for i, s in enumerate(sequences):
        a = np.asarray(s)
        if a.ndim != 1 or (len(a) and not np.issubdtype(a.dtype, np.integer)):
            raise error(f"sequence {i} must be a 1-d array of integer item indices")
        if len(a) and (a.min() < 0 or a.max() >= n_items):
            bad = int(a.min() if a.min() < 0 else a.max())
            raise error(f"sequence {i} has item index {bad} outside [0, {n_items})")
        out.append(a.astype(np.int64, copy=False))
    return out


def _left_pad(seqs: list[np.ndarray], width: int) -> torch.Tensor:
    """Newest ``width`` items of each sequence, shifted by +1, left-padded with 0."""
    out = np.zeros((len(seqs), width), np.int64)
    for r, s in enumerate(seqs):
        tail = s[-width:]
        if len(tail):
            out[r, width - len(tail):] = tail + 1
    return torch.from_numpy(out)


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n is None or n == before:  # setting it, even unchanged, costs ~0.3 ms a call
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _progress(total: int, enabled: bool) -> Any:  # a tqdm bar or None
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sequence model", unit="batch")
