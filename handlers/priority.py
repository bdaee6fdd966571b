"""Re-score every open order on its current history facts and flag the rules' top `top_fraction`.

Run nightly by the scheduler's leader and by `orderhub priority refresh`. Scores come from the same `evaluate` that
intake uses, so an order refreshed on unchanged facts keeps its intake score; only priority and flag are written.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from engine.order import Order
from engine.rules import RuleSet, evaluate, flag_top
from engine.rules.facts import Facts

log = logging.getLogger("orderhub.priority")


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


async def refresh_with_retry(store: PriorityStore, rules: Callable[[], RuleSet], now: Callable[[], datetime],
                             sleep: Callable[[float], Awaitable[object]], *, attempts: int = 6,
                             backoff_s: float = 2.0) -> RefreshResult:
    """The nightly pass once a day: a database away for a few seconds at 00:00 must not cost the night's refresh,
    so a failed pass is retried (2, 4, 6 … s apart, about half a minute in all) before the error reaches the log."""
    for attempt in range(1, attempts + 1):
        try:
            return await refresh_priorities(store, rules(), now())
        except Exception:
            if attempt == attempts:
                raise
            log.warning("priority refresh failed (attempt %d of %d); retrying", attempt, attempts, exc_info=True)
            await sleep(backoff_s * attempt)
    raise AssertionError("unreachable")
