"""The approval state machine as tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from engine.approvals import (
    Actor,
    Approval,
    Decided,
    Refusal,
    Refused,
    Status,
    Verdict,
    decide,
    escalate,
    order_stage_after,
    supersede,
)
from engine.stages import Stage

NOW = datetime(2025, 11, 11, 8, 0, tzinfo=UTC)
REQ = Approval(id=7, order_id=3, kind="order", level=1, required_role="manager", region="华东",
               amount=Decimal(8000), order_version="v1", status=Status.PENDING, requested_by="system",
               requested_at=NOW - timedelta(hours=1), escalate_at=NOW + timedelta(hours=3))
EAST = Actor(1, "east", "manager", ("华东",))
SOUTH = Actor(2, "south", "manager", ("华南",))
FIN = Actor(3, "fin", "finance", ("华东",))
ADMIN = Actor(4, "root", "admin", ())


@pytest.mark.parametrize(
    ("approval", "actor", "verdict", "reason", "version", "expected"),
    [
        (REQ, EAST, Verdict.APPROVE, "", "v1", Status.APPROVED),
        (REQ, EAST, Verdict.REJECT, "太贵", "v1", Status.REJECTED),
        (REQ, EAST, Verdict.REJECT, "  ", "v1", Refusal.REASON_REQUIRED),
        (REQ, SOUTH, Verdict.APPROVE, "", "v1", Refusal.NOT_PERMITTED),
        (REQ, FIN, Verdict.APPROVE, "", "v1", Refusal.NOT_PERMITTED),
        (REQ, ADMIN, Verdict.APPROVE, "", "v1", Refusal.NOT_PERMITTED),  # admins decide only after escalation
        (replace(REQ, escalation_level=1), ADMIN, Verdict.APPROVE, "", "v1", Status.APPROVED),
        (replace(REQ, requested_by="user:1"), EAST, Verdict.APPROVE, "", "v1", Refusal.OWN_REQUEST),
        (replace(REQ, requested_by="east"), EAST, Verdict.APPROVE, "", "v1", Refusal.OWN_REQUEST),
        (REQ, EAST, Verdict.APPROVE, "", "v2", Refusal.SUPERSEDED),
        (replace(REQ, status=Status.SUPERSEDED), EAST, Verdict.APPROVE, "", "v1", Refusal.SUPERSEDED),
        (replace(REQ, status=Status.APPROVED), EAST, Verdict.APPROVE, "", "v1", Refusal.ALREADY_DECIDED),
        (replace(REQ, status=Status.REJECTED), EAST, Verdict.REJECT, "x", "v1", Refusal.ALREADY_DECIDED),
        # a manager's request that names no region is no region's: only an admin decides it, never "any manager"
        (replace(REQ, region=None), SOUTH, Verdict.APPROVE, "", "v1", Refusal.NOT_PERMITTED),
        (replace(REQ, region=None), EAST, Verdict.APPROVE, "", "v1", Refusal.NOT_PERMITTED),
        (replace(REQ, region=None), ADMIN, Verdict.APPROVE, "", "v1", Status.APPROVED),
        # finance is not a regional role: a refund request with no region is finance's
        (replace(REQ, required_role="finance", kind="refund", region=None), FIN, Verdict.APPROVE, "", "v1",
         Status.APPROVED),
        # permission is checked before state: an outsider learns nothing about a decided request
        (replace(REQ, status=Status.APPROVED), SOUTH, Verdict.APPROVE, "", "v1", Refusal.NOT_PERMITTED),
    ],
)
def test_decide(approval: Approval, actor: Actor, verdict: Verdict, reason: str, version: str, expected: object) -> None:
    out = decide(approval, actor, verdict, NOW, current_order_version=version, reason=reason)
    if isinstance(expected, Status):
        assert isinstance(out, Decided)
        assert out.approval.status == expected and out.expected_status == Status.PENDING
        assert out.approval.decided_by == actor.name and out.approval.decided_at == NOW
        assert out.approval.reason == reason.strip()
    else:
        assert out == Refused(expected)


@pytest.mark.parametrize(
    ("status", "remaining", "stage"),
    [(Status.APPROVED, 0, Stage.DESIGNING), (Status.APPROVED, 1, None), (Status.REJECTED, 1, Stage.CANCELLED),
     (Status.SUPERSEDED, 0, None)],
)
def test_order_stage_after(status: Status, remaining: int, stage: Stage | None) -> None:
    assert order_stage_after(replace(REQ, status=status), remaining) == stage


def test_supersede_only_pending() -> None:
    out = supersede(REQ, NOW)
    assert out is not None and out.approval.status == Status.SUPERSEDED
    assert supersede(replace(REQ, status=Status.APPROVED), NOW) is None


@pytest.mark.parametrize(
    ("approval", "now", "level", "next_at"),
    [
        (REQ, NOW, None, None),  # not yet due
        (REQ, NOW + timedelta(hours=3), 1, NOW + timedelta(hours=7)),  # due: level 1, next after the same interval
        (replace(REQ, escalation_level=1, escalate_at=NOW), NOW, 2, None),  # last level: no further step
        (replace(REQ, escalation_level=2, escalate_at=NOW), NOW, None, None),
        (replace(REQ, escalate_at=None), NOW + timedelta(days=9), None, None),
        (replace(REQ, status=Status.APPROVED), NOW + timedelta(days=1), None, None),
    ],
)
def test_escalate(approval: Approval, now: datetime, level: int | None, next_at: datetime | None) -> None:
    out = escalate(approval, now)
    if level is None:
        assert out is None
    else:
        assert out is not None and (out.escalation_level, out.escalate_at) == (level, next_at)
