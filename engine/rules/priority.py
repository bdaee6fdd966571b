"""The top slice of open orders by priority score is flagged; a set function because it compares orders."""

from __future__ import annotations

import math
from collections.abc import Mapping


def flag_top(scores: Mapping[int, int], fraction: float) -> set[int]:
    """Ids of the top `fraction` of orders by score (at least one when any exist); ties at the cut are included."""
    if not scores or fraction <= 0:
        return set()
    n = max(1, math.ceil(len(scores) * fraction))
    ranked = sorted(scores.values(), reverse=True)
    cut = ranked[n - 1]
    return {oid for oid, s in scores.items() if s >= cut}
