"""The stall ladder of one order's stage as the rules say, and which of its steps are due. Pure, time passed in.

A stage with an SLA limit has a warning to the owner at `warn_at` of the limit (before the breach), the breach
(the owner in chat, a copy to the supervisor's mailbox), then each escalation rung after its delay: all measured
in the limit's time (business time by default) by the rules (`RuleSet.stage_ladder`). Acknowledging the stage ends
the ladder; a snooze holds it until the snooze ends (what fell due meanwhile comes then). Each step has one dedup
key per order, stage and level, so storing it under a unique key sends it at most once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

WARN_LEVEL = -1  # the warning before the breach; 0 is the breach, 1.. the escalation rungs


@dataclass(frozen=True, slots=True)
class Step:
    level: int
    role: str  # owner | supervisor | region_head | admin | manager | finance | supply_chain
    at: datetime

    @property
    def kind(self) -> str:
        return "warn" if self.level == WARN_LEVEL else "breach" if self.level == 0 else "escalation"

    def dedup_key(self, order_id: int, stage: str) -> str:
        """The existing alert key for levels 0.. (`stall:<order>:<stage>:<level>`), `...:warn` for the warning."""
        return f"stall:{order_id}:{stage}:{'warn' if self.level == WARN_LEVEL else self.level}"


def mail_key(order_id: int, stage: str) -> str:
    """The one e-mail copy of a breach to the supervisor, per order and stage."""
    return f"stallmail:{order_id}:{stage}"


def plan(deadline: datetime, warn_at: datetime | None, rungs: Sequence[tuple[str, datetime]]) -> tuple[Step, ...]:
    """The steps of a stage: the warning (when it comes before the deadline), then each rung (role, at) in order;
    the first rung is the breach. Without rungs the breach goes to the owner at the deadline."""
    steps: list[Step] = []
    if warn_at is not None and warn_at < deadline:
        steps.append(Step(WARN_LEVEL, "owner", warn_at))
    rungs = list(rungs) or [("owner", deadline)]
    steps += [Step(i, role, max(at, deadline)) for i, (role, at) in enumerate(rungs)]
    return tuple(steps)


def shifted(steps: Iterable[Step], by: timedelta) -> tuple[Step, ...]:
    """The same ladder moved by `by` (a stored deadline that differs from the rules' own, e.g. after a pause)."""
    return tuple(Step(s.level, s.role, s.at + by) for s in steps)


def due_steps(steps: Sequence[Step], now: datetime, *, acked: bool = False,
              snoozed_until: datetime | None = None) -> list[Step]:
    """The steps reached by `now`, lowest first; none once acknowledged or while snoozed.

    A warning whose breach is already due is dropped: the breach says more, and the owner gets one message."""
    if acked or (snoozed_until is not None and now < snoozed_until):
        return []
    reached = [s for s in steps if s.at <= now]
    if any(s.level >= 0 for s in reached):
        reached = [s for s in reached if s.level != WARN_LEVEL]
    return sorted(reached, key=lambda s: s.level)


def next_at(steps: Sequence[Step], now: datetime) -> datetime | None:
    """When the next step falls due (for a scan's look-ahead), or None when all are reached."""
    later = [s.at for s in steps if s.at > now]
    return min(later) if later else None
