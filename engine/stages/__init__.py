"""The recommendation stages: history -> candidates -> score -> rank -> rerank, and cold start.

Each stage is a small object with a typed config, built with the resources it uses, and a
``run(ctx)`` that reads and writes the request's :class:`~mosaicrec.engine.context.RecContext`.
Any stage can be replaced by name.
"""

from mosaicrec.engine.stages.candidates import (
    CandidateConfig,
    CandidateSource,
    CandidateStage,
    ContentSource,
    Proposal,
    SourceLimits,
    model_sources,
    new_item_vectors,
)
from mosaicrec.engine.stages.cold_start import ColdStartConfig, ColdStartStage
from mosaicrec.engine.stages.history import HistoryConfig, HistoryStage
from mosaicrec.engine.stages.rank import (
    RankConfig,
    RankStage,
    RerankConfig,
    RerankStage,
    mmr_select,
)
from mosaicrec.engine.stages.score import (
    BlendStage,
    BlendStageConfig,
    Boost,
    ScoreConfig,
    ScoreStage,
    raw_signals,
)

__all__ = [
    "BlendStage", "BlendStageConfig", "Boost", "CandidateConfig", "CandidateSource",
    "CandidateStage", "ColdStartConfig", "ColdStartStage", "ContentSource", "HistoryConfig",
    "HistoryStage", "Proposal", "RankConfig", "RankStage", "RerankConfig", "RerankStage",
    "ScoreConfig", "ScoreStage", "SourceLimits", "mmr_select", "model_sources",
    "new_item_vectors", "raw_signals",
]
