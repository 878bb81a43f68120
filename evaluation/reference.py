"""Published reference figures for the MovieLens 100K protocol, to compare mosaicrec with.

From ``docs/evaluation-reference.md`` (an independent implementation of the same protocol and
split): test NDCG@10 over 812 users, every setting chosen on validation. They are a bar to
clear, not results of this code; the report prints the distance to each.
"""

from __future__ import annotations

from typing import Any

__all__ = ["REFERENCE", "compare_with_reference"]

# name -> (overall NDCG@10, cold-item slice NDCG@10 or None, cold-user slice NDCG@10)
REFERENCE: dict[str, tuple[float, float | None, float]] = {
    "ALS (tuned)": (0.1107, None, 0.1385),
    "EASE + recency + popularity": (0.1332, None, 0.1545),
    "z(EASE + recency + pop) + 2 z(SASRec)": (0.1499, None, 0.1772),
    "ALS + ridge map from MiniLM text (new items)": (0.1107, 0.1401, 0.1385),
}


def compare_with_reference(row: Any) -> list[dict[str, Any]]:
    """The served row's differences to each reference figure it can be compared with."""
    ndcg = row.test["ndcg@10"]
    cold_users = row.slices.get("cold_users", {}).get("ndcg@10")
    cold_items = row.cold_items["ndcg@10"] if row.cold_items is not None else None
    out = []
    for name, (overall, cold_ref, cold_user_ref) in REFERENCE.items():
        entry: dict[str, Any] = {"reference": name, "ndcg@10": overall,
                                 "difference": ndcg - overall}
        text = f"vs reference '{name}' ({overall:.4f}): {ndcg - overall:+.4f}"
        if cold_users is not None:
            entry["cold_users_difference"] = cold_users - cold_user_ref
            text += f"; cold users {cold_users:.4f} vs {cold_user_ref:.4f}"
        if cold_ref is not None and cold_items is not None:
            entry["new_items_difference"] = cold_items - cold_ref
            text += f"; new items {cold_items:.4f} vs {cold_ref:.4f}"
        entry["summary"] = text + " (reference figures: docs/evaluation-reference.md)."
        out.append(entry)
    return out
