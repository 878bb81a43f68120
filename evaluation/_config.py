"""The evaluation's configs share mosaicrec's strict base: unknown fields rejected, invalid
values raised as :class:`~mosaicrec.errors.ConfigError`."""

from mosaicrec.config import StrictModel as StrictConfig

__all__ = ["StrictConfig"]
