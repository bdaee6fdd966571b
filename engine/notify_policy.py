"""Should this stall alert go out? A pure function with the clock passed in, after Alertmanager's `needsUpdate`.

Alertmanager re-sends when the set of firing alerts changed or the repeat interval passed. An order stall has no
repeat interval: one alert per (order, stage, escalation level), ever. Escalation is what "changes the set"; a
snooze mutes the stall for a while, an acknowledgement mutes it for the rest of that stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Why(StrEnum):
    NEW = "new"
    ALREADY_SENT = "already_sent"
    SNOOZED = "snoozed"
    ACKNOWLEDGED = "acknowledged"


@dataclass(frozen=True, slots=True)
class AlertKey:
    order_id: int
    stage: str
    level: int

    @property
    def dedup_key(self) -> str:
        return f"stall:{self.order_id}:{self.stage}:{self.level}"


@dataclass(frozen=True, slots=True)
class NotifyDecision:
    send: bool
    why: Why


def needs_notify(
    key: AlertKey,
    *,
    already_sent: bool,
    now: datetime,
    snoozed_until: datetime | None = None,
    acked_stage: str | None = None,
) -> NotifyDecision:
    """Send only a key never sent before, for a stall nobody acknowledged or snoozed."""
    if already_sent:
        return NotifyDecision(False, Why.ALREADY_SENT)
    if acked_stage == key.stage:
        return NotifyDecision(False, Why.ACKNOWLEDGED)
    if snoozed_until is not None and now < snoozed_until:
        return NotifyDecision(False, Why.SNOOZED)
    return NotifyDecision(True, Why.NEW)


def levels_to_announce(due: list[int], sent: set[int]) -> list[int]:
    """The due levels a scan still owes: those above the highest level already sent, lowest first.

    A level at or below one already sent is covered by it (the alert that escalated past it went out), so a merged
    alert that carries only its highest level's key never makes a later scan re-send the lower ones."""
    floor = max(sent, default=-1)
    return [level for level in sorted(due) if level > floor]
