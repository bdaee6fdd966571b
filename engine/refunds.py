"""Refunds, pure: the state machine, the facts a refund is decided on, what a proof photo's text says, and what the
carrier's tracking of the return means. No I/O, no clock (`now` is passed in).

States: requested → waiting_proof → verifying → approved | rejected | waiting_finance → refunded.
The rules' `refunds.matrix` picks the first step (engine.rules.evaluate); this module says where each outcome leads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from engine.rules.facts import RefundRequest
from engine.stages import Stage

DELIVERED_STAGES = frozenset({Stage.AWAITING_INSTALL, Stage.COMPLETED})
SHIPPED_STAGES = frozenset({Stage.SHIPPED}) | DELIVERED_STAGES


class RefundState(StrEnum):
    REQUESTED = "requested"
    WAITING_PROOF = "waiting_proof"
    VERIFYING = "verifying"
    WAITING_FINANCE = "waiting_finance"
    APPROVED = "approved"
    REJECTED = "rejected"
    REFUNDED = "refunded"


S = RefundState
TRANSITIONS: dict[RefundState, frozenset[RefundState]] = {
    S.REQUESTED: frozenset({S.WAITING_PROOF, S.VERIFYING, S.WAITING_FINANCE, S.APPROVED, S.REJECTED}),
    S.WAITING_PROOF: frozenset({S.VERIFYING, S.REJECTED}),
    # verifying: a person decides (unreadable photo, wrong carrier, parcel not moving) or the carrier confirmed
    S.VERIFYING: frozenset({S.WAITING_PROOF, S.WAITING_FINANCE, S.APPROVED, S.REJECTED}),
    S.WAITING_FINANCE: frozenset({S.APPROVED, S.REJECTED}),
    S.APPROVED: frozenset({S.REFUNDED}),
    S.REJECTED: frozenset(),
    S.REFUNDED: frozenset(),
}
DECIDED = frozenset({S.APPROVED, S.REJECTED, S.REFUNDED})
OPEN = frozenset(RefundState) - DECIDED


class RefundTransitionError(ValueError):
    def __init__(self, current: RefundState, target: RefundState) -> None:
        self.current, self.target = current, target
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final)"
        super().__init__(f"a refund in {current.value} cannot go to {target.value}; allowed: {allowed}")


def check(current: RefundState, target: RefundState) -> RefundState:
    if target not in TRANSITIONS[current]:
        raise RefundTransitionError(current, target)
    return target


# --- facts ------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TrackingFacts:
    """What the order's tracking says: when it was picked up and when delivered (None: not (yet) known)."""

    shipped_at: datetime | None = None
    delivered_at: datetime | None = None


def refund_request(amount: Decimal, requested_at: datetime, requested_by: str, stage: Stage,
                   tracking: TrackingFacts, stage_entered_at: datetime | None = None) -> RefundRequest:
    """The facts the matrix reads. Tracking wins; the order's stage fills in what tracking does not know (an order
    moved to awaiting_install by hand was delivered when it entered that stage)."""
    shipped_at, delivered_at = tracking.shipped_at, tracking.delivered_at
    if stage is Stage.CANCELLED:
        return RefundRequest(amount, requested_at, requested_by, shipped_at, delivered_at)
    if stage in SHIPPED_STAGES and shipped_at is None:
        shipped_at = delivered_at or stage_entered_at or requested_at
    if stage in DELIVERED_STAGES and delivered_at is None:
        delivered_at = stage_entered_at if stage is Stage.AWAITING_INSTALL and stage_entered_at else requested_at
    if delivered_at is not None and shipped_at is None:
        shipped_at = delivered_at
    return RefundRequest(amount, requested_at, requested_by, shipped_at, delivered_at)


@dataclass(frozen=True, slots=True)
class Step:
    """Where a matrix outcome (or a finance need) takes a new refund."""

    state: RefundState
    automatic: bool  # decided without a person


def first_step(action: str, needs_finance: bool) -> Step:
    """The matrix's action → the refund's first state. A refund to approve that needs finance waits for it."""
    if action == "approve":
        return Step(S.WAITING_FINANCE, False) if needs_finance else Step(S.APPROVED, True)
    if action == "need_return_proof":
        return Step(S.WAITING_PROOF, False)
    if action == "reject":
        return Step(S.REJECTED, True)
    return Step(S.VERIFYING, False)  # manual_review: a person decides


def full_refund(amount: Decimal, order_amount: Decimal, item_skus: Sequence[str], order_skus: Sequence[str]) -> bool:
    """A refund of the whole order cancels it; a partial one removes its items (or just pays back the amount)."""
    if item_skus:
        return set(order_skus) <= set(item_skus)
    return amount >= order_amount


# --- reading a proof photo ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WaybillPattern:
    carrier: str
    regex: str


DEFAULT_PATTERNS: tuple[WaybillPattern, ...] = (
    WaybillPattern("sf", r"SF\d{12,15}"),
    WaybillPattern("deppon", r"DPK\d{12}"),
    WaybillPattern("jd", r"JD[A-Z0-9]{13,15}"),
    WaybillPattern("ems", r"E[A-Z]\d{9}CN"),
    WaybillPattern("zto", r"7[0-9]\d{12}"),
    WaybillPattern("yto", r"YT\d{13,15}"),
)


