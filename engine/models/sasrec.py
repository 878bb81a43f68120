"""The SASRec network (Kang & McAuley 2018) and the stack of its trained members for serving.

:class:`SASRec` is one member, trained on its own. :class:`StackedSASRec` holds every member's
weights with a leading member axis (their item tables side by side, one gather for all), so one
forward pass computes all of them with the operator calls of one: a single user's pass is
per-call overhead, not arithmetic, on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["SASRec", "StackedSASRec"]


class _Shape(Protocol):
    dim: int
    blocks: int
    heads: int
    max_len: int
    dropout: float


class _Dropout(nn.Module):
    """``nn.Dropout`` from a uniform draw: the same masks in distribution, a third cheaper on
    a CPU, where ``bernoulli_`` took a fifth of a training step."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * (torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p))


class _Block(nn.Module):
    """Pre-norm causal self-attention + point-wise feed-forward, both residual."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), _Dropout(dropout),
                                 nn.Linear(dim, dim))
        self.drop = _Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        # no dropout on the attention weights: same validation NDCG on MovieLens, faster on CPU
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ffn(self.norm2(x)))


class SASRec(nn.Module):
    def __init__(self, n_items: int, cfg: _Shape) -> None:
        super().__init__()
        self.max_len, self.scale = cfg.max_len, math.sqrt(cfg.dim)
        # row 0 is padding; public item i is row i + 1
        self.item = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
        self.pos = nn.Embedding(cfg.max_len, cfg.dim)
        self.drop = _Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(
            _Block(cfg.dim, cfg.heads, cfg.dropout) for _ in range(cfg.blocks))
        self.norm = nn.LayerNorm(cfg.dim)
        nn.init.normal_(self.item.weight, std=cfg.dim ** -0.5)
        nn.init.normal_(self.pos.weight, std=0.02)
        with torch.no_grad():
            self.item.weight[0].zero_()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """``seq`` (B, L) left-padded rows -> hidden states (B, L, dim)."""
        n = seq.shape[1]
        valid = seq > 0
        x = self.drop(self.item(seq) * self.scale + self.pos(_positions(self.max_len, n, seq)))
        x = x * valid[..., None]
        mask = _attention_mask(valid)
        for block in self.blocks:
            x = block(x, mask) * valid[..., None]
        return self.norm(x)


def _positions(max_len: int, n: int, seq: torch.Tensor) -> torch.Tensor:
    # positions count back from the newest item, so extra left padding changes nothing
    return torch.arange(max_len - n, max_len, device=seq.device)


def _attention_mask(valid: torch.Tensor) -> torch.Tensor:
    """(B, 1, L, L) causal mask; a padding key is never attended to, and the diagonal keeps
    padding rows free of NaN."""
    n = valid.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool, device=valid.device).tril()
    eye = torch.eye(n, dtype=torch.bool, device=valid.device)
    return (causal & (valid[:, None, :] | eye))[:, None]


class _Norm:
    """A member-stacked LayerNorm: (M, dim) weight and bias."""

    def __init__(self, norms: Sequence[nn.LayerNorm]) -> None:
        self.weight = torch.stack([n.weight.detach() for n in norms])[:, None, None]
        self.bias = torch.stack([n.bias.detach() for n in norms])[:, None, None]
        self.eps = norms[0].eps

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], eps=self.eps) * self.weight + self.bias


class _Linear:
    """Member-stacked Linear: ``x`` (M, B, L, in) -> (M, B, L, out). Given the LayerNorms
    before it, their scale and shift are folded into the weights, so the call takes the plain
    normalised ``x``: ``(z * w + b) W^T + c = z (diag(w) W^T) + (b W^T + c)``."""

    def __init__(self, layers: Sequence[nn.Linear],
                 norms: Sequence[nn.LayerNorm] | None = None) -> None:
        weight_t = torch.stack([la.weight.detach().T for la in layers])
        bias = torch.stack([la.bias.detach() for la in layers])[:, None]
        if norms is not None:
            scale = torch.stack([n.weight.detach() for n in norms])[:, :, None]
            shift = torch.stack([n.bias.detach() for n in norms])[:, None]
            bias = bias + shift @ weight_t
            weight_t = scale * weight_t
        self.weight_t, self.bias = weight_t.contiguous(), bias.contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m, b, n, _ = x.shape
        y = torch.baddbmm(self.bias, x.reshape(m, b * n, -1), self.weight_t)
        return y.view(m, b, n, -1)


class StackedSASRec:
    """Trained members as one inference network: ``forward(seq)`` gives each member's state at
    the newest position, side by side ``(B, members * dim)``, as running every member and
    concatenating would (to float rounding)."""

    def __init__(self, nets: Sequence[SASRec]) -> None:
        first = nets[0]
        self.members, self.max_len, self.scale = len(nets), first.max_len, first.scale
        # the members' item tables side by side: one gather per call instead of one a member
        self.items = torch.cat([n.item.weight.detach() for n in nets], dim=1).contiguous()
        self.pos = torch.stack([n.pos.weight.detach() for n in nets])[:, None]
        self.heads, self.eps = first.blocks[0].heads, first.norm.eps
        self.blocks = [
            (_Linear([n.blocks[k].qkv for n in nets], [n.blocks[k].norm1 for n in nets]),
             _Linear([n.blocks[k].out for n in nets]),
             _Linear([n.blocks[k].ffn[0] for n in nets], [n.blocks[k].norm2 for n in nets]),
             _Linear([n.blocks[k].ffn[3] for n in nets]))
            for k in range(len(first.blocks))]
        self.norm = _Norm([n.norm for n in nets])

    def __call__(self, seq: torch.Tensor, *, padded: bool | None = None) -> torch.Tensor:
        """``padded``: whether ``seq`` has padding, when the caller knows (one user's
        history never has; finding out costs an operator call and a sync)."""
        m, (b, n) = self.members, seq.shape
        valid = seq > 0 if padded is not False else None  # one operator less when known
        if padded is None:
            padded = not bool(valid.all())  # type: ignore[union-attr]
        x = F.embedding(seq, self.items).view(b, n, m, -1).permute(2, 0, 1, 3) * self.scale + \
            self.pos[:, :, self.max_len - n:]
        # without padding the plain causal kernel needs no mask
        mask = None
        if padded:
            assert valid is not None
            x = x * valid[..., None]
            mask = _attention_mask(valid).expand(m, -1, -1, -1, -1).reshape(m * b, 1, n, n)
        for k, (qkv, out, ffn1, ffn2) in enumerate(self.blocks):
            last = k == len(self.blocks) - 1  # only the newest position is needed from here on
            q, key, v = qkv(self._normed(x)).view(m * b, n, 3, self.heads, -1) \
                .permute(2, 0, 3, 1, 4)
            if last:  # the newest position attends to every position: no causal mask
                q, x = q[:, :, -1:], x[:, :, -1:]
                mask = None if mask is None else mask[:, :, -1:]
                a = F.scaled_dot_product_attention(q, key, v, attn_mask=mask)
            else:
                a = F.scaled_dot_product_attention(q, key, v, attn_mask=mask,
                                                   is_causal=mask is None)
            x = x + out(a.transpose(1, 2).reshape(m, b, q.shape[2], -1))
            x = x + ffn2(F.gelu(ffn1(self._normed(x))))
            if padded and not last:
                x = x * valid[..., None]
        # the newest position of a non-empty left-padded row is always an item
        return self.norm(x)[:, :, -1].permute(1, 0, 2).reshape(b, -1)

    def _normed(self, x: torch.Tensor) -> torch.Tensor:
        """LayerNorm without its affine part (folded into the next linear layer)."""
        return F.layer_norm(x, x.shape[-1:], eps=self.eps)
