"""Evaluate a store :class:`Filter` against one payload in Python, with Qdrant's semantics
(used where items come from somewhere other than a filtered store query, e.g. popular items).

A ``has_vector`` condition never matches here (a payload cannot say which vectors an item
has): items proposed from memory are dropped by it. A condition on a field the payload lacks
does not match: ``must`` on a missing field drops the
item, ``must_not`` on a missing field keeps it. A list-valued field matches when any element does.
"""

from __future__ import annotations

from typing import Any

from mosaicrec.indexing.stores.base import Condition, Filter

__all__ = ["matches", "condition_matches"]


def condition_matches(cond: Condition, payload: dict[str, Any]) -> bool:
    if cond.field is None:  # has_vector: only the store can tell; payloads cannot
        return False
    if cond.field not in payload or payload[cond.field] is None:
        return False
    value = payload[cond.field]
    values = value if isinstance(value, list) else [value]
    for v in values:
        if cond.match is not None and v == cond.match:
            return True
        if cond.any is not None and v in cond.any:
            return True
        if cond.match is None and cond.any is None and _in_range(cond, v):
            return True
    return False


def _in_range(cond: Condition, v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    return ((cond.gte is None or v >= cond.gte) and (cond.gt is None or v > cond.gt)
            and (cond.lte is None or v <= cond.lte) and (cond.lt is None or v < cond.lt))


def matches(flt: Filter | None, payload: dict[str, Any]) -> bool:
    if flt is None:
        return True
    if not all(condition_matches(c, payload) for c in flt.must):
        return False
    if any(condition_matches(c, payload) for c in flt.must_not):
        return False
    return not flt.should or any(condition_matches(c, payload) for c in flt.should)
