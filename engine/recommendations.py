"""What ``Recommender.recommend`` returns: the ranked items with their payloads, scores, signals
and explanations, and how the list was made."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mosaicrec.engine.explain import Explanation

__all__ = ["Recommendation", "Recommendations"]


@dataclass
class Recommendation:
    id: str
    score: float
    payload: dict[str, Any]
    explanation: Explanation | None = None
    signals: dict[str, float] = field(default_factory=dict)


@dataclass
class Recommendations:
    user_id: str | None
    items: list[Recommendation]
    reason: str  # history, examples, prompt, popular, catalogue
    skipped_history: list[str] = field(default_factory=list)  # history items no longer stored
    timings_ms: dict[str, float] = field(default_factory=dict)
    model_version: str | None = None

    def __iter__(self) -> Iterator[Recommendation]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.items]

    @property
    def scores(self) -> np.ndarray:
        return np.array([r.score for r in self.items], dtype=np.float32)
