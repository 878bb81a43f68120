"""mosaicrec.engine: user model, events, recommendation pipeline, search and explanations."""

from mosaicrec.engine.collaborative import CollaborativeScorer, CooccurrenceScorer
from mosaicrec.engine.events import EventStore, SQLiteEventStore
from mosaicrec.engine.explain import Contribution, Explanation, explain_item
from mosaicrec.engine.pipeline import (
    STAGE_NAMES,
    ColdStartConfig,
    Recommendation,
    Recommendations,
    Recommender,
    RecommenderConfig,
    cross_catalogue_recommend,
)
from mosaicrec.engine.search import Searcher, SearchRequest
from mosaicrec.engine.stages import (
    Boost,
    CandidateConfig,
    HistoryConfig,
    RankConfig,
    RecContext,
    RerankConfig,
    ScoreConfig,
    Stage,
    mmr_select,
)
from mosaicrec.engine.user_model import (
    INTERACTION_TYPES,
    FusionUserModel,
    Interaction,
    InteractionType,
    Interest,
    ProfileCache,
    UserModel,
    UserModelConfig,
    UserProfile,
)

__all__ = [
    "INTERACTION_TYPES",
    "STAGE_NAMES",
    "Boost",
    "CandidateConfig",
    "HistoryConfig",
    "RankConfig",
    "RecContext",
    "RerankConfig",
    "ScoreConfig",
    "SearchRequest",
    "Searcher",
    "Stage",
    "explain_item",
    "mmr_select",
    "ColdStartConfig",
    "CollaborativeScorer",
    "Contribution",
    "CooccurrenceScorer",
    "EventStore",
    "Explanation",
    "FusionUserModel",
    "Interaction",
    "InteractionType",
    "Interest",
    "ProfileCache",
    "Recommendation",
    "Recommendations",
    "Recommender",
    "RecommenderConfig",
    "SQLiteEventStore",
    "UserModel",
    "UserModelConfig",
    "UserProfile",
    "cross_catalogue_recommend",
]
