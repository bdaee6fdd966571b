"""Replaying orders against a proposed rules file: what changes, counted the way an operations lead asks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.rules import Facts, load_rules
from engine.rules.diff import render, replay, rule_changes
from tests.engine.rules_support import EXAMPLE, EXAMPLE_TEXT, T0, edited, order

# 14 days of orders: 6000-CNY ones in 杭州 (approval at 5000, not at 8000), 9000-CNY ones in 深圳 (approval either way)
CASES = [(order(id=i, amount="6000.00", city="杭州"), Facts()) for i in range(1, 8)] + [
    (order(id=100 + i, amount="9000.00", city="深圳", created=T0 - timedelta(days=i)), Facts()) for i in range(3)
]
THRESHOLD_8000 = load_rules(edited("when: {field: order.amount, op: gt, value: 5000}", "when: {field: order.amount, op: gt, value: 8000}"))


def test_raising_the_approval_threshold() -> None:
    rep = replay(CASES, EXAMPLE, THRESHOLD_8000, T0, days=14)
    assert (rep.orders, rep.approvals_old, rep.approvals_new) == (10, 10, 3)
    assert rep.approvals_per_week_delta == pytest.approx(-3.5)  # 7 fewer over two weeks
    assert rep.count("approval") == 7 and rep.count("route") == 0
    assert rep.rule_changes == ["~ approvals[order-over-5000].when.value: 5000 → 8000"]
    text = "\n".join(render(rep, EXAMPLE, THRESHOLD_8000, "en"))
    assert "Orders needing approval: 10 → 3 (-3.5 per week)" in text
    assert "0 orders would be routed to another base" in text
    zh = "\n".join(render(rep, EXAMPLE, THRESHOLD_8000, "zh"))
    assert "需要审批的订单：10 → 3（每周 -3.5）" in zh


def test_a_base_that_stops_making_curtains_moves_orders() -> None:
    new = load_rules(
        edited(
            "HZ: {name: {zh: 杭州基地, en: Hangzhou plant}, city: 杭州, coords: [30.27, 120.16], makes: [curtain, blind, accessory]}",
            "HZ: {name: {zh: 杭州基地, en: Hangzhou plant}, city: 杭州, coords: [30.27, 120.16], makes: [blind, accessory]}",
        )
    )
    rep = replay(CASES, EXAMPLE, new, T0, days=30)
    assert rep.count("route") == 7
    assert rep.route_moves() == {("HZ", "FS"): 7}
    text = "\n".join(render(rep, EXAMPLE, new, "en"))
    assert "7 orders would be routed to another base" in text and "HZ → FS: 7" in text


def test_moving_a_city_changes_region_and_approver() -> None:
    new = load_rules(
        edited("cities: [广州, 深圳]", "cities: [广州]", edited("cities: [杭州, 上海, 南京, 苏州, 宁波]", "cities: [杭州, 上海, 南京, 苏州, 宁波, 深圳]"))
    )
    rep = replay(CASES, EXAMPLE, new, T0, days=30)
    assert rep.count("region") == 3 and rep.count("approval") == 3
    change = next(c for c in rep.changes if c.what == "approval")
    assert (change.old, change.new) == ("order:manager@华南", "order:manager@华东")


def test_identical_rules_change_nothing() -> None:
    rep = replay(CASES, EXAMPLE, load_rules(EXAMPLE_TEXT + "\n# only a comment\n"), T0, days=30)
    assert rep.changes == [] and rep.rule_changes == []
    assert rule_changes(EXAMPLE, EXAMPLE) == []


def test_rule_changes_are_keyed_by_id_not_position() -> None:
    reordered = load_rules(
        edited(
            "    - {id: vip, when: {field: customer.tier, op: eq, value: vip}, points: 15}\n"
            "    - {id: complaints, when: {field: facts.complaints_30d, op: ge, value: 2}, points: -10}\n",
            "    - {id: complaints, when: {field: facts.complaints_30d, op: ge, value: 2}, points: -10}\n"
            "    - {id: vip, when: {field: customer.tier, op: eq, value: vip}, points: 20}\n",
        )
    )
    assert rule_changes(EXAMPLE, reordered) == ["~ priority.weights[vip].points: 15 → 20"]
