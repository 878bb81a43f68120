"""A pydantic base for the evaluation's configs: unknown fields rejected, and invalid values
raised as :class:`~mosaicrec.errors.ConfigError` (pydantic would wrap them otherwise)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mosaicrec.errors import ConfigError

__all__ = ["StrictConfig"]


class StrictConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"invalid {type(self).__name__}: {problems}") from None
