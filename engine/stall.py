"""Which orders are overdue at `now`, and which rung of the escalation ladder is due for each. Pure.

The ladder comes from the rules (`sla.escalation`: role + how long overdue); `DEFAULT_LADDER` is what the bundled
example rules say and is used when a rules file gives none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.order import Order
from engine.stages import END_STATES


@dataclass(frozen=True, slots=True)
class Rung:
    role: str  # owner | supervisor | region_head | admin | manager | finance | supply_chain
    after: timedelta  # how long past the deadline this rung is reached


DEFAULT_LADDER: tuple[Rung, ...] = (
    Rung("owner", timedelta(0)),
    Rung("supervisor", timedelta(hours=4)),
    Rung("region_head", timedelta(hours=8)),
)


@dataclass(frozen=True, slots=True)
class Stall:
    order_id: int
    stage: str
    overdue: timedelta
    level: int  # index into the ladder: the highest rung reached
    role: str
    # Every rung reached, lowest first, as (level, role): a scan that first sees an order late (a restart, a
    # deadline set in the past) owes the lower rungs their alert too, not only the highest one.
    due: tuple[tuple[int, str], ...] = ()


def level_due(overdue: timedelta, ladder: Sequence[Rung]) -> int | None:
    """The highest rung whose `after` has passed, or None before the first rung."""
    due = None
    for i, rung in enumerate(sorted(ladder, key=lambda r: r.after)):
        if overdue >= rung.after:
            due = i
    return due


def find_stalls(orders: Iterable[Order], now: datetime, ladder: Sequence[Rung] = DEFAULT_LADDER) -> list[Stall]:
    """Open orders past their stage deadline, most overdue first."""
    rungs = sorted(ladder, key=lambda r: r.after) or list(DEFAULT_LADDER)
    out: list[Stall] = []
    for order in orders:
        if order.stage in END_STATES or order.stage_deadline is None or now <= order.stage_deadline:
            continue
        overdue = now - order.stage_deadline
        level = level_due(overdue, rungs)
        if level is None:
            continue
        due = tuple((i, rungs[i].role) for i in range(level + 1))
        out.append(Stall(order.id, order.stage.value, overdue, level, rungs[level].role, due))
    out.sort(key=lambda s: s.overdue, reverse=True)
    return out


def ladder_from_rules(steps: Iterable[tuple[str, timedelta]]) -> tuple[Rung, ...]:
    """`RuleSet.escalation` ((role, after) pairs) as rungs; empty means the default ladder."""
    rungs = tuple(Rung(role, after) for role, after in steps)
    return rungs or DEFAULT_LADDER