@dataclass(frozen=True, slots=True)
class WaybillMatch:
    carrier: str
    waybill: str


# What OCR confuses in a code that is letters then digits: O/0, I/1, S/5 inside the digits; spaces and dashes.
_DIGIT_FIX = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "|": "1", "Z": "2",
                            "B": "8", "G": "6"})
_SEPARATORS = re.compile(r"(?<=[A-Z0-9])[\s\-_.·]+(?=[0-9OIL|])")  # inside a number only


def _candidates(text: str) -> Iterable[str]:
    """Each line as read, and with separators removed (labels print `SF 1234 5678 9012`)."""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        up = line.upper()
        yield up
        yield _SEPARATORS.sub("", up)


def _normalise(token: str, prefix_len: int) -> str:
    return token[:prefix_len] + token[prefix_len:].translate(_DIGIT_FIX)


def find_waybill(text: str, patterns: Sequence[WaybillPattern] = DEFAULT_PATTERNS) -> WaybillMatch | None:
    """The first waybill number in OCR text, by the carriers' number patterns (first pattern that matches wins).

    Digits misread as letters after a carrier prefix are repaired (SF12O4… → SF1204…); a number is never taken
    from the middle of a longer run of digits.
    """
    compiled = [(p, re.compile(rf"(?<![A-Z0-9]){p.regex}(?![0-9])")) for p in patterns]
    lines = list(_candidates(text))
    for p, rx in compiled:
        prefix = re.match(r"[A-Z]*", p.regex).group(0)  # type: ignore[union-attr]
        for line in lines:
            m = rx.search(line)
            if m:
                return WaybillMatch(p.carrier, m.group(0))
            if prefix:  # a prefixed code with a confusable character inside its digits
                for raw in re.finditer(rf"(?<![A-Z0-9]){prefix}[0-9OoDQIl|ZBG]{{6,20}}", line):
                    fixed = _normalise(raw.group(0), len(prefix))
                    m = rx.fullmatch(fixed)
                    if m:
                        return WaybillMatch(p.carrier, fixed)
    return None


# --- the carrier's word on the return -----------------------------------------------------------------------------------

MOVING = frozenset({"picked_up", "in_transit", "out_for_delivery", "delivered", "returning", "returned"})


class ProofVerdict(StrEnum):
    CONFIRMED = "confirmed"  # the carrier shows the parcel moving towards the merchant: the refund proceeds
    UNREADABLE = "unreadable"  # no waybill number found in the photo
    WRONG_CARRIER = "wrong_carrier"  # a number of a carrier OrderHub cannot track / not the one expected
    NOT_MOVING = "not_moving"  # the carrier knows no scan, or the parcel goes elsewhere


@dataclass(frozen=True, slots=True)
class ReturnStatus:
    """The carrier's neutral view of a return waybill: last status and whether it heads to the merchant."""

    status: str | None  # a neutral tracking status or None when the carrier knows nothing
    towards_merchant: bool | None = None  # None: the carrier does not say


def judge_proof(match: WaybillMatch | None, trackable: Iterable[str], status: ReturnStatus | None) -> ProofVerdict:
    """Whether the proof lets the refund proceed without a person."""
    if match is None:
        return ProofVerdict.UNREADABLE
    if match.carrier not in set(trackable):
        return ProofVerdict.WRONG_CARRIER
    if status is None or status.status not in MOVING or status.towards_merchant is False:
        return ProofVerdict.NOT_MOVING
    return ProofVerdict.CONFIRMED


# --- proof files ------------------------------------------------------------------------------------------------------

MAX_PROOF_BYTES = 10 * 1024 * 1024


def sniff_image(head: bytes) -> str | None:
    """`jpeg` or `png` by the file's first bytes (never by its name), else None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    return None


# --- KPI: refund handling time ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RefundTiming:
    requested_at: datetime
    decided_at: datetime | None
    automatic: bool


@dataclass(frozen=True, slots=True)
class RefundKpi:
    decided: int
    p50_minutes: float | None
    p90_minutes: float | None
    automatic_share: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return {"refunds_decided": self.decided, "refund_handling_p50_minutes": self.p50_minutes,
                "refund_handling_p90_minutes": self.p90_minutes, "refund_automatic_share": self.automatic_share}


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q of the values at or below it."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def refund_kpi(timings: Iterable[RefundTiming]) -> RefundKpi:
    """Request → decision, p50/p90 in minutes, and the share decided automatically (None when nothing decided)."""
    decided = [t for t in timings if t.decided_at is not None]
    if not decided:
        return RefundKpi(0, None, None, None)
    minutes = sorted((t.decided_at - t.requested_at).total_seconds() / 60 for t in decided)  # type: ignore[operator]
    auto = sum(1 for t in decided if t.automatic)
    return RefundKpi(len(decided), round(_percentile(minutes, 0.5), 2), round(_percentile(minutes, 0.9), 2),
                     round(auto / len(decided), 4))
