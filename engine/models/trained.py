"""The trained model the recommender serves: behaviour models, the content map and the blend.

:class:`TrainedModel` turns a user's live history into a :class:`BehaviourState` (one EASE query
row, one folded-in ALS factor, one sequence-model forward pass, one content-space query) and
scores candidates with it, signal by signal. Items the models know are scored by the models;
items they do not know (indexed after training) are scored through the content map, from the
content vector the caller fetched. The same object scores during tuning and in serving.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mosaicrec.engine.models.als import ALSModel
from mosaicrec.engine.models.blend import BlendConfig
from mosaicrec.engine.models.content_map import ContentMap
from mosaicrec.engine.models.data import ItemIndex, PositiveRule, UserHistory
from mosaicrec.engine.models.ease import EASEModel, EASEState
from mosaicrec.engine.user_model import Interaction

if TYPE_CHECKING:
    from mosaicrec.engine.models.sequence import SequenceModel

__all__ = ["BEHAVIOUR_SPACES", "BehaviourState", "TrainedModel"]

# Named vectors the trained model writes into the collection (dot product = model score).
BEHAVIOUR_SPACES = ("als", "sequence")


@dataclass
class BehaviourState:
    """What one request knows about the user, computed once from their history."""

    history: UserHistory
    ease: EASEState | None = None
    ease_all: EASEState | None = None
    als: np.ndarray | None = None  # folded-in ALS factor
    sequence: np.ndarray | None = None  # the sequence model's output at the last position
    content_query: np.ndarray | None = None  # W u: the user in the content map's space

    @property
    def has_behaviour(self) -> bool:
        return bool(len(self.history.known))

    def query(self, space: str) -> np.ndarray | None:
        """The user's query vector in a behaviour space (None when there is none)."""
        vec = self.als if space == "als" else self.sequence if space == "sequence" else None
        return None if vec is None or not np.any(vec) else vec


