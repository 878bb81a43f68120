"""mosaicrec.engine: user model, events, recommendation pipeline, search and explanations."""

from mosaicrec.engine.events import EventStore, SQLiteEventStore
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
    "EventStore",
    "FusionUserModel",
    "Interaction",
    "InteractionType",
    "Interest",
    "ProfileCache",
    "SQLiteEventStore",
    "UserModel",
    "UserModelConfig",
    "UserProfile",
]
