"""Service settings: one object, from environment variables, a config file and arguments.

Sources, strongest first: explicit arguments (the CLI), ``MOSAICREC_*`` environment variables
(nested with ``__``, e.g. ``MOSAICREC_LIMITS__MAX_N=200``), then the JSON or TOML file named by
``MOSAICREC_CONFIG``. Invalid settings raise :class:`~mosaicrec.errors.ConfigError` naming the
field; secrets (the Qdrant API key) never appear in messages or ``repr``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from mosaicrec.config import describe_validation_error
from mosaicrec.errors import ConfigError
from mosaicrec.indexing.stores import StoreConfig

__all__ = ["Limits", "Settings", "load_settings", "NAME"]

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # tenant and collection names


class Limits(BaseModel):
    """Bounds on what one request may ask (each refused with a clear 4xx, nothing stored)."""

    model_config = ConfigDict(extra="forbid")
    max_n: int = Field(200, ge=1, description="items per recommendation or search")
    max_batch: int = Field(1000, ge=1, description="events or items per write request")
    max_request_bytes: int = Field(2_000_000, ge=1024, description="body of one request")
    max_upload_bytes: int = Field(10_000_000, ge=1024, description="one uploaded medium")
    max_text_chars: int = Field(2000, ge=1, description="a text query or prompt")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOSAICREC_", env_nested_delimiter="__",
                                      extra="forbid")

    data_dir: Path = Field(Path("mosaicrec-data"), description="collections, events, models")
    backend: Literal["edge", "qdrant"] = "edge"
    qdrant_url: str | None = Field(None, description="Qdrant server for backend 'qdrant'")
    qdrant_api_key: SecretStr | None = None
    segment_points: int | None = Field(
        StoreConfig.model_fields["segment_points"].default, gt=0, description="backend 'edge': "
        "a bulk load builds a segment's search index every this many points, keeping memory "
        "flat (fewer, larger segments search faster; None: one build at the end)")
    profile: str = Field("default", description="encoders for collections created by upserts")
    device: str | None = Field(None, description="torch device (default: CUDA when present)")
    tenants: dict[str, list[str]] = Field(
        default_factory=lambda: {"default": ["items"]},
        description="tenant -> its collections; a key of one tenant sees only these")
    keys_file: Path | None = Field(None, description="hashed API keys (mosaicrec keys create)")
    result_cache_ttl_s: float = Field(600.0, gt=0, description="oldest cached list served "
                                      "(bounds popularity drift inside cached lists)")
    warm_users: int = Field(1000, ge=0, description="at start-up, before reporting ready, "
                            "compute and cache the default list (n = warm_n) of this many of "
                            "the most recently active users per collection (0: off)")
    warm_n: int = Field(10, ge=1)
    result_cache: int = Field(10_000, ge=0, description="served lists cached per collection "
                              "(invalidated by the user's events and catalogue changes; 0: off)")
    vector_cache_mb: float = Field(256.0, ge=0, description="item vectors kept in memory per "
                                   "collection (scoring, MMR and explanations read hundreds a "
                                   "request; cleared on catalogue changes; 0: off)")
    payload_cache_mb: float = Field(64.0, ge=0, description="item payloads kept in memory per "
                                    "collection (each list's items, the history items its "
                                    "explanations name; cleared on catalogue changes; 0: off)")
    auth: bool = Field(True, description="require API keys on the REST and gRPC endpoints")
    limits: Limits = Field(default_factory=Limits)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    grpc_port: int = Field(50051, ge=0, le=65535)
    log_level: str = "INFO"
    inference_threads: int = Field(1, ge=1, description="torch and BLAS threads per request: "
                                   "requests already run side by side, and more threads each "
                                   "only contend for the same cores")
    # the web page (serving/web)
    reports_dir: Path = Field(Path("benchmarks/results/evaluation"), description="where the "
                              "web page looks for the latest `mosaicrec evaluate` report")
    media_roots: list[Path] = Field(default_factory=list, description="folders the web page "
                                    "may serve items' media from, besides each collection's "
                                    "catalogue folder and upload folder")

    @field_validator("tenants")
    @classmethod
    def _names(cls, tenants: dict[str, list[str]]) -> dict[str, list[str]]:
        for tenant, collections in tenants.items():
            for name in (tenant, *collections):
                if not NAME.fullmatch(name):
                    raise ValueError(f"{name!r} is not a valid tenant or collection name "
                                     f"(letters, digits, '_' and '-', up to 64)")
            if not collections:
                raise ValueError(f"tenant {tenant!r} has no collection")
        return tenants

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("MOSAICREC_CONFIG")
        if path:
            source = TomlConfigSettingsSource if path.endswith(".toml") else \
                JsonConfigSettingsSource
            sources.append(source(settings_cls, path))
        return tuple(sources)

    @property
    def keys_path(self) -> Path:
        return self.keys_file or self.data_dir / "api-keys.json"

    def tenant_root(self, tenant: str) -> Path:
        """Where a tenant's collections, events and models live (``default``: data_dir)."""
        return self.data_dir if tenant == "default" else self.data_dir / "tenants" / tenant


def load_settings(**overrides: Any) -> Settings:
    """Settings from the sources above; ``overrides`` (not None) win."""
    path = os.environ.get("MOSAICREC_CONFIG")
    if path and not Path(path).is_file():
        raise ConfigError(f"MOSAICREC_CONFIG names {path}, which is not a file")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        raise ConfigError(describe_validation_error("settings", err)) from None
    except ValueError as err:  # an unreadable config file
        raise ConfigError(f"settings: {err}") from None
