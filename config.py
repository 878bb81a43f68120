"""One pydantic base for every typed config and request in mosaicrec.

Unknown fields are rejected, and invalid values surface as this package's own errors
(:class:`~mosaicrec.errors.ConfigError` for configs, :class:`~mosaicrec.errors.RequestError`
for requests) rather than pydantic's ``ValidationError``, so callers catch one error root.
Messages are built from the error list, never from the input, so secrets (API keys) stay out.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from mosaicrec.errors import ConfigError, MosaicError

__all__ = ["StrictModel", "describe_validation_error"]


def describe_validation_error(name: str, exc: ValidationError) -> str:
    prefix = f"invalid {name}: "
    problems = "; ".join(
        (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "")
        # a nested strict model already said which model it was
        + e["msg"].removeprefix("Value error, ").removeprefix(prefix)
        for e in exc.errors()
    )
    return prefix + problems


class StrictModel(BaseModel):
    """``extra="forbid"``; validation failures raise ``invalid_error`` with a readable message."""

    model_config = ConfigDict(extra="forbid")
    invalid_error: ClassVar[type[MosaicError]] = ConfigError

    def __init__(self, **data: Any) -> None:
        with _reraise(type(self)):
            super().__init__(**data)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:
        with _reraise(cls):
            return super().model_validate(obj, *args, **kwargs)

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any) -> Any:
        with _reraise(cls):
            return super().model_validate_json(json_data, *args, **kwargs)


@contextlib.contextmanager
def _reraise(model: type[StrictModel]) -> Iterator[None]:
    try:
        yield
    except ValidationError as exc:
        raise model.invalid_error(describe_validation_error(model.__name__, exc)) from None
