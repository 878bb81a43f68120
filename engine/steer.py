"""Steering a list with example items and/or a text prompt: an extra interest in the fusion
user model's space, worth half the list when the user has a history (all of it otherwise)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mosaicrec.engine.context import RecContext
from mosaicrec.engine.user_model import (
    FusionUserModel,
    Interaction,
    Interest,
    UserModelConfig,
    UserProfile,
)
from mosaicrec.errors import ConfigError, RequestError, UnknownItemError
from mosaicrec.indexing.stores.base import VectorStore

__all__ = ["steer"]


def steer(ctx: RecContext, *, store: VectorStore, space: str, config: UserModelConfig,
          label_field: str, prompt: str | None, examples: Sequence[str],
          prompt_encoder: Callable[[str], np.ndarray] | None) -> None:
    extra: list[Interest] = []
    if examples:
        records = {r.id: r for r in store.retrieve(list(examples), vectors=[space])}
        for item in examples:
            if item not in records or space not in records[item].vectors:
                raise UnknownItemError(item, f"the collection (space {space!r})")
        events = [Interaction("_examples", i, "like", 0.0) for i in examples]
        prof = FusionUserModel(config).profile(
            events, {i: records[i].vectors[space] for i in examples})
        extra += prof.interests
        ctx.labels.update({i: str(records[i].payload.get(label_field, i)) for i in examples})
        ctx.exclude.update(examples)
        ctx.examples.update(examples)
        ctx.reason = "examples"
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise RequestError(f"prompt must be non-empty text, got {prompt!r}")
        if prompt_encoder is None:
            raise ConfigError("a text prompt needs a prompt_encoder into the space "
                              f"{space!r} (e.g. Searcher.text_vector)")
        vec = np.asarray(prompt_encoder(prompt), np.float32)
        vec = vec / max(float(np.linalg.norm(vec)), 1e-12)
        extra.append(Interest(vec, 1.0, [], np.zeros(0, np.float32),
                              np.zeros((0, len(vec)), np.float32)))
        ctx.prompt, ctx.reason = prompt, "prompt" if not examples else ctx.reason
    base = ctx.profile or UserProfile(negative_weight=config.negative_weight)
    old = base.interests
    share = 0.5 if old else 1.0
    interests = [Interest(i.vector, i.weight * (1 - share), i.item_ids, i.item_weights,
                          i.item_vectors) for i in old]
    interests += [Interest(i.vector, share / len(extra), i.item_ids, i.item_weights,
                           i.item_vectors) for i in extra]
    ctx.profile = UserProfile(
        interests=interests, negative=base.negative, item_weights=base.item_weights,
        skipped=base.skipped, labels=base.labels, blend=base.blend,
        negative_weight=base.negative_weight, seen=base.seen)
    if old or ctx.history:
        ctx.reason = "history"
