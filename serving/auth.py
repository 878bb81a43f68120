"""API keys: hashed at rest, each bound to one tenant with read, write and admin scopes.

A key is 32 random bytes shown once when created (``mosaicrec keys create``); the keys file
holds only its SHA-256, compared in constant time. Scopes: ``read`` (recommend, search, item
and collection reads), ``write`` (events, items, forget), ``admin`` (train). Messages never
contain a key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mosaicrec.errors import ConfigError, PermissionDeniedError, UnauthenticatedError

__all__ = ["Scope", "ApiKey", "Principal", "KeyRing", "SCOPES"]

Scope = Literal["read", "write", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "write", "admin")
PREFIX = "mrk_"


class ApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    tenant: str
    scopes: list[Scope] = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's name, its tenant and scopes."""

    name: str
    tenant: str
    scopes: frozenset[str]

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes and "admin" not in self.scopes:
            raise PermissionDeniedError(
                f"key {self.name!r} lacks the {scope!r} scope this operation needs")


ADMIN = Principal("local", "default", frozenset(SCOPES))  # the CLI, and servers without auth


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The configured keys; ``authenticate`` maps a presented key to its principal."""

    def __init__(self, keys: list[ApiKey], path: Path | None = None) -> None:
        self.keys, self.path = keys, path

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        if not path.is_file():
            return cls([], path)
        try:
            data = json.loads(path.read_text())
            keys = [ApiKey.model_validate(k) for k in data.get("keys", [])]
        except (OSError, ValueError, ValidationError, AttributeError) as err:
            raise ConfigError(f"keys file {path} is unreadable: {type(err).__name__}") from None
        return cls(keys, path)

    def authenticate(self, presented: str | None) -> Principal:
        if not presented:
            raise UnauthenticatedError("an API key is required (header X-API-Key or "
                                       "Authorization: Bearer)")
        digest = _digest(presented)
        for key in self.keys:
            if hmac.compare_digest(key.sha256, digest):
                return Principal(key.name, key.tenant, frozenset(key.scopes))
        raise UnauthenticatedError("the API key is not valid")

    def create(self, name: str, tenant: str, scopes: list[Scope]) -> str:
        """Add a key and save the file; returns the key (shown once, never stored)."""
        if any(k.name == name for k in self.keys):
            raise ConfigError(f"a key named {name!r} exists already")
        key = PREFIX + secrets.token_urlsafe(32)
        self.keys.append(ApiKey(name=name, tenant=tenant, scopes=sorted(set(scopes)),
                                sha256=_digest(key)))
        self._save()
        return key

    def revoke(self, name: str) -> bool:
        before = len(self.keys)
        self.keys = [k for k in self.keys if k.name != name]
        if len(self.keys) != before:
            self._save()
        return len(self.keys) != before

    def _save(self) -> None:
        if self.path is None:
            raise ConfigError("this key ring has no file to save to")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": [k.model_dump() for k in self.keys]}, indent=2))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
