"""REST adapter (FastAPI) over :class:`~mosaicrec.serving.service.RecommendationService`."""

from mosaicrec.serving.rest.app import create_app

__all__ = ["create_app"]
