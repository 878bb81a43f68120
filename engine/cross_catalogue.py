"""Recommending items of one catalogue from a history in another, through a shared space."""

from __future__ import annotations

from collections.abc import Sequence

from mosaicrec.engine.pipeline import Recommender, RecommenderConfig
from mosaicrec.engine.recommendations import Recommendations
from mosaicrec.engine.stages import ScoreConfig
from mosaicrec.engine.user_model import Interaction
from mosaicrec.errors import ConfigError
from mosaicrec.indexing.stores.base import Filter, VectorStore

__all__ = ["cross_catalogue_recommend"]


def cross_catalogue_recommend(
    history_store: VectorStore,
    target_store: VectorStore,
    history: Sequence[Interaction] | Sequence[str],
    *,
    space: str = "image",
    n: int = 10,
    filters: Filter | None = None,
    diversity: float | None = None,
    config: RecommenderConfig | None = None,
) -> Recommendations:
    """Recommend items of ``target_store`` from a history in ``history_store`` through a space
    both collections share (e.g. CLIP ``image``: movie posters -> photos). A plain list of ids
    counts as likes. Both collections must hold ``space`` with the same encoder."""
    a, b = history_store.schema.vectors.get(space), target_store.schema.vectors.get(space)
    if a is None or b is None:
        raise ConfigError(f"space {space!r} must exist in both collections")
    if a != b:
        raise ConfigError(f"space {space!r} was built by different encoders: "
                          f"{a.encoder} (dim {a.dim}) vs {b.encoder} (dim {b.dim})")
    events = [e if isinstance(e, Interaction) else Interaction("_cross", e, "like", float(t))
              for t, e in enumerate(history)]
    cfg = (config or RecommenderConfig(score=ScoreConfig(popularity_weight=0.0)))
    cfg = cfg.model_copy(update={"space": space})
    rec = Recommender(target_store, None, None, cfg, history_store=history_store)
    return rec.recommend(None, n, filters, exclude_seen=False, diversity=diversity,
                         history=events)
