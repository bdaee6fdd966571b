"""The top slice of open orders by priority score is flagged; a set function because it compares orders."""

from __future__ import annotations

import math
from collections.abc import Mapping


def flag_top(scores: Mapping[int, int], fraction: float) -> set[int]:
    """Ids of exactly ceil(len × fraction) orders with the highest scores (at least one when any exist).

    Ties at the cut go to the lower id (the older order, which has waited longer), so the count never grows with
    ties and the same scores always flag the same orders.
    """
    if not scores or not fraction > 0:
        return set()
    n = min(len(scores), max(1, math.ceil(len(scores) * min(float(fraction), 1.0) - 1e-9)))
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return {oid for oid, _ in ranked[:n]}


def rank_percent(higher: int, total: int) -> int | None:
    """The "top N %" an order stands in: 100 × its rank (1 + orders scoring higher) / open orders, rounded up."""
    if total <= 0 or higher < 0:
        return None
    return max(1, min(100, math.ceil(100 * (min(higher, total - 1) + 1) / total)))
