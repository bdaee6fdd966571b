"""Re-score every open order on its current history facts and flag the rules' top `top_fraction`.

Run nightly by the scheduler's leader and by `orderhub priority refresh`. Scores come from the same `evaluate` that
intake uses, so an order refreshed on unchanged facts keeps its intake score; only priority and flag are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from engine.order import Order
from engine.rules import RuleSet, evaluate, flag_top
from engine.rules.facts import Facts


class PriorityStore(Protocol):
    async def open_orders(self, now: datetime) -> list[tuple[Order, Facts]]: ...

    async def save(self, scores: dict[int, int], flagged: set[int], now: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class RefreshResult:
    open_orders: int
    flagged: int
    changed: int
    scores: dict[int, int]
    flagged_ids: frozenset[int]


async def refresh_priorities(store: PriorityStore, rules: RuleSet, now: datetime) -> RefreshResult:
    pairs = await store.open_orders(now)
    scores = {o.id: evaluate(o, f, rules, now, trace=False).priority for o, f in pairs}
    flagged = flag_top(scores, rules.top_fraction)
    changed = await store.save(scores, flagged, now)
    return RefreshResult(len(scores), len(flagged), changed, scores, frozenset(flagged))
