"""gRPC adapter: ``mosaicrec.proto`` (package ``mosaicrec.v1``), its checked-in stubs
(regenerate with ``python -m mosaicrec.serving.grpc.generate``) and the ``grpc.aio`` server.

Nothing is imported with the package, so regenerating works even when the stubs are stale.
"""

from typing import Any

__all__ = ["SERVICE_NAME", "create_grpc_server"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mosaicrec.serving.grpc import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
