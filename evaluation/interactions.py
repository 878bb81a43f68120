"""Reading interaction logs: MovieLens ``u.data`` or any CSV/TSV with user, item, rating or type,
and timestamp columns, into one frame with fixed column names.

The frame always has ``user_id``, ``item_id``, ``rating`` (float, NaN when the log has only
event types), ``timestamp`` and ``positive`` (bool). Positives are ``rating >= threshold`` for
rated logs, or event types in ``positive_types`` for typed logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from mosaicrec.errors import CatalogueError, ConfigError
from mosaicrec.evaluation._config import StrictConfig

__all__ = ["InteractionConfig", "load_interactions", "mark_positives", "COLUMNS"]

COLUMNS = ("user_id", "item_id", "rating", "timestamp", "positive")

# Common spellings of each column in public logs, first match wins.
_ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "userid", "user", "uid", "customer_id", "visitorid"),
    "item_id": ("item_id", "itemid", "item", "movie_id", "movieid", "iid", "product_id"),
    "rating": ("rating", "score", "stars", "value"),
    "event_type": ("event_type", "type", "event", "interaction", "action"),
    "timestamp": ("timestamp", "time", "ts", "datetime", "date"),
}


class InteractionConfig(StrictConfig):
    """How a log's rows become positives (and negatives, for models that use them)."""

    positive_threshold: float = Field(default=4.0, description="rating >= this is a positive")
    positive_types: list[str] | None = Field(
        default=None, description="event types that count as positives (typed logs; None = all "
        "types except negative_types)"
    )
    negative_types: list[str] = Field(default_factory=lambda: ["dislike", "skip"])


def _find(columns: Sequence[str], role: str) -> str | None:
    lowered = {c.lower().strip(): c for c in columns}
    for alias in _ALIASES[role]:
        if alias in lowered:
            return lowered[alias]
    return None


def _read_table(path: Path) -> pd.DataFrame:
    if path.name == "u.data":  # MovieLens 100K: tab-separated, no header
        return pd.read_csv(path, sep="\t", header=None,
                           names=["user_id", "item_id", "rating", "timestamp"])
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    return pd.read_csv(path, sep=sep)


def load_interactions(path: str | Path, config: InteractionConfig | None = None) -> pd.DataFrame:
    """Read a log into the standard frame; raise ``CatalogueError`` naming a missing column."""
    path = Path(path)
    if not path.is_file():
        raise CatalogueError(f"interaction log {str(path)!r} does not exist")
    raw = _read_table(path)
    found = {role: _find(list(raw.columns), role) for role in _ALIASES}
    for role in ("user_id", "item_id", "timestamp"):
        if found[role] is None:
            raise CatalogueError(
                f"interaction log {path.name}: no {role} column among {list(raw.columns)} "
                f"(accepted names: {', '.join(_ALIASES[role])})"
            )
    if found["rating"] is None and found["event_type"] is None:
        raise CatalogueError(
            f"interaction log {path.name}: needs a rating or an event type column; "
            f"columns are {list(raw.columns)}"
        )
    frame = pd.DataFrame({
        "user_id": raw[found["user_id"]].to_numpy(),
        "item_id": raw[found["item_id"]].to_numpy(),
    })
    ts = raw[found["timestamp"]]
    if not pd.api.types.is_numeric_dtype(ts):
        parsed = pd.to_datetime(ts, utc=True)
        ts = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    frame["timestamp"] = ts.to_numpy()
    frame["rating"] = (raw[found["rating"]].astype(float).to_numpy() if found["rating"]
                       else np.full(len(raw), np.nan))
    if found["rating"] is None:
        frame["event_type"] = raw[found["event_type"]].astype(str).to_numpy()
    return mark_positives(frame, config or InteractionConfig())


def mark_positives(frame: pd.DataFrame, config: InteractionConfig) -> pd.DataFrame:
    """Add the ``positive`` column (a copy); rated rows by threshold, typed rows by type."""
    if frame[["user_id", "item_id", "timestamp"]].isna().any().any():
        bad = int(np.flatnonzero(frame[["user_id", "item_id", "timestamp"]].isna().any(axis=1))[0])
        raise CatalogueError(f"interaction log row {bad} has an empty user, item or timestamp")
    out = frame.copy()
    if "event_type" in out and out["rating"].isna().all():
        types = out["event_type"].astype(str)
        if config.positive_types is not None:
            out["positive"] = types.isin(config.positive_types).to_numpy()
        else:
            out["positive"] = (~types.isin(config.negative_types)).to_numpy()
        # A stand-in rating so that rating-aware models see typed negatives as dislikes.
        out["rating"] = np.where(types.isin(config.negative_types), 1.0,
                                 np.where(out["positive"], 5.0, 3.0))
    else:
        if out["rating"].isna().any():
            raise ConfigError("a rated log has empty ratings; fill them or use event types")
        out["positive"] = (out["rating"] >= config.positive_threshold).to_numpy()
    return out.reset_index(drop=True)
