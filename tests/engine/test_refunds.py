"""Refunds, pure: the matrix with tracking facts, the first state, reading a waybill, judging the return, KPI."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from engine.refunds import (
    ProofVerdict,
    RefundState,
    RefundTiming,
    RefundTransitionError,
    ReturnStatus,
    TrackingFacts,
    WaybillMatch,
    check,
    find_waybill,
    first_step,
    full_refund,
    judge_proof,
    refund_kpi,
    refund_request,
    sniff_image,
)
from engine.rules import Facts
from engine.rules.evaluate import evaluate
from engine.stages import Stage
from tests.engine.rules_support import EXAMPLE, T0, order

D = timedelta(days=1)

# stage, shipped (days before the request), delivered (days before), amount → matrix row, action, finance needed
MATRIX = [
    (Stage.DESIGNING, None, None, "1200", "refund-not-shipped", "approve", False),
    (Stage.IN_PRODUCTION, None, None, "2500", "refund-not-shipped", "approve", True),
    (Stage.SHIPPED, 2, None, "1200", "refund-in-transit", "need_return_proof", False),
    (Stage.SHIPPED, None, None, "1200", "refund-in-transit", "need_return_proof", False),  # stage says shipped
    (Stage.SHIPPED, 5, 3, "800", "refund-within-7d", "need_return_proof", False),  # tracking: delivered
    (Stage.AWAITING_INSTALL, 10, 7, "800", "refund-within-7d", "need_return_proof", False),
    (Stage.AWAITING_INSTALL, 12, 8, "800", "refund-after-7d", "reject", False),
    (Stage.COMPLETED, 40, 30, "3000", "refund-after-7d", "reject", False),  # rejected: no finance request
]


@pytest.mark.parametrize("stage,shipped,delivered,amount,rule,action,finance", MATRIX)
def test_matrix_with_tracking_facts(stage, shipped, delivered, amount, rule, action, finance):
    now = T0 + 60 * D
    tracking = TrackingFacts(now - shipped * D if shipped is not None else None,
                             now - delivered * D if delivered is not None else None)
    o = order(stage=stage, amount="5000")
    req = refund_request(Decimal(amount), now, "customer:C1", stage, tracking, stage_entered_at=now - 9 * D)
    d = evaluate(o, Facts(refund=req), EXAMPLE, now)
    assert (d.refund.rule_id, d.refund.action) == (rule, action)
    assert d.refund.needs_approval is finance
    refunds = [a for a in d.approvals if a.kind == "refund"]
    assert [(a.role, a.requested_by) for a in refunds] == ([("finance", "customer:C1")] if finance else [])


def test_stage_fills_in_delivery_when_tracking_is_silent():
    now = T0 + 30 * D
    req = refund_request(Decimal("10"), now, "user:1", Stage.AWAITING_INSTALL, TrackingFacts(),
                         stage_entered_at=now - 9 * D)
    assert req.delivered_at == now - 9 * D and req.shipped_at == now - 9 * D
    assert refund_request(Decimal("10"), now, "u", Stage.DESIGNING, TrackingFacts()).shipped_at is None


@pytest.mark.parametrize("action,finance,state,auto", [
    ("approve", False, RefundState.APPROVED, True),
    ("approve", True, RefundState.WAITING_FINANCE, False),
    ("need_return_proof", False, RefundState.WAITING_PROOF, False),
    ("need_return_proof", True, RefundState.WAITING_PROOF, False),
    ("reject", False, RefundState.REJECTED, True),
    ("manual_review", False, RefundState.VERIFYING, False),
])
def test_first_step(action, finance, state, auto):
    step = first_step(action, finance)
    assert (step.state, step.automatic) == (state, auto)


def test_state_machine_refuses_skips():
    assert check(RefundState.WAITING_PROOF, RefundState.VERIFYING) is RefundState.VERIFYING
    with pytest.raises(RefundTransitionError, match="allowed"):
        check(RefundState.WAITING_PROOF, RefundState.APPROVED)
    with pytest.raises(RefundTransitionError):
        check(RefundState.REJECTED, RefundState.APPROVED)


@pytest.mark.parametrize("amount,skus,order_amount,order_skus,full", [
    ("3780", (), "3780", ("A",), True),
    ("1000", (), "3780", ("A",), False),
    ("1000", ("A", "B"), "3780", ("A", "B"), True),
    ("1000", ("A",), "3780", ("A", "B"), False),
])
def test_full_refund(amount, skus, order_amount, order_skus, full):
    assert full_refund(Decimal(amount), Decimal(order_amount), skus, order_skus) is full


@pytest.mark.parametrize("text,expected", [
    ("顺丰速运\n运单号 SF1234567890123\n寄件人", WaybillMatch("sf", "SF1234567890123")),
    ("SF 1234 5678 9012", WaybillMatch("sf", "SF123456789012")),
    ("SF12345678901234567", None),  # 17 digits: too long for SF, never cut out of a longer run
    ("sf123456789O12", WaybillMatch("sf", "SF123456789012")),  # O read for 0
    ("SF12345678901", None),  # 11 digits: too short
    ("德邦快递 DPK123456789012", WaybillMatch("deppon", "DPK123456789012")),
    ("电话 13800138000\n订单 TM20251111", None),
    ("", None),
    ("waybill: SF-1234-5678-9012-3", WaybillMatch("sf", "SF1234567890123")),
])
def test_find_waybill(text, expected):
    assert find_waybill(text) == expected


@pytest.mark.parametrize("match,status,verdict", [
    (None, None, ProofVerdict.UNREADABLE),
    (WaybillMatch("yto", "YT1234567890123"), ReturnStatus("in_transit", True), ProofVerdict.WRONG_CARRIER),
    (WaybillMatch("sf", "SF1"), None, ProofVerdict.NOT_MOVING),
    (WaybillMatch("sf", "SF1"), ReturnStatus(None), ProofVerdict.NOT_MOVING),
    (WaybillMatch("sf", "SF1"), ReturnStatus("exception", True), ProofVerdict.NOT_MOVING),
    (WaybillMatch("sf", "SF1"), ReturnStatus("in_transit", False), ProofVerdict.NOT_MOVING),
    (WaybillMatch("sf", "SF1"), ReturnStatus("picked_up", True), ProofVerdict.CONFIRMED),
    (WaybillMatch("sf", "SF1"), ReturnStatus("returning", None), ProofVerdict.CONFIRMED),
])
def test_judge_proof(match, status, verdict):
    assert judge_proof(match, ("sf", "deppon"), status) is verdict


@pytest.mark.parametrize("head,kind", [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"), (b"\x89PNG\r\n\x1a\n\x00", "png"), (b"%PDF-1.7", None),
    (b"GIF89a", None), (b"", None), (b"hello", None)])
def test_sniff_image(head, kind):
    assert sniff_image(head) == kind


def test_refund_kpi():
    ts = [RefundTiming(T0, T0 + timedelta(minutes=m), auto) for m, auto in
          [(1, True), (2, True), (3, False), (10, False), (30, False)]]
    ts.append(RefundTiming(T0, None, False))  # not decided: not counted
    k = refund_kpi(ts)
    assert (k.decided, k.p50_minutes, k.p90_minutes, k.automatic_share) == (5, 3.0, 30.0, 0.4)
    assert refund_kpi([]).p50_minutes is None
