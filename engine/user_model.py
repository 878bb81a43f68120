"""The fusion user model: a history of interactions -> unit query vectors in an item space.

Pure numpy, no store access, so the same code ranks a full catalogue densely (offline
evaluation) and feeds the pipeline's candidate and score stages.

* Each event gets a weight from its type (a like counts more than a view; a rating counts
  ``value - rating_center`` so one or two stars push away), times a recency decay (half-life in
  days and/or in interactions). Weights are summed per item: a like then a dislike cancel.
* Items with a net positive weight form the positive history; it is clustered (weighted,
  seeded spherical k-means) into at most ``max_interests`` interests, so a user with two
  distinct tastes gets two query vectors and one taste does not drown the other.
* Items with a net negative weight form one negative centroid that candidates are pushed away
  from: a dislike is not a weak like.

``profile`` is cheap (milliseconds for hundreds of events), so profiles follow each new event
without retraining; :class:`~mosaicrec.engine.profile_cache.ProfileCache` keeps them between
requests and is invalidated by the event store on append and ``forget``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
from pydantic import ConfigDict, Field

from mosaicrec.config import StrictModel
from mosaicrec.errors import ConfigError, RequestError

__all__ = [
    "INTERACTION_TYPES",
    "Interaction",
    "InteractionType",
    "Interest",
    "FusionUserModel",
    "UserModel",
    "UserModelConfig",
    "UserProfile",
]

InteractionType = Literal["view", "click", "like", "purchase", "rating", "skip", "dislike"]
INTERACTION_TYPES: tuple[str, ...] = get_args(InteractionType)
_DAY = 86400.0


def _finite(value: object) -> bool:
    # plain floats first: a history read from the event store builds hundreds of events and
    # the abstract-class check costs more than everything else here
    if type(value) is float:
        return math.isfinite(value)
    return isinstance(value, numbers.Real) and math.isfinite(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Interaction:
    """One thing a user did with an item. Only ids: no personal data beyond what the caller
    passes. ``value`` is the rating for type ``"rating"``; ``context`` e.g. a scene or
    catalogue name. Invalid events raise ``RequestError`` at construction."""

    user_id: str
    item_id: str
    type: InteractionType
    timestamp: float
    value: float | None = None
    context: str | None = None

    @classmethod
    def from_store(cls, user_id: str, item_id: str, type: str, timestamp: float,
                   value: float | None, context: str | None) -> Interaction:
        """An event read back from an event store, which checked it on the way in: built
        without checking again (a history of hundreds of events is read on every request
        after a new event, and the checks cost ~2 us an event)."""
        event = object.__new__(cls)
        event.__dict__.update(user_id=user_id, item_id=item_id, type=type,
                              timestamp=timestamp, value=value, context=context)
        return event

    def __post_init__(self) -> None:
        for name in ("user_id", "item_id"):
            v = getattr(self, name)
            if not isinstance(v, str) or not v:
                raise RequestError(f"interaction {name} must be a non-empty string, got {v!r}")
        if self.type not in INTERACTION_TYPES:
            raise RequestError(
                f"unknown interaction type {self.type!r} for item {self.item_id!r}; "
                f"valid types: {', '.join(INTERACTION_TYPES)}"
            )
        if not _finite(self.timestamp):
            raise RequestError(f"interaction timestamp must be a finite number of unix seconds, "
                               f"got {self.timestamp!r} for item {self.item_id!r}")
        if self.type == "rating" and not _finite(self.value):
            raise RequestError(f"a rating needs a finite value, got {self.value!r} "
                               f"for item {self.item_id!r}")


class UserModelConfig(StrictModel):
    """How events become weights, how recency decays, how interests are formed."""

    model_config = ConfigDict(extra="forbid")

    type_weights: dict[str, float] = Field(
        default_factory=lambda: {"view": 0.5, "click": 1.0, "like": 2.0, "purchase": 3.0,
                                 "skip": -0.5, "dislike": -2.0},
        description="weight per event type; 'rating' is handled by rating_center/rating_scale",
    )
    rating_center: float = Field(3.0, description="a rating counts (value - center) * scale")
    rating_scale: float = Field(1.0, gt=0)
    half_life_days: float | None = Field(
        None, gt=0, description="recency decay by age, relative to `now` or the newest event")
    half_life_events: float | None = Field(
        None, gt=0, description="recency decay by rank: the newest event has rank 0")
    negative_weight: float = Field(0.5, ge=0, description="how hard disliked items push away")
    max_interests: int = Field(3, ge=1, le=32)
    min_interest_share: float = Field(
        0.15, ge=0, lt=1, description="interests with less of the positive weight are merged")
    min_items_per_interest: int = Field(
        3, ge=1, description="at most (positive items // this) interests: no split of a few")
    merge_cosine: float = Field(
        0.9, gt=-1, le=1, description="interests whose centroids are closer than this merge")
    kmeans_iterations: int = Field(20, ge=1)
    interest_blend: Literal["max", "weighted"] = Field(
        "max", description="max cosine over interests, or the weight-blended cosine")
    seed: int = 0

    def model_post_init(self, __context: object) -> None:
        unknown = sorted(set(self.type_weights) - set(INTERACTION_TYPES) - {"rating"})
        if unknown:
            raise ConfigError(f"type_weights names unknown interaction types {unknown}; "
                              f"valid: {', '.join(INTERACTION_TYPES)}")


@dataclass
class Interest:
    """One taste: a unit query vector, its share of the positive weight and its items."""

    vector: np.ndarray
    weight: float
    item_ids: list[str]
    item_weights: np.ndarray
    item_vectors: np.ndarray  # (m, d) unit rows of the member items, for explanations


@dataclass
class UserProfile:
    """Query vectors for one user, and the per-item weights they came from."""

    interests: list[Interest] = field(default_factory=list)
    negative: np.ndarray | None = None
    item_weights: dict[str, float] = field(default_factory=dict)  # net weight per history item
    skipped: list[str] = field(default_factory=list)  # history ids with no vector (deleted)
    labels: dict[str, str] = field(default_factory=dict)  # display names, set by the pipeline
    seen: set[str] = field(default_factory=set)  # every history item (also skipped, older)
    blend: Literal["max", "weighted"] = "max"
    negative_weight: float = 0.5

    @property
    def is_empty(self) -> bool:
        return not self.interests

    def interest_scores(self, matrix: np.ndarray) -> np.ndarray:
        """``(n, k)`` cosine of each candidate row to each interest."""
        rows = _unit_rows(matrix)
        if not self.interests:
            return np.zeros((len(rows), 0), dtype=np.float32)
        return rows @ np.stack([i.vector for i in self.interests]).T

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """Score candidate rows ``(n, d)``: interest cosine minus the pushed-away negative."""
        rows = _unit_rows(matrix)
        scores = np.zeros(len(rows), dtype=np.float32)
        if self.interests:
            sims = rows @ np.stack([i.vector for i in self.interests]).T
            if self.blend == "max":
                scores = sims.max(axis=1)
            else:
                w = np.array([i.weight for i in self.interests], dtype=np.float32)
                scores = sims @ (w / w.sum())
        if self.negative is not None and self.negative_weight:
            scores = scores - self.negative_weight * (rows @ self.negative)
        return scores.astype(np.float32, copy=False)


class UserModel:
    """What the pipeline needs from a user model; the learned model implements the same."""

    def profile(
        self,
        events: Iterable[Interaction],
        item_vectors: Mapping[str, np.ndarray],
        *,
        now: float | None = None,
    ) -> UserProfile:  # pragma: no cover - interface
        raise NotImplementedError


class FusionUserModel(UserModel):
    """Weighted, recency-decayed, multi-interest aggregation of item vectors."""

    def __init__(self, config: UserModelConfig | None = None) -> None:
        self.config = config or UserModelConfig()

    def event_weights(self, events: list[Interaction], now: float | None = None) -> np.ndarray:
        """Weight of each event (in the given order): type weight times recency decay."""
        cfg = self.config
        if not events:
            return np.zeros(0)
        w = np.array([
            (e.value - cfg.rating_center) * cfg.rating_scale if e.type == "rating"
            else cfg.type_weights.get(e.type, 0.0)
            for e in events
        ], dtype=np.float64)
        ts = np.array([e.timestamp for e in events], dtype=np.float64)
        if cfg.half_life_days is not None:
            ref = ts.max() if now is None else now
            age = np.maximum(ref - ts, 0.0) / _DAY
            w *= 0.5 ** (age / cfg.half_life_days)
        if cfg.half_life_events is not None:
            # rank 0 = newest; a stable sort keeps insertion order among equal timestamps
            order = np.argsort(ts, kind="stable")[::-1]
            rank = np.empty(len(ts))
            rank[order] = np.arange(len(ts))
            w *= 0.5 ** (rank / cfg.half_life_events)
        return w

    def profile(
        self,
        events: Iterable[Interaction],
        item_vectors: Mapping[str, np.ndarray],
        *,
        now: float | None = None,
    ) -> UserProfile:
        """Build a profile. History items missing from ``item_vectors`` are skipped and listed
        in ``profile.skipped``; an empty history gives a profile with no interests."""
        cfg = self.config
        events = list(events)
        weights = self.event_weights(events, now)
        net: dict[str, float] = {}
        for e, w in zip(events, weights, strict=True):
            net[e.item_id] = net.get(e.item_id, 0.0) + float(w)
        skipped = [i for i in net if i not in item_vectors]
        net = {i: w for i, w in net.items() if i in item_vectors}
        profile = UserProfile(item_weights=net, skipped=skipped, blend=cfg.interest_blend,
                              negative_weight=cfg.negative_weight, seen=set(net) | set(skipped))
        pos = [i for i, w in net.items() if w > 0]
        neg = [i for i, w in net.items() if w < 0]
        if neg:
            nv = _unit_rows(np.stack([item_vectors[i] for i in neg]))
            nw = -np.array([net[i] for i in neg], dtype=np.float32)
            profile.negative = _unit(nw @ nv)
        if pos:
            X = _unit_rows(np.stack([item_vectors[i] for i in pos]))
            w = np.array([net[i] for i in pos], dtype=np.float64)
            labels = self._cluster(X, w)
            total = w.sum()
            for k in np.unique(labels):
                m = labels == k
                vec = _unit((w[m] @ X[m]).astype(np.float32))
                profile.interests.append(Interest(
                    vector=vec, weight=float(w[m].sum() / total),
                    item_ids=[pos[j] for j in np.flatnonzero(m)],
                    item_weights=w[m].astype(np.float32), item_vectors=X[m],
                ))
            profile.interests.sort(key=lambda i: -i.weight)
        return profile

    def _cluster(self, X: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Weighted spherical k-means (seeded k-means++ start), then merge small or
        near-duplicate clusters. Returns a label per row."""
        cfg = self.config
        k = min(cfg.max_interests, len(X) // cfg.min_items_per_interest)
        if k <= 1:
            return np.zeros(len(X), dtype=int)
        rng = np.random.default_rng(cfg.seed)
        p = w / w.sum()
        centers = [X[rng.choice(len(X), p=p)]]
        for _ in range(1, k):
            d = np.clip(1.0 - np.max(X @ np.stack(centers).T, axis=1), 0.0, None) * w
            if d.sum() <= 1e-9:
                break
            centers.append(X[rng.choice(len(X), p=d / d.sum())])
        C = np.stack(centers)
        labels = np.zeros(len(X), dtype=int)
        for it in range(cfg.kmeans_iterations):
            new = np.argmax(X @ C.T, axis=1)
            if it and np.array_equal(new, labels):
                break
            labels = new
            C = np.stack([_unit((w[labels == j] @ X[labels == j]).astype(np.float32))
                          if np.any(labels == j) else C[j] for j in range(len(C))])
        return self._merge(X, w, labels)

    def _merge(self, X: np.ndarray, w: np.ndarray, labels: np.ndarray) -> np.ndarray:
        cfg = self.config
        while True:
            ids = np.unique(labels)
            if len(ids) == 1:
                return labels
            C = np.stack([_unit((w[labels == j] @ X[labels == j]).astype(np.float32))
                          for j in ids])
            share = np.array([w[labels == j].sum() for j in ids]) / w.sum()
            sims = C @ C.T
            np.fill_diagonal(sims, -np.inf)
            # near-duplicates first (k-means split one taste), then too-small interests
            a, b = np.unravel_index(int(np.argmax(sims)), sims.shape)
            if sims[a, b] >= cfg.merge_cosine:
                labels = np.where(labels == ids[b], ids[a], labels)
                continue
            small = int(np.argmin(share))
            if share[small] < cfg.min_interest_share:
                labels = np.where(labels == ids[small], ids[int(np.argmax(sims[small]))], labels)
                continue
            return labels


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-12 else v


def _unit_rows(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    if m.ndim == 1:
        m = m[None, :]
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.maximum(n, 1e-12)
