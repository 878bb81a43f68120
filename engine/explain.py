"""Why an item was recommended: in data and in one sentence.

The similarity of a candidate ``v`` to an interest is ``cos(v, sum_h w_h x_h) ∝ sum_h w_h x_h·v``
and, for fused vectors, ``x_h·v = sum_m x_h,m · v_m`` over the modality blocks (``Fuser.split``).
So the score decomposes exactly into one term per (history item, modality); an item's share is
its positive part over the sum of positive parts. Nothing is estimated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from mosaicrec.encoders.fusion import Fuser
from mosaicrec.engine.user_model import Interest

__all__ = ["Contribution", "Explanation", "explain_blended", "explain_item",
           "signal_shares", "simple_explanation"]


@dataclass
class Contribution:
    """One history item's part in a recommendation."""

    item_id: str
    label: str
    share: float  # of the similarity explained, in [0, 1]
    modalities: dict[str, float] = field(default_factory=dict)  # shares within this item


@dataclass
class Explanation:
    sentence: str
    reason: str  # "history", "examples", "prompt", "popular", "catalogue"
    contributions: list[Contribution] = field(default_factory=list)
    modalities: dict[str, float] = field(default_factory=dict)  # over all contributions
    signals: dict[str, float] = field(default_factory=dict)  # score components
    shares: dict[str, float] = field(default_factory=dict)  # signal groups' share of the lift


def _blocks(rows: np.ndarray, fuser: Fuser | None, space: str) -> dict[str, np.ndarray]:
    if fuser is not None and space == "fused" and rows.shape[-1] == fuser.dim:
        return dict(fuser.split(rows))
    return {space: rows}


def explain_item(
    vector: np.ndarray,
    interest: Interest,
    *,
    fuser: Fuser | None = None,
    space: str = "fused",
    labels: Mapping[str, str] | None = None,
    top: int = 3,
    verb: str = "liked",
    reason: str = "history",
    signals: Mapping[str, float] | None = None,
) -> Explanation:
    """Decompose ``vector``'s similarity to ``interest`` over its history items and modalities."""
    labels = labels or {}
    v = np.asarray(vector, dtype=np.float32)
    hist = _blocks(interest.item_vectors, fuser, space)
    cand = _blocks(v, fuser, space)
    # (items, modalities) terms of the dot product, weighted by each item's history weight
    terms = np.stack([hist[m] @ cand[m] for m in hist], axis=1) * interest.item_weights[:, None]
    mods = list(hist)
    pos = np.clip(terms, 0, None)
    per_item = terms.sum(axis=1)
    positive = np.clip(per_item, 0, None)
    total = positive.sum()
    contributions = []
    for j in np.argsort(-per_item)[:top]:
        if per_item[j] <= 0 or total <= 0:
            break
        mshare = pos[j] / pos[j].sum() if pos[j].sum() > 0 else pos[j]
        item = interest.item_ids[j]
        contributions.append(Contribution(
            item_id=item, label=labels.get(item, item), share=float(positive[j] / total),
            modalities={m: float(s) for m, s in zip(mods, mshare, strict=True)},
        ))
    overall = pos.sum(axis=0)
    overall = overall / overall.sum() if overall.sum() > 0 else overall
    modalities = {m: float(s) for m, s in zip(mods, overall, strict=True)}
    return Explanation(
        sentence=_sentence(contributions, verb, len(mods) > 1), reason=reason,
        contributions=contributions, modalities=modalities, signals=dict(signals or {}),
    )


def _sentence(contributions: list[Contribution], verb: str, multimodal: bool) -> str:
    if not contributions:
        return "Close to your overall taste."
    shown = [c for c in contributions[:2] if c is contributions[0] or c.share >= 0.15]
    parts = []
    for c in shown:
        mods = sorted(((m, s) for m, s in c.modalities.items() if s >= 0.05), key=lambda t: -t[1])
        detail = f" ({', '.join(f'{m} {round(100 * s)}%' for m, s in mods)})" if multimodal \
            and mods else ""
        parts.append(f"{c.label}{detail}")
    return f"Because you {verb} " + " and ".join(parts) + "."


def simple_explanation(reason: str, sentence: str, signals: Mapping[str, float] | None = None,
                       ) -> Explanation:
    """An explanation with no history decomposition (cold start, prompt)."""
    return Explanation(sentence=sentence, reason=reason, signals=dict(signals or {}))


SIGNAL_GROUPS = {"ease": "behaviour", "ease_all": "behaviour", "als": "behaviour",
                 "sequence": "behaviour", "new_item": "content map", "popularity": "popularity",
                 "trending": "popularity", "content": "content", "boost": "rules"}


def signal_shares(parts: Mapping[str, float]) -> dict[str, float]:
    """Each signal group's share of what lifted the item (its positive weighted z-scores)."""
    lift: dict[str, float] = {}
    for name, value in parts.items():
        group = SIGNAL_GROUPS.get(name, name)
        lift[group] = lift.get(group, 0.0) + max(float(value), 0.0)
    total = sum(lift.values())
    return {g: v / total for g, v in lift.items() if v > 0} if total > 0 else {}


def explain_blended(
    parts: Mapping[str, float],
    history: list[tuple[str, float]],
    *,
    labels: Mapping[str, str],
    modalities: Mapping[str, Mapping[str, float]] | None = None,
    top: int = 3,
) -> Explanation:
    """A trained model's explanation: the history items behind the behaviour score (their
    weights, e.g. EASE's per-item terms) with each one's modality shares, and each signal
    group's share of the score."""
    modalities = modalities or {}
    total = sum(w for _, w in history if w > 0)
    contributions = [
        Contribution(item_id=i, label=labels.get(i, i), share=w / total,
                     modalities=dict(modalities.get(i, {})))
        for i, w in sorted(history, key=lambda t: -t[1])[:top] if w > 0 and total > 0]
    shares = signal_shares(parts)
    overall: dict[str, float] = {}
    for c in contributions:
        for m, v in c.modalities.items():
            overall[m] = overall.get(m, 0.0) + c.share * v
    weight = sum(c.share for c in contributions if c.modalities)
    overall = {m: v / weight for m, v in overall.items()} if weight > 0 else {}
    why = _sentence(contributions, "liked", len(overall) > 1).rstrip(".")
    detail = ", ".join(f"{g} {round(100 * v)}%" for g, v in
                       sorted(shares.items(), key=lambda t: -t[1]) if v >= 0.05)
    return Explanation(sentence=why + (f"; {detail}." if detail else "."), reason="history",
                       contributions=contributions, modalities=overall, signals=dict(parts),
                       shares=shares)
