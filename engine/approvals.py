"""The approval state machine, pure: who may decide, what a decision does, when a request escalates.

The repository applies a `Decided` outcome as a compare-and-set (`UPDATE approvals ... WHERE id=? AND status=
'pending'`), so when two people press at once the database, not this module, picks the single winner.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from engine.stages import Stage

ESCALATION_ROLE = "admin"  # who an unanswered request escalates to, and who may then decide it


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class Kind(StrEnum):
    """What an approval is about; its outcome on the order depends on it (see `OUTCOMES`)."""

    ORDER = "order"  # confirmation of a large order in pending_confirm
    REFUND = "refund"  # a refund over a threshold; the refund flow acts on the outcome, never the order's stage


@dataclass(frozen=True, slots=True)
class KindOutcome:
    """What a decision of one kind does to its order.

    on_approved:   the stage the order moves to once every level of this kind approved (None: no move).
    on_rejected:   the stage a rejection moves the order to (None: no move).
    reject_closes: a rejection supersedes the order's other pending requests of the same kind.
    binds_order_version: a change of the order voids the request. A refund request is bound to its refund instead
                   (its `order_version` is `refund:<id>`), so two refunds of one order are two requests.
    carries_on:    the decision is acted on outside the order (a refund approval's refund), so deciding one needs
                   that kind's follow-up wired in (handlers.approvals.Deciders.follow_ups).
    """

    on_approved: Stage | None
    on_rejected: Stage | None
    reject_closes: bool
    binds_order_version: bool = True
    carries_on: bool = False


OUTCOMES: dict[Kind, KindOutcome] = {
    Kind.ORDER: KindOutcome(on_approved=Stage.DESIGNING, on_rejected=Stage.CANCELLED, reject_closes=True),
    Kind.REFUND: KindOutcome(on_approved=None, on_rejected=None, reject_closes=False, binds_order_version=False,
                             carries_on=True),
}
NO_OUTCOME = KindOutcome(on_approved=None, on_rejected=None, reject_closes=False)  # an unknown kind moves nothing


def outcome_of(kind: str) -> KindOutcome:
    """The one place a kind maps to its outcome."""
    try:
        return OUTCOMES[Kind(kind)]
    except ValueError:
        return NO_OUTCOME


def gates_confirmation(kind: str) -> bool:
    """A pending request of this kind keeps its order in pending_confirm until it is decided."""
    return outcome_of(kind).on_approved is Stage.DESIGNING


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


class Refusal(StrEnum):
    """Why a press changes nothing; each maps to a toast in engine.text."""

    NOT_PERMITTED = "not_permitted"  # wrong role or region, or not a linked user
    OWN_REQUEST = "own_request"  # four eyes: the requester never approves their own request
    ALREADY_DECIDED = "already_decided"
    SUPERSEDED = "superseded"  # the order changed after the request
    REASON_REQUIRED = "reason_required"
    LEVEL_PENDING = "level_pending"  # an earlier level of the same request is not approved yet
    NOT_FOUND = "not_found"


@dataclass(frozen=True, slots=True)
class Approval:
    id: int
    order_id: int
    kind: str
    level: int
    required_role: str
    region: str | None
    amount: Decimal
    order_version: str
    status: Status
    requested_by: str
    requested_at: datetime
    escalate_at: datetime | None = None
    escalation_level: int = 0
    rule_id: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Actor:
    """A linked person pressing a button. `key` is how requests name their requester (`user:<id>`)."""

    user_id: int
    name: str
    role: str
    regions: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"user:{self.user_id}"


@dataclass(frozen=True, slots=True)
class Decided:
    """A decision to store; valid only if the row is still `pending` (the compare-and-set the repo performs)."""

    approval: Approval  # the new state
    expected_status: Status = Status.PENDING


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Refusal


Outcome = Decided | Refused


REGIONAL_ROLES = frozenset({"manager"})  # roles held per region; the others act company-wide


def may_decide(approval: Approval, actor: Actor) -> bool:
    """Role and region must match; after escalation the escalation role may decide as well. A request for a
    regional role that names no region (an order from a city in no region, stored before intake sent those to
    admins) is never "any region's": only the escalation role decides it."""
    if approval.escalation_level > 0 and actor.role == ESCALATION_ROLE:
        return True
    if approval.region is None and approval.required_role in REGIONAL_ROLES:
        return actor.role == ESCALATION_ROLE
    if actor.role != approval.required_role:
        return False
    return approval.region is None or approval.region in actor.regions


def is_own_request(approval: Approval, actor: Actor) -> bool:
    return approval.requested_by in (actor.key, actor.name)


def decide(
    approval: Approval,
    actor: Actor,
    verdict: Verdict,
    now: datetime,
    *,
    current_order_version: str,
    reason: str = "",
    earlier_levels_pending: bool = False,
) -> Outcome:
    """Check a press against the request; permission comes before state so outsiders learn nothing about it.

    `earlier_levels_pending`: a lower level of the same request (kind, order version) is still pending; levels are
    decided in order, so this one waits.
    """
    if not may_decide(approval, actor):
        return Refused(Refusal.NOT_PERMITTED)
    if is_own_request(approval, actor):
        return Refused(Refusal.OWN_REQUEST)
    if approval.status == Status.SUPERSEDED or (
        approval.status == Status.PENDING and approval.order_version != current_order_version
        and outcome_of(approval.kind).binds_order_version
    ):
        return Refused(Refusal.SUPERSEDED)
    if approval.status != Status.PENDING:
        return Refused(Refusal.ALREADY_DECIDED)
    if earlier_levels_pending:
        return Refused(Refusal.LEVEL_PENDING)
    if verdict == Verdict.REJECT and not reason.strip():
        return Refused(Refusal.REASON_REQUIRED)
    new_status = Status.APPROVED if verdict == Verdict.APPROVE else Status.REJECTED
    return Decided(
        replace(approval, status=new_status, decided_by=actor.name, decided_at=now, reason=reason.strip())
    )


def supersede(approval: Approval, now: datetime) -> Decided | None:
    """The order changed under a pending request: the request dies (a new one is issued for the new version)."""
    if approval.status != Status.PENDING:
        return None
    return Decided(replace(approval, status=Status.SUPERSEDED, decided_by="system", decided_at=now))


def same_request(a: Approval, b: Approval) -> bool:
    """Levels of one request: same order, kind and order version."""
    return a.order_id == b.order_id and a.kind == b.kind and a.order_version == b.order_version


def earlier_levels_pending(approval: Approval, siblings: list[Approval]) -> bool:
    return any(s.id != approval.id and s.status == Status.PENDING and same_request(s, approval)
               and s.level < approval.level for s in siblings)


def next_levels(approval: Approval, siblings: list[Approval]) -> list[Approval]:
    """The pending requests whose cards go out now that `approval` (one level) is approved."""
    waiting = [s for s in siblings if s.id != approval.id and s.status == Status.PENDING and same_request(s, approval)
               and s.level > approval.level]
    if not waiting:
        return []
    lowest = min(s.level for s in waiting)
    return [s for s in waiting if s.level == lowest]


def order_stage_after(approval: Approval, remaining_pending: int) -> Stage | None:
    """Where the order goes after this decision, by the approval's kind (`OUTCOMES`): for an order confirmation,
    rejection cancels and approval confirms once no level of the request is pending; a refund moves nothing."""
    outcome = outcome_of(approval.kind)
    if approval.status == Status.REJECTED:
        return outcome.on_rejected
    if approval.status == Status.APPROVED and remaining_pending == 0:
        return outcome.on_approved
    return None


def closed_by_rejection(approval: Approval, siblings: list[Approval]) -> list[Approval]:
    """Other pending requests a rejection ends: only when its kind says so, and only of that kind."""
    if approval.status != Status.REJECTED or not outcome_of(approval.kind).reject_closes:
        return []
    return [s for s in siblings if s.id != approval.id and s.status == Status.PENDING and s.kind == approval.kind]


def escalation_interval(approval: Approval) -> timedelta | None:
    """The rules set the first `escalate_at`; each later step waits as long again."""
    if approval.escalate_at is None:
        return None
    return max(approval.escalate_at - approval.requested_at, timedelta(minutes=1))


def escalate(approval: Approval, now: datetime, max_level: int = 2) -> Approval | None:
    """The next escalation step if one is due at `now`, else None."""
    if approval.status != Status.PENDING or approval.escalate_at is None or now < approval.escalate_at:
        return None
    if approval.escalation_level >= max_level:
        return None
    interval = escalation_interval(approval)
    level = approval.escalation_level + 1
    next_at = now + interval if interval is not None and level < max_level else None
    return replace(approval, escalation_level=level, escalate_at=next_at)
