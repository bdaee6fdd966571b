"""The compact stored decision (no trace) and its reproduction; the memos that keep evaluation cheap on a batch."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

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
    with_facts = evaluate(o, Facts(complaints_30d=3), EXAMPLE, T0).to_json(trace=False)
    assert with_facts["inputs"]["default_facts"] is False and reproduce(with_facts, o, EXAMPLE) is None
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
