"""mosaicrec.engine: events, the user model, trained behaviour models, the recommendation
stages, cross-modal search and explanations."""

from mosaicrec.engine.context import Candidate, RecContext, Stage
from mosaicrec.engine.cross_catalogue import cross_catalogue_recommend
from mosaicrec.engine.events import EventStore, SQLiteEventStore
from mosaicrec.engine.explain import Contribution, Explanation, explain_item
from mosaicrec.engine.pipeline import STAGE_NAMES, Recommender, RecommenderConfig
from mosaicrec.engine.profile_cache import ProfileCache
from mosaicrec.engine.recommendations import Recommendation, Recommendations
from mosaicrec.engine.search import Searcher, SearchRequest
from mosaicrec.engine.stages import (
    BlendStageConfig,
    Boost,
    CandidateConfig,
    ColdStartConfig,
    HistoryConfig,
    RankConfig,
    RerankConfig,
    ScoreConfig,
    SourceLimits,
    mmr_select,
)
from mosaicrec.engine.user_model import (
    INTERACTION_TYPES,
    FusionUserModel,
    Interaction,
    InteractionType,
    Interest,
    UserModel,
    UserModelConfig,
    UserProfile,
)

__all__ = [
    "INTERACTION_TYPES",
    "STAGE_NAMES",
    "BlendStageConfig",
    "Boost",
    "Candidate",
    "CandidateConfig",
    "ColdStartConfig",
    "Contribution",
    "EventStore",
    "Explanation",
    "FusionUserModel",
    "HistoryConfig",
    "Interaction",
    "InteractionType",
    "Interest",
    "ProfileCache",
    "RankConfig",
    "RecContext",
    "Recommendation",
    "Recommendations",
    "Recommender",
    "RecommenderConfig",
    "RerankConfig",
    "SQLiteEventStore",
    "ScoreConfig",
    "SearchRequest",
    "Searcher",
    "SourceLimits",
    "Stage",
    "UserModel",
    "UserModelConfig",
    "UserProfile",
    "cross_catalogue_recommend",
    "explain_item",
    "mmr_select",
]
