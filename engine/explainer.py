"""Explaining a finished list: which history items, signals and modalities are behind each item.

Without a trained model the fusion user model's score decomposes exactly over history items and
modalities (:func:`~mosaicrec.engine.explain.explain_item`). With one, the history items are
those behind the behaviour score (EASE's per-item terms, else the cosine of ALS factors), the
signals are the blend's weighted parts, and each named history item's modality shares come from
the per-modality parts of its fused cosine with the recommended item: one read of the few
vectors involved, never the whole history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mosaicrec.encoders.fusion import Fuser
from mosaicrec.engine.context import Candidate, RecContext
from mosaicrec.engine.explain import (
    Explanation,
    explain_blended,
    explain_item,
    simple_explanation,
)
from mosaicrec.engine.models.trained import TrainedModel
from mosaicrec.engine.retrieval import Retriever

__all__ = ["Explainer"]


class Explainer:
    def __init__(self, *, model: TrainedModel | None, retriever: Retriever,
                 fuser: Fuser | None, space: str, label_field: str, top: int = 3) -> None:
        self.model, self.retriever, self.fuser = model, retriever, fuser
        self.space, self.label_field, self.top = space, label_field, top

    def explain(self, ctx: RecContext, cands: Sequence[Candidate]) -> list[Explanation]:
        trained = self.model is not None and ctx.state is not None and \
            ctx.state.has_behaviour and not ctx.steered
        if not trained:
            vectors = self.retriever.vectors([c.id for c in cands], self.space)
            return [self._fixed(c) or self._content(ctx, c, vectors) for c in cands]
        history = self._behaviour_history(ctx, cands)
        named = list(dict.fromkeys(i for h in history.values() for i, _ in h))
        # the rerank stage's MMR has usually read the candidates' vectors already
        wanted = list(dict.fromkeys([*named, *(c.id for c in cands)]))
        vectors = {i: ctx.vectors[i] for i in wanted if i in ctx.vectors}
        vectors.update(self.retriever.vectors([i for i in wanted if i not in vectors],
                                              self.space))
        labels = {i: str(p.get(self.label_field, i))
                  for i, p in self.retriever.payloads(named, [self.label_field]).items()}
        shares = self._shares([(i, c.id) for c in cands for i, _ in history[c.id]], vectors)
        return [explain_blended(
            c.signals, history[c.id], labels=labels, top=self.top,
            modalities={i: shares.get((i, c.id), {}) for i, _ in history[c.id]})
            for c in cands]

    def _fixed(self, c: Candidate) -> Explanation | None:
        if c.reason == "popular":
            return simple_explanation("popular", "Popular with other users.", c.signals)
        if c.reason == "catalogue":
            return simple_explanation(
                "catalogue", "A varied pick from the catalogue to get you started.", c.signals)
        return None

    def _content(self, ctx: RecContext, c: Candidate,
                 vectors: dict[str, np.ndarray]) -> Explanation:
        profile = ctx.profile
        if profile is None or profile.is_empty or c.id not in vectors:
            return simple_explanation("history", "Close to your taste.", c.signals)
        k = c.interest if c.interest >= 0 else int(np.argmax(
            profile.interest_scores(vectors[c.id][None, :])[0]))
        interest = profile.interests[k]
        if not interest.item_ids:
            return simple_explanation("prompt", f"Matches your request {ctx.prompt!r}.",
                                      c.signals)
        verb = "chose" if set(interest.item_ids) <= ctx.examples else "liked"
        return explain_item(vectors[c.id], interest, fuser=self.fuser, space=self.space,
                            labels=ctx.labels, verb=verb,
                            reason="examples" if verb == "chose" else "history",
                            signals=c.signals)

    def _shares(self, pairs: Sequence[tuple[str, str]], vectors: Mapping[str, np.ndarray],
                ) -> dict[tuple[str, str], dict[str, float]]:
        """Per (history item, candidate) pair, each modality's share of the positive part of
        their fused cosine (one product per modality for every pair)."""
        fuser = self.fuser
        if fuser is None:
            return {}
        pairs = [(a, b) for a, b in pairs if a in vectors and b in vectors
                 and len(vectors[a]) == len(vectors[b]) == fuser.dim]
        if not pairs:
            return {}
        lefts = {a: k for k, a in enumerate(dict.fromkeys(a for a, _ in pairs))}
        rights = {b: k for k, b in enumerate(dict.fromkeys(b for _, b in pairs))}
        left, right = np.stack([vectors[a] for a in lefts]), np.stack([vectors[b] for b in rights])
        # (lefts, rights, modalities): each modality's part of every cosine, then the pairs'
        per = np.stack([left[:, s] @ right[:, s].T for s in fuser.slices.values()], axis=-1)
        parts = per[[lefts[a] for a, _ in pairs], [rights[b] for _, b in pairs]].clip(min=0)
        total = parts.sum(axis=1, keepdims=True)
        shares = np.divide(parts, total, out=np.zeros_like(parts), where=total > 0).tolist()
        modalities = list(fuser.slices)
        return {pair: dict(zip(modalities, row, strict=True)) if sum(row) > 0 else {}
                for pair, row in zip(pairs, shares, strict=True)}

    def _behaviour_history(self, ctx: RecContext, cands: Sequence[Candidate],
                           ) -> dict[str, list[tuple[str, float]]]:
        """Per candidate, the ``top`` history items behind its behaviour score, strongest
        first: EASE's per-item terms, or the cosine of ALS factors with the newest positives
        (one matrix product for the whole list)."""
        model, state = self.model, ctx.state
        assert model is not None and state is not None
        out: dict[str, list[tuple[str, float]]] = {c.id: [] for c in cands}
        rows = model.items.rows([c.id for c in cands])
        known = [(c.id, r) for c, r in zip(cands, rows.tolist(), strict=True) if r >= 0]
        if not known:
            return out
        cols = np.array([r for _, r in known])
        if model.ease is not None and state.ease is not None and len(state.ease.rows):
            history = state.ease.rows
            terms = model.ease.contributions(state.ease, cols)
        elif model.als is not None and model.als.item_vectors is not None:
            history = np.unique(state.history.known_positive[-50:])
            a, b = model.als.item_vectors[history], model.als.item_vectors[cols]
            terms = (a @ b.T) / np.maximum(np.outer(np.linalg.norm(a, axis=1),
                                                    np.linalg.norm(b, axis=1)), 1e-12)
        else:
            return out
        ids, names = model.items.ids, history.tolist()
        best = np.argsort(-terms, axis=0, kind="stable")[: self.top]  # per column
        weights = np.take_along_axis(terms, best, axis=0).T.tolist()
        for (item, _), picked, w in zip(known, best.T.tolist(), weights, strict=True):
            out[item] = [(ids[names[r]], v) for r, v in zip(picked, w, strict=True) if v > 0]
        return out

