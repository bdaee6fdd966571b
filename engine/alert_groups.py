"""Grouping of stall alerts for one recipient, with Alertmanager's meaning. Pure, time passed in.

- `group_by`: the labels (stage, base, region) whose equal values put alerts for one recipient in one group;
- `group_wait`: how long a new group waits for more alerts before its first card goes out (a burst is one card);
- `group_interval`: how long after a card before alerts that joined since are shown (an edit of that card);
- `repeat_interval`: how long after a card before it is posted again while its alerts are still open
  (None: never; every alert is still one message per order, stage and level, the repeat re-posts the group).
A group of one alert is sent as that alert's own card.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

GROUP_LABELS = ("stage", "base", "region")


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    group_by: tuple[str, ...] = GROUP_LABELS
    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta | None = None


@dataclass(frozen=True, slots=True)
class GroupState:
    first_at: datetime  # when the group's first alert arrived
    last_sent_at: datetime | None  # when its card last went out or was edited; None: not yet
    open: int  # alerts in the group still open (order still in that stage, not acknowledged)
    unseen: int  # of those, alerts not yet on the card


class Act(StrEnum):
    WAIT = "wait"
    SEND = "send"  # the first card
    UPDATE = "update"  # edit the card: alerts joined since
    REPEAT = "repeat"  # post the card again (repeat_interval)
    CLOSE = "close"  # nothing open any more: a later alert starts a new group


def group_key(recipient: str, labels: Mapping[str, str | None], policy: GroupPolicy) -> str:
    """`recipient|stage=…|base=…|region=…` over the policy's labels (a missing label is empty)."""
    return "|".join([recipient, *(f"{k}={labels.get(k) or ''}" for k in policy.group_by)])


def decide(state: GroupState, now: datetime, policy: GroupPolicy) -> Act:
    """What the group is owed at `now`."""
    if state.open == 0:
        return Act.CLOSE
    if state.last_sent_at is None:
        return Act.SEND if now >= state.first_at + policy.group_wait else Act.WAIT
    if state.unseen:
        return Act.UPDATE if now >= state.last_sent_at + policy.group_interval else Act.WAIT
    if policy.repeat_interval is not None and now >= state.last_sent_at + policy.repeat_interval:
        return Act.REPEAT
    return Act.WAIT
