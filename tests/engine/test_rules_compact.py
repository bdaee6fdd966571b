"""The compact stored decision (no trace) and its reproduction; the memos that keep evaluation cheap on a batch."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.rules import Facts, evaluate, load_rules
from engine.rules.calendar import wall_clock_add_many
from engine.rules.decisions import _iso
from engine.rules.explain import explain_lines, reproduce
from engine.stages import Stage
from tests.engine.rules_support import EXAMPLE, T0, edited, order

SH = ZoneInfo("Asia/Shanghai")


def test_compact_form_is_the_summary_with_the_fired_rules_and_inputs() -> None:
    o = order(amount="6800.00", tier="vip", stage=Stage.PENDING_CONFIRM)
    d = evaluate(o, Facts(), EXAMPLE, T0)
    full, compact = d.to_json(), d.to_json(trace=False)
    assert "trace" not in compact and "trace" in full
    assert {k: v for k, v in full.items() if k != "trace"} == compact
    assert compact["fired"] == [t.rule_id for t in d.trace if t.matched]
    assert "order-over-5000" in compact["fired"] and "vip" in compact["fired"]
    assert compact["inputs"] == {"order_id": 1, "stage": "pending_confirm", "stage_entered_at": T0.isoformat(),
                                 "now": T0.isoformat(), "default_facts": True}
    assert "errors" not in compact


def test_compact_form_keeps_rule_errors() -> None:
    rules = load_rules("priority:\n  weights:\n    - {id: bad, when: \"order.custom_fields['install_date'] > 3\", "
                       "points: 5}\n")
    compact = evaluate(order(custom_fields={"install_date": "2025-11-20"}), Facts(), rules, T0).to_json(trace=False)
    assert "TypeError" in compact["errors"]["bad"] and "bad" not in compact["fired"]


def test_reproduce_gives_back_the_trace_of_a_stored_compact_decision() -> None:
    at_intake = order(id=0, amount="6800.00", stage=Stage.PENDING_CONFIRM, entered=T0)
    stored = evaluate(at_intake, Facts(), EXAMPLE, T0).to_json(trace=False)
    # as read back later: a real id, another stage, entered later, evaluated at another time
    later = replace(at_intake, id=42, stage=Stage.DESIGNING, stage_entered_at=T0 + timedelta(days=1))
    again = reproduce(stored, later, EXAMPLE)
    assert again is not None and again.to_json(trace=False) == stored
    text = "\n".join(explain_lines(again.to_json(), "tmall:E000000", "en", SH))
    assert "order-over-5000 — matched: order.amount > 5000" in text and "(read: order.amount = 6800.00)" in text


def test_reproduce_refuses_what_it_cannot_reproduce_faithfully() -> None:
    o = order(amount="6800.00", stage=Stage.PENDING_CONFIRM)
    stored = evaluate(o, Facts(), EXAMPLE, T0).to_json(trace=False)
    other = load_rules(edited("when: {field: order.amount, op: gt, value: 5000}",
                              "when: {field: order.amount, op: gt, value: 8000}"))
    assert reproduce(stored, o, other) is None  # another rules version
    changed = order(amount="3000.00", stage=Stage.PENDING_CONFIRM)
    assert reproduce(stored, changed, EXAMPLE) is None  # the data no longer gives the stored result
    # facts beyond the history counts intake records are not stored: not reproducible
    with_facts = evaluate(o, Facts(complaints_30d=3, waiting_for_customer=True), EXAMPLE, T0).to_json(trace=False)
    assert with_facts["inputs"]["default_facts"] is False and "history" not in with_facts["inputs"]
    assert reproduce(with_facts, o, EXAMPLE) is None
    # the history counts intake looked up are recorded, so such a decision is reproduced with them (issue 8.2)
    with_history = evaluate(o, Facts(complaints_30d=3, previous_orders=4), EXAMPLE, T0).to_json(trace=False)
    assert with_history["inputs"]["history"] == {"complaints_30d": 3, "previous_orders": 4, "exception_notes_30d": 0}
    again = reproduce(with_history, o, EXAMPLE)
    assert again is not None and again.to_json(trace=False) == with_history
    assert reproduce({k: v for k, v in stored.items() if k != "inputs"}, o, EXAMPLE) is None  # stored before inputs


def test_sla_times_are_memoised_per_limit_and_start_and_returned_as_copies() -> None:
    lim = EXAMPLE.sla_limits[Stage.DESIGNING][0]
    add = EXAMPLE.calendar.add_many if lim.business_time else wall_clock_add_many
    first = EXAMPLE.add_times(lim, T0, lim.offsets)
    assert first == add(T0, lim.offsets)
    first.clear()  # a caller's list is its own
    assert EXAMPLE.add_times(lim, T0, lim.offsets) == add(T0, lim.offsets)
    later = EXAMPLE.add_times(lim, T0 + timedelta(hours=1), lim.offsets)
    assert later != EXAMPLE.add_times(lim, T0, lim.offsets)
    d1 = evaluate(order(stage=Stage.DESIGNING), Facts(), EXAMPLE, T0)
    d2 = evaluate(order(stage=Stage.DESIGNING, entered=T0 + timedelta(hours=1)), Facts(), EXAMPLE, T0)
    assert d1.stage_deadline is not None and d2.stage_deadline is not None and d1.stage_deadline < d2.stage_deadline
    assert EXAMPLE.deadline_for(order(), Stage.DESIGNING, T0) == d1.stage_deadline


def test_iso_memo_tells_zones_and_folds_apart() -> None:
    utc = datetime(2025, 1, 1, 0, tzinfo=UTC)
    plus8 = datetime(2025, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    assert utc == plus8 and (_iso(utc), _iso(plus8)) == ("2025-01-01T00:00:00+00:00", "2025-01-01T08:00:00+08:00")
    ny = ZoneInfo("America/New_York")
    first = datetime(2025, 11, 2, 1, 30, tzinfo=ny)
    assert _iso(first) == "2025-11-02T01:30:00-04:00"
    assert _iso(first.replace(fold=1)) == "2025-11-02T01:30:00-05:00"


def _lean_cases() -> list[tuple[object, Facts, object]]:
    from decimal import Decimal

    from engine.rules import RefundRequest

    bad = load_rules(
        "priority:\n  weights:\n    - {id: bad, when: \"order.custom_fields['install_date'] > 3\", points: 5}\n"
        "    - {id: good, when: 'order.amount > 1', points: 1}\n"
        "approvals:\n  - {id: bad-approval, kind: order, when: \"order.custom_fields['install_date'] > 3\", "
        "levels: [{role: finance}]}\n"
    )
    refund = RefundRequest(Decimal(2500), T0, "c", shipped_at=T0 - timedelta(days=5),
                           delivered_at=T0 - timedelta(days=3))
    late = RefundRequest(Decimal(9000), T0, "c", shipped_at=T0 - timedelta(days=30),
                         delivered_at=T0 - timedelta(days=28))
    return [
        (order(amount="6800.00", tier="vip", stage=Stage.PENDING_CONFIRM), Facts(), EXAMPLE),
        (order(amount="120.00", city="拉萨", stage=Stage.PENDING_CONFIRM), Facts(), EXAMPLE),  # no region
        (order(city="深圳", channel="showroom"), Facts(), EXAMPLE),  # a routing override
        (order(city="杭州", skus=("CUR-A",)), Facts(stock={"HZ:CUR-A": 0}), EXAMPLE),  # stock excludes a base
        (order(skus=("SOFA-A", "CUR-A"), city="重庆"), Facts(complaints_30d=3), EXAMPLE),
        (order(stage=Stage.DESIGNING), Facts(waiting_for_customer=True), EXAMPLE),  # the clock paused
        (order(stage=Stage.SHIPPED), Facts(refund=refund), EXAMPLE),  # a refund with finance approval
        (order(stage=Stage.SHIPPED), Facts(refund=late), EXAMPLE),  # a rejected refund: its approval skipped
        (order(stage=Stage.CANCELLED), Facts(), EXAMPLE),
        (order(custom_fields={"install_date": "2025-11-20"}), Facts(), bad),  # rule errors
    ]


@pytest.mark.parametrize("case", range(10))
def test_evaluation_without_a_trace_gives_the_same_summary(case: int) -> None:
    o, facts, rules = _lean_cases()[case]
    full, lean = evaluate(o, facts, rules, T0), evaluate(o, facts, rules, T0, trace=False)
    assert lean.to_json(trace=False) == full.to_json(trace=False)
    # only what the summary reads is kept: the rules that matched or failed, in evaluation order
    assert [t.rule_id for t in lean.trace] == [t.rule_id for t in full.trace if t.matched or t.error is not None]
    assert len(lean.trace) < len(full.trace)
    with pytest.raises(ValueError, match="full trace"):
        lean.to_json()


@pytest.mark.parametrize(
    ("kw", "facts"),
    [
        ({"amount": "120.00"}, Facts()),
        ({"amount": "120.00", "city": "成都"}, Facts()),  # an SLA limit by region
        ({"amount": "120.00", "skus": ("SOFA-A",)}, Facts()),
        ({"amount": "120.00"}, Facts(waiting_for_customer=True)),  # the clock paused
    ],
)
def test_deadline_after_a_move_reuses_the_evaluations_context(kw: dict, facts: Facts) -> None:
    from engine.rules.evaluate import make_ctx

    o = order(stage=Stage.PENDING_CONFIRM, entered=T0, **kw)
    ctx = make_ctx(EXAMPLE, o, facts, T0)
    assert evaluate(o, facts, EXAMPLE, T0, ctx=ctx).to_json() == evaluate(o, facts, EXAMPLE, T0).to_json()
    later = T0 + timedelta(hours=3)
    for stage in (Stage.DESIGNING, Stage.AWAITING_INSTALL, Stage.PENDING_CONFIRM):
        o.stage = stage
        fresh = EXAMPLE.deadline_for(o, stage, later, facts)
        assert EXAMPLE.deadline_for(o, stage, later, facts, like=ctx) == fresh
        assert (ctx.o_stage, ctx.now) == ("pending_confirm", T0)  # given back as it was
    assert EXAMPLE.deadline_for(o, Stage.DESIGNING, T0, facts, like=ctx) is not None or facts.waiting_for_customer
    with pytest.raises(ValueError, match="same order"):
        EXAMPLE.deadline_for(order(), Stage.DESIGNING, T0, like=ctx)


def test_deadline_with_a_reused_context_sees_the_new_stage_and_time() -> None:
    from engine.rules.evaluate import make_ctx

    rules = load_rules(edited("pause_when: \"facts.waiting_for_customer\"",
                              "pause_when: \"order.stage == 'designing' and order.stage_hours > 1\""))
    o = order(stage=Stage.PENDING_CONFIRM, entered=T0)
    ctx = make_ctx(rules, o, Facts(), T0)
    o.stage = Stage.DESIGNING
    for at in (T0, T0 + timedelta(hours=3)):  # paused only once in designing for over an hour
        fresh = rules.deadline_for(o, Stage.DESIGNING, at)
        assert rules.deadline_for(o, Stage.DESIGNING, at, like=ctx) == fresh
        assert (fresh is None) is (at > T0)


def test_sla_ladder_is_memoised_and_each_decision_gets_its_own_list() -> None:
    lim = EXAMPLE.sla_limits[Stage.DESIGNING][-1]
    start = T0 + timedelta(minutes=7)
    deadline, warn, ladder = EXAMPLE.sla_ladder(lim, start)
    times = (EXAMPLE.calendar.add_many if lim.business_time else wall_clock_add_many)(start, lim.offsets)
    assert (deadline, warn, [e.at for e in ladder]) == (times[0], times[1], times[2:])
    assert [(e.step, e.role) for e in ladder] == [(i, r) for i, (r, _) in enumerate(EXAMPLE.escalation, start=1)]
    assert EXAMPLE.sla_ladder(lim, start)[2] is ladder  # built once
    d1 = evaluate(order(stage=Stage.DESIGNING, entered=start), Facts(), EXAMPLE, T0)
    d2 = evaluate(order(stage=Stage.DESIGNING, entered=start), Facts(), EXAMPLE, T0)
    assert d1.escalations == list(ladder) and d1.stage_deadline == deadline and d1.stage_warn_at == warn
    d1.escalations.clear()
    assert d2.escalations == list(ladder)