class TrainedModel:
    """Fitted parts, item index and blend weights; see :mod:`.artefact` for save and load."""

    def __init__(
        self,
        items: ItemIndex,
        rule: PositiveRule,
        blend: BlendConfig,
        *,
        ease: EASEModel | None = None,
        ease_all: EASEModel | None = None,
        als: ALSModel | None = None,
        sequence: SequenceModel | None = None,
        sequence_positives_only: bool = False,
        content_map: ContentMap | None = None,
        manifest: Any = None,
    ) -> None:
        self.items, self.rule, self.blend = items, rule, blend
        self.ease, self.als, self.sequence = ease, als, sequence
        self.ease_all = ease_all  # EASE over every event (ease: over positives)
        self.sequence_positives_only = sequence_positives_only
        self.content_map = content_map
        self.manifest = manifest

    @property
    def version(self) -> str:
        return getattr(self.manifest, "version", "unsaved")

    @property
    def spaces(self) -> tuple[str, ...]:
        """The behaviour spaces this model has vectors for."""
        return tuple(s for s, m in (("als", self.als), ("sequence", self.sequence)) if m)

    def item_matrices(self) -> dict[str, np.ndarray]:
        """Per behaviour space, the vectors of the items the model knows (rows of ``items``):
        what the collection's named vector holds for them."""
        out = {}
        if self.als is not None and self.als.item_vectors is not None:
            out["als"] = self.als.item_vectors
        if self.sequence is not None:
            out["sequence"] = self.sequence.item_vectors
        return out

    def state(self, events: Sequence[Interaction]) -> BehaviourState:
        history = UserHistory.from_events(events, self.items, self.rule)
        state = BehaviourState(history)
        if self.ease is not None:
            state.ease = self.ease.state(history)
        if self.ease_all is not None:
            state.ease_all = self.ease_all.state(history)
        if self.als is not None:
            state.als = self.als.state(history)
            if self.content_map is not None:
                state.content_query = self.content_map.content_query(state.als)
        if self.sequence is not None:
            seq = history.known_positive if self.sequence_positives_only else history.known
            state.sequence = self.sequence.user_states([seq])[0]
        return state

    def signals(self, state: BehaviourState, ids: Sequence[str],
                content: Mapping[str, np.ndarray] | None = None, *,
                mapped: Mapping[str, np.ndarray] | None = None,
                new_scores: Mapping[str, float] | None = None,
                only: Collection[str] | None = None,
                rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Raw model signals for candidates ``ids`` (those in ``only``, when given); NaN where
        a signal cannot score an item. For the candidates the models do not know,
        ``new_scores`` holds the ``new_item`` signal a search already computed, ``mapped``
        their ALS factors as the content map predicted them (the published ``als`` vectors),
        or ``content`` their content-map-space vectors to predict them from.
        ``rows``: the ids' rows in ``items``, when the caller has them."""
        rows = self.items.rows(ids) if rows is None else rows
        known = rows >= 0
        out: dict[str, np.ndarray] = {}

        def per_known(score: Any) -> np.ndarray:
            values = np.full(len(ids), np.nan)
            if known.any():
                values[known] = score(rows[known])
            return values

        def wanted(name: str) -> bool:
            return only is None or name in only

        if self.ease is not None and state.ease is not None and wanted("ease"):
            out["ease"] = per_known(lambda r: self.ease.score(state.ease, r))  # type: ignore
        if self.ease_all is not None and state.ease_all is not None and wanted("ease_all"):
            out["ease_all"] = per_known(
                lambda r: self.ease_all.score(state.ease_all, r))  # type: ignore
        if self.als is not None and state.als is not None and wanted("als"):
            out["als"] = per_known(lambda r: self.als.score(state.als, r))  # type: ignore
        if self.sequence is not None and state.sequence is not None and wanted("sequence"):
            vectors = self.sequence.item_vectors
            out["sequence"] = per_known(lambda r: vectors[r] @ state.sequence)
        if self.content_map is not None and state.als is not None and \
                (content or mapped or new_scores) and wanted("new_item"):
            out["new_item"] = self._new_item(state.als, ids, known, content, mapped,
                                             new_scores or {})
        return out

    def _new_item(self, als: np.ndarray, ids: Sequence[str], known: np.ndarray,
                  content: Mapping[str, np.ndarray] | None,
                  mapped: Mapping[str, np.ndarray] | None,
                  new_scores: Mapping[str, float]) -> np.ndarray:
        assert self.content_map is not None
        new = np.full(len(ids), np.nan)
        unknown = np.flatnonzero(~known).tolist()
        given = [j for j in unknown if ids[j] in new_scores]
        new[given] = [new_scores[ids[j]] for j in given]
        source = mapped or content or {}
        rest = [j for j in unknown if ids[j] not in new_scores and ids[j] in source]
        if rest:
            rows_of = np.stack([source[ids[j]] for j in rest])
            factors = rows_of if mapped else self.content_map.predict(rows_of)
            new[rest] = factors @ als
        return new

    def behaviour_vectors(self, ids: Sequence[str],
                          content: Mapping[str, np.ndarray] | None = None,
                          ) -> dict[str, tuple[list[str], np.ndarray]]:
        """Vectors to store per behaviour space: trained ones for known items; for unknown
        items with content, the ALS factor predicted by the content map."""
        rows = self.items.rows(ids)
        out: dict[str, tuple[list[str], np.ndarray]] = {}
        if self.sequence is not None:
            known = np.flatnonzero(rows >= 0)
            out["sequence"] = ([ids[j] for j in known], self.sequence.item_vectors[rows[known]])
        if self.als is not None and self.als.item_vectors is not None:
            known = [j for j in range(len(ids)) if rows[j] >= 0]
            mapped = [j for j in range(len(ids)) if rows[j] < 0 and content
                      and ids[j] in content] if self.content_map is not None else []
            parts = [self.als.item_vectors[rows[known]]]
            if mapped:
                assert self.content_map is not None and content is not None
                parts.append(self.content_map.predict(np.stack([content[ids[j]]
                                                                for j in mapped])))
            out["als"] = ([ids[j] for j in known + mapped], np.concatenate(parts))
        return out

    def is_known(self, item_id: str) -> bool:
        return item_id in self.items
