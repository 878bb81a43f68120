"""The one place where mosaicrec's errors become HTTP statuses and gRPC codes.

The most specific class wins (the table is searched along the exception's MRO). Anything that
is not a :class:`~mosaicrec.errors.MosaicError` is a bug: 500 / INTERNAL with a generic message
(the details go to the log under the request id, never to the caller).
"""

from __future__ import annotations

import grpc

from mosaicrec import errors as e

__all__ = ["http_status", "grpc_code", "error_body"]

_TABLE: dict[type[BaseException], tuple[int, grpc.StatusCode]] = {
    e.UnauthenticatedError: (401, grpc.StatusCode.UNAUTHENTICATED),
    e.PermissionDeniedError: (403, grpc.StatusCode.PERMISSION_DENIED),
    e.PayloadTooLargeError: (413, grpc.StatusCode.RESOURCE_EXHAUSTED),
    e.NotFoundError: (404, grpc.StatusCode.NOT_FOUND),
    e.UnknownItemError: (404, grpc.StatusCode.NOT_FOUND),
    e.UnknownUserError: (404, grpc.StatusCode.NOT_FOUND),
    e.InputError: (400, grpc.StatusCode.INVALID_ARGUMENT),
    e.RequestError: (400, grpc.StatusCode.INVALID_ARGUMENT),
    e.CatalogueError: (400, grpc.StatusCode.INVALID_ARGUMENT),
    e.ConfigError: (400, grpc.StatusCode.INVALID_ARGUMENT),
    e.SchemaMismatchError: (409, grpc.StatusCode.FAILED_PRECONDITION),
    e.ModelMismatchError: (409, grpc.StatusCode.FAILED_PRECONDITION),
    e.NotReadyError: (503, grpc.StatusCode.UNAVAILABLE),
    e.ModelNotAvailableError: (503, grpc.StatusCode.UNAVAILABLE),
    e.MissingDependencyError: (501, grpc.StatusCode.UNIMPLEMENTED),
    e.StoreError: (503, grpc.StatusCode.UNAVAILABLE),
    e.MosaicError: (500, grpc.StatusCode.INTERNAL),
}


def _entry(err: BaseException) -> tuple[int, grpc.StatusCode]:
    for cls in type(err).__mro__:
        if cls in _TABLE:
            return _TABLE[cls]
    return 500, grpc.StatusCode.INTERNAL


def http_status(err: BaseException) -> int:
    return _entry(err)[0]


def grpc_code(err: BaseException) -> grpc.StatusCode:
    return _entry(err)[1]


def error_body(err: BaseException, request_id: str | None) -> dict[str, object]:
    """The JSON error body of every REST error (and the message of every gRPC error)."""
    if isinstance(err, e.MosaicError):
        kind, message = type(err).__name__, str(err)
    else:
        kind, message = "InternalError", "internal error; see the server log for this request"
    return {"error": {"type": kind, "message": message}, "request_id": request_id}
