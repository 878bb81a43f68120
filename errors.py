"""One error root for mosaicrec, with a few precise subclasses.

Every error a caller can act on derives from :class:`MosaicError`. Messages say what went wrong,
which item or model it concerns, and what to do about it. Transport codes (HTTP, gRPC) are
mapped from these classes only in ``serving/``.
"""

from __future__ import annotations

__all__ = [
    "MosaicError",
    "ConfigError",
    "ModelNotAvailableError",
    "MissingDependencyError",
    "InputError",
    "EncodeError",
    "MediaDecodeError",
    "CatalogueError",
    "SchemaMismatchError",
    "ModelMismatchError",
    "StoreError",
    "UnknownItemError",
    "UnknownUserError",
    "RequestError",
    "PayloadTooLargeError",
    "AuthError",
    "UnauthenticatedError",
    "PermissionDeniedError",
    "NotFoundError",
    "NotReadyError",
]


class MosaicError(Exception):
    """Root of every error mosaicrec raises on purpose."""


class ConfigError(MosaicError, ValueError):
    """A configuration value is invalid or names something that does not exist."""


class ModelNotAvailableError(MosaicError, RuntimeError):
    """Model weights could not be loaded (not cached, no network, wrong path)."""


class MissingDependencyError(MosaicError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class InputError(MosaicError, ValueError):
    """Bad input for one item. ``item`` names the item (its id or its position in a batch)."""

    def __init__(self, message: str, *, item: object = None) -> None:
        self.item = item
        prefix = f"item {item!r}: " if item is not None else ""
        super().__init__(prefix + message)
        self.reason = message


class EncodeError(InputError):
    """An item could not be encoded (empty text, wrong type, ...)."""


class MediaDecodeError(InputError):
    """An image or audio file could not be read or decoded."""


class CatalogueError(MosaicError, ValueError):
    """A catalogue file or its column mapping is unusable as a whole."""


class StoreError(MosaicError, RuntimeError):
    """The vector store refused an operation or is in an unusable state."""


class SchemaMismatchError(StoreError):
    """A collection was opened with encoders or dimensions other than the ones it was built with."""


class ModelMismatchError(MosaicError, ValueError):
    """A trained model belongs to another collection or to a collection whose schema changed."""


class UnknownItemError(MosaicError, KeyError):
    """An item id is not in the collection."""

    def __init__(self, item: object, where: str = "the collection") -> None:
        self.item = item
        super().__init__(f"unknown item {item!r}: it is not in {where}")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class UnknownUserError(MosaicError, KeyError):
    """A user id has no recorded history where one is required."""

    def __init__(self, user: object) -> None:
        self.user = user
        super().__init__(f"unknown user {user!r}: no events are recorded for this user")

    def __str__(self) -> str:
        return str(self.args[0])


class RequestError(MosaicError, ValueError):
    """A request is malformed or out of bounds (n <= 0, too large, unknown field)."""


class PayloadTooLargeError(RequestError):
    """A request, batch or upload is over a configured limit."""


class NotFoundError(MosaicError, LookupError):
    """A collection (or another named resource) does not exist, or is not the caller's."""


class AuthError(MosaicError):
    """Root of the authentication and authorisation errors. Messages never contain keys."""


class UnauthenticatedError(AuthError):
    """No API key, or a key that matches no configured key."""


class PermissionDeniedError(AuthError):
    """A valid key without the scope an operation needs."""


class NotReadyError(MosaicError, RuntimeError):
    """The service cannot answer yet (models loading, index being built): retry later."""
