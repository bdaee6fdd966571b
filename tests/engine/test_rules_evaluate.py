"""evaluate(order, facts, rules, now) on the bundled example: one table per rule kind."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from engine.rules import (
    Facts,
    RefundRequest,
    RulesError,
    evaluate,
    flag_top,
    load_rules,
    work_order_no,
)
from engine.rules.explain import explain_lines
from engine.stages import Stage
from tests.engine.rules_support import EXAMPLE, EXAMPLE_TEXT, T0, edited, order

SH = ZoneInfo("Asia/Shanghai")


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


# --- approvals ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "city", "expected"),
    [
        ("3780.00", "杭州", []),
        ("5000.00", "杭州", []),  # at most 5000 is confirmed automatically
        ("5000.01", "杭州", [("order", 1, "manager", "华东")]),
        ("6800.00", "深圳", [("order", 1, "manager", "华南")]),
        ("6800.00", "重庆", [("order", 1, "manager", "西南")]),
        ("6800.00", "拉萨", [("order", 1, "admin", None)]),  # no region, no default_region: the admins, not anyone
        ("6800.00", "乌鲁木齐", [("order", 1, "admin", None)]),
    ],
)
def test_order_approvals(amount: str, city: str, expected: list[tuple[str, int, str, str | None]]) -> None:
    d = evaluate(order(amount=amount, city=city), Facts(), EXAMPLE, T0)
    assert [(a.kind, a.level, a.role, a.region) for a in d.approvals] == expected
    assert all(a.rule_id == "order-over-5000" and a.escalate_after == timedelta(hours=4) for a in d.approvals)
    assert d.needs_approval is bool(expected)


def test_a_city_in_no_region_takes_the_default_region() -> None:
    rules = load_rules(edited("regions:\n", "default_region: 华北\nregions:\n"))
    d = evaluate(order(amount="6800.00", city="乌鲁木齐"), Facts(), rules, T0)
    assert d.region == "华北"
    assert [(a.role, a.region) for a in d.approvals] == [("manager", "华北")]
    assert evaluate(order(amount="6800.00", city="杭州"), Facts(), rules, T0).region == "华东"  # a named city keeps its own
    lines = "\n".join(explain_lines(evaluate(order(city="乌鲁木齐"), Facts(), rules, T0).to_json(), "x", "en"))
    assert "default_region" in lines


def test_no_region_without_a_default_goes_to_the_admins_only() -> None:
    need = evaluate(order(amount="6800.00", city="乌鲁木齐"), Facts(), EXAMPLE, T0).approvals[0]
    assert (need.role, need.region) == ("admin", None)
    assert evaluate(order(city="乌鲁木齐"), Facts(), EXAMPLE, T0).region is None


def test_an_unknown_default_region_is_a_load_error() -> None:
    with pytest.raises(RulesError) as exc:
        load_rules(edited("regions:\n", "default_region: 西北\nregions:\n"))
    assert "default_region" in str(exc.value) and "unknown region '西北'" in str(exc.value)


def _refund(amount: str, *, shipped: timedelta | None = None, delivered: timedelta | None = None, by: str = "王女士") -> RefundRequest:
    """A refund requested at T0; shipped/delivered that long before the request."""
    return RefundRequest(
        Decimal(amount),
        T0,
        by,
        shipped_at=None if shipped is None else T0 - shipped,
        delivered_at=None if delivered is None else T0 - delivered,
    )


@pytest.mark.parametrize(
    ("refund", "action", "rule_id", "finance"),
    [
        (_refund("1500"), "approve", "refund-not-shipped", False),
        (_refund("2500"), "approve", "refund-not-shipped", True),  # over 2000: finance must approve as well
        (_refund("2000"), "approve", "refund-not-shipped", False),
        (_refund("800", shipped=timedelta(days=1)), "need_return_proof", "refund-in-transit", False),
        (_refund("2500", shipped=timedelta(days=5), delivered=timedelta(days=3)), "need_return_proof", "refund-within-7d", True),
        (_refund("800", shipped=timedelta(days=9), delivered=timedelta(days=7)), "need_return_proof", "refund-within-7d", False),
        (_refund("800", shipped=timedelta(days=9), delivered=timedelta(days=7, hours=1)), "reject", "refund-after-7d", False),
        # rejected: nothing for finance to approve even though the amount is over the threshold
        (_refund("9000", shipped=timedelta(days=30), delivered=timedelta(days=28)), "reject", "refund-after-7d", False),
        # shipped only after the request came in: it had not shipped when the customer asked
        (RefundRequest(Decimal(100), T0, "c", shipped_at=T0 + timedelta(hours=1)), "approve", "refund-not-shipped", False),
    ],
)
def test_refund_matrix_first_matching_row_wins(refund: RefundRequest, action: str, rule_id: str, finance: bool) -> None:
    d = evaluate(order(stage=Stage.SHIPPED), Facts(refund=refund), EXAMPLE, T0)
    assert d.refund is not None
    assert (d.refund.action, d.refund.rule_id, d.refund.needs_approval) == (action, rule_id, finance)
    refund_apps = [a for a in d.approvals if a.kind == "refund"]
    assert bool(refund_apps) is finance
    if finance:
        assert refund_apps[0].role == "finance" and refund_apps[0].region is None
        assert refund_apps[0].requested_by == refund.requested_by
    rows = [t for t in d.trace if t.section == "refunds"]
    assert [t.rule_id for t in rows] == ["refund-not-shipped", "refund-in-transit", "refund-within-7d", "refund-after-7d"]
    winner = next(i for i, t in enumerate(rows) if t.matched)
    assert rows[winner].rule_id == rule_id
    assert all(t.note.startswith("skipped") for t in rows[winner + 1:])
    assert d.refund.message("zh") and d.refund.message("en")


def test_no_refund_row_matching_means_manual_review() -> None:
    rules = load_rules("refunds:\n  matrix:\n    - {id: only-unshipped, when: 'not refund.shipped', outcome: approve}\n")
    d = evaluate(order(), Facts(refund=_refund("100", shipped=timedelta(days=2))), rules, T0)
    assert d.refund is not None and (d.refund.action, d.refund.rule_id) == ("manual_review", "refunds.default")


def test_no_refund_request_means_no_refund_decision() -> None:
    d = evaluate(order(amount="9000"), Facts(), EXAMPLE, T0)
    assert d.refund is None
    assert [a.kind for a in d.approvals] == ["order"]
    skipped = next(t for t in d.trace if t.rule_id == "refund-over-2000")
    assert not skipped.matched and "no refund request" in skipped.note


MULTI = """
regions:
  华东: {cities: [杭州]}
approvals:
  - id: big
    kind: order
    when: "order.amount > 50000"
    levels:
      - {role: manager, region: order, escalate_after: 2h}
      - {role: finance}
      - {role: admin, region: 华东}
  - id: vip-big
    kind: order
    when: {all: [{field: order.amount, op: gt, value: 50000}, {field: customer.tier, op: eq, value: vip}]}
    levels:
      - {role: manager, region: order}
"""


@pytest.mark.parametrize(
    ("amount", "tier", "expected"),
    [
        ("50000", "vip", []),
        ("60000", "normal", [(1, "manager", "华东", "big"), (2, "finance", None, "big"), (3, "admin", "华东", "big")]),
        # the second rule asks for the same approval as the first: it is not asked twice
        ("60000", "vip", [(1, "manager", "华东", "big"), (2, "finance", None, "big"), (3, "admin", "华东", "big")]),
    ],
)
def test_multi_level_approvals(amount: str, tier: str, expected: list[tuple[int, str, str | None, str]]) -> None:
    d = evaluate(order(amount=amount, tier=tier), Facts(), load_rules(MULTI), T0)
    assert [(a.level, a.role, a.region, a.rule_id) for a in d.approvals] == expected


# Who may decide a request is engine.approvals.may_decide (tests/engine/test_approvals.py).


# --- SLA ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "skus", "city", "entered", "rule_id", "deadline"),
    [
        (Stage.DESIGNING, ("CUR-A",), "杭州", sh(2025, 11, 12, 10), "sla-designing", sh(2025, 11, 18, 13)),
        (Stage.DESIGNING, ("CUR-A",), "杭州", sh(2025, 9, 27, 17, 30), "sla-designing", sh(2025, 10, 11, 11, 30)),
        (Stage.DESIGNING, ("CUR-A", "SOFA-B"), "杭州", sh(2025, 11, 12, 10), "sla-designing-sofa", sh(2025, 11, 21, 10)),
        (Stage.PENDING_CONFIRM, ("CUR-A",), "杭州", sh(2025, 11, 12, 16), "sla-confirm", sh(2025, 11, 13, 11)),
        (Stage.IN_PRODUCTION, ("CAB-A",), "北京", sh(2025, 11, 12, 10), "sla-production-cabinet", sh(2025, 12, 3, 16)),
        (Stage.SHIPPED, ("CUR-A",), "杭州", sh(2025, 11, 15, 20), "sla-shipped", sh(2025, 11, 20, 20)),  # wall clock
        (Stage.SHIPPED, ("CUR-A",), "成都", sh(2025, 11, 15, 20), "sla-shipped-southwest", sh(2025, 11, 22, 20)),
        (Stage.COMPLETED, ("CUR-A",), "杭州", sh(2025, 11, 12, 10), None, None),
        (Stage.CANCELLED, ("CUR-A",), "杭州", sh(2025, 11, 12, 10), None, None),
    ],
)
def test_stage_deadlines(stage: Stage, skus: tuple[str, ...], city: str, entered: datetime, rule_id: str | None, deadline: datetime | None) -> None:
    o = order(stage=stage, skus=skus, city=city, entered=entered)
    d = evaluate(o, Facts(), EXAMPLE, T0)
    assert (d.sla_rule_id, d.stage_deadline) == (rule_id, deadline)
    assert EXAMPLE.deadline_for(o, stage, entered) == deadline
    if deadline is not None:
        assert d.stage_deadline.tzinfo is UTC


def test_warning_and_escalation_ladder() -> None:
    d = evaluate(order(stage=Stage.DESIGNING, entered=sh(2025, 11, 12, 10)), Facts(), EXAMPLE, T0)
    assert d.stage_warn_at == sh(2025, 11, 17, 12, 24)  # 80 % of 48 h = 38 h 24 min of working time
    assert [(e.step, e.role, e.at) for e in d.escalations] == [
        (1, "owner", sh(2025, 11, 18, 13)),
        (2, "supervisor", sh(2025, 11, 18, 17)),
        (3, "region_head", sh(2025, 11, 19, 12)),  # +8 working hours crosses the night
    ]


def test_per_limit_warning_fraction() -> None:
    d = evaluate(order(stage=Stage.AWAITING_INSTALL, entered=sh(2025, 11, 12, 9)), Facts(), EXAMPLE, T0)
    assert d.sla_rule_id == "sla-install"
    assert d.stage_warn_at == sh(2025, 11, 15, 18)  # 50 % of 72 h = 36 h = four 9-hour days


def test_waiting_for_the_customer_pauses_the_clock() -> None:
    o = order(stage=Stage.DESIGNING)
    d = evaluate(o, Facts(waiting_for_customer=True), EXAMPLE, T0)
    assert d.stage_deadline is None and d.escalations == []
    assert any(t.rule_id == "sla.pause_when" and t.matched and t.outcome == "clock paused" for t in d.trace)
    assert EXAMPLE.deadline_for(o, Stage.DESIGNING, T0, Facts(waiting_for_customer=True)) is None
    assert EXAMPLE.deadline_for(o, Stage.DESIGNING, T0) is not None


def test_pause_stages() -> None:
    rules = load_rules(edited("  pause_stages: []", "  pause_stages: [awaiting_install]"))
    assert evaluate(order(stage=Stage.AWAITING_INSTALL), Facts(), rules, T0).stage_deadline is None
    assert rules.deadline_for(order(), Stage.AWAITING_INSTALL, T0) is None
    assert rules.deadline_for(order(), Stage.DESIGNING, T0) is not None


def test_sla_by_region_first_match() -> None:
    d = evaluate(order(stage=Stage.SHIPPED, city="成都"), Facts(), EXAMPLE, T0)
    rows = [t for t in d.trace if t.section == "sla"]
    assert [(t.rule_id, t.matched) for t in rows if t.rule_id != "sla.pause_when"] == [
        ("sla-shipped-southwest", True),
        ("sla-shipped", False),
    ]
    assert rows[-1].note.startswith("skipped")


# --- routing -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("city", "skus", "channel", "stock", "base", "rule_id"),
    [
        ("杭州", ("CUR-A",), "tmall", {}, "HZ", "routing.nearest"),
        ("深圳", ("CUR-A",), "tmall", {}, "FS", "routing.nearest"),
        ("北京", ("CUR-A",), "tmall", {}, "LF", "routing.nearest"),
        ("重庆", ("CUR-A",), "tmall", {}, "CD", "routing.nearest"),
        ("重庆", ("SOFA-A",), "tmall", {}, "FS", "routing.nearest"),  # CD makes no sofas
        ("上海", ("CUR-A", "CAB-B"), "tmall", {}, "LF", "routing.nearest"),  # one base must make both
        ("杭州", ("CUR-A",), "tmall", {"HZ:CUR-A": 0}, "FS", "routing.nearest"),  # no stock at HZ
        ("杭州", ("CUR-A",), "tmall", {"HZ:CUR-A": 5}, "HZ", "routing.nearest"),
        ("杭州", ("CUR-A",), "tmall", {"FS:CUR-A": 0}, "HZ", "routing.nearest"),
        ("深圳", ("CUR-A",), "showroom", {}, "HZ", "showroom-to-hz"),  # an override beats distance
        ("拉萨", ("CUR-A",), "tmall", {}, "HZ", "routing.first_capable"),  # no coordinates, no region
        ("杭州", ("X-GIFT",), "tmall", {}, "HZ", "routing.nearest"),  # unknown SKU -> default type accessory
    ],
)
def test_routing(city: str, skus: tuple[str, ...], channel: str, stock: dict[str, int], base: str, rule_id: str) -> None:
    d = evaluate(order(city=city, skus=skus, channel=channel), Facts(stock=stock), EXAMPLE, T0)
    assert d.route is not None
    assert (d.route.base, d.route.rule_id) == (base, rule_id)


def test_route_of_a_city_without_coordinates_uses_the_region_default() -> None:
    rules = load_rules(edited("cities: [杭州, 上海, 南京, 苏州, 宁波]", "cities: [杭州, 上海, 南京, 苏州, 宁波, 温州]"))
    d = evaluate(order(city="温州"), Facts(), rules, T0)
    assert d.route is not None and (d.route.base, d.route.rule_id) == ("HZ", "routing.region_default")


def test_no_capable_base_means_no_route_and_says_why() -> None:
    d = evaluate(order(city="杭州", skus=("SOFA-A", "BLD-B")), Facts(), EXAMPLE, T0)  # nobody makes both
    assert d.route is None
    t = next(t for t in d.trace if t.rule_id == "routing.nearest")
    assert not t.matched and "no base makes sofa, blind" in t.note


def test_product_type_from_item_attributes_wins_over_sku_prefix() -> None:
    d = evaluate(order(city="杭州", skus=("CUR-A",), attributes={"product_type": "sofa"}), Facts(), EXAMPLE, T0)
    assert d.route is not None and d.route.base == "FS"


def test_cancelled_orders_are_not_routed() -> None:
    assert evaluate(order(stage=Stage.CANCELLED), Facts(), EXAMPLE, T0).route is None


@pytest.mark.parametrize(
    ("base", "day", "seq", "expected"),
    [("HZ", date(2025, 11, 11), 1, "HZ-20251111-0001"), ("FS", date(2026, 1, 2), 123, "FS-20260102-0123"),
     ("LF", date(2025, 12, 31), 12345, "LF-20251231-12345")],
)
def test_work_order_numbers(base: str, day: date, seq: int, expected: str) -> None:
    assert work_order_no(base, day, seq) == expected


def test_work_order_sequence_starts_at_one() -> None:
    with pytest.raises(ValueError):
        work_order_no("HZ", date(2025, 11, 11), 0)


# --- priority ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "facts", "score", "fired"),
    [
        ({}, Facts(), 50, []),
        ({"tier": "vip"}, Facts(), 65, ["vip"]),
        ({}, Facts(complaints_30d=2), 40, ["complaints"]),
        ({}, Facts(complaints_30d=1), 50, []),
        ({"created": sh(2025, 11, 11, 23, 30)}, Facts(), 55, ["night-order"]),
        ({"created": sh(2025, 11, 11, 5, 59)}, Facts(), 55, ["night-order"]),
        ({"created": sh(2025, 11, 11, 6, 0)}, Facts(), 50, []),
        ({"notes": "客户要求加急"}, Facts(), 60, ["urgent-notes"]),
        ({"notes": "URGENT please"}, Facts(), 50, []),  # keywords are case-sensitive: write both forms if needed
        ({"amount": "10000.01"}, Facts(), 55, ["big-order"]),
        ({"amount": "10000.00"}, Facts(), 50, []),
        ({}, Facts(previous_orders=3), 55, ["repeat-customer"]),
        ({"tier": "vip", "notes": "尽快", "created": sh(2025, 11, 11, 0, 3)}, Facts(complaints_30d=3), 70,
         ["vip", "complaints", "night-order", "urgent-notes"]),
    ],
)
def test_priority(kw: dict, facts: Facts, score: int, fired: list[str]) -> None:
    kw.setdefault("created", sh(2025, 11, 11, 10))
    d = evaluate(order(**kw), facts, EXAMPLE, T0)
    assert d.priority == score
    assert [t.rule_id for t in d.trace if t.section == "priority" and t.matched] == fired


@pytest.mark.parametrize(
    ("scores", "fraction", "flagged"),
    [
        ({}, 0.1, set()),
        ({1: 50}, 0.1, {1}),
        ({i: i for i in range(1, 21)}, 0.1, {19, 20}),
        ({i: i for i in range(1, 11)}, 0.1, {10}),
        ({1: 80, 2: 80, 3: 50, 4: 40}, 0.25, {1}),  # exactly ceil(4 × 25 %): the tie goes to the older (lower) id
        ({5: 60, 3: 60, 9: 60, 1: 10}, 0.5, {3, 5}),
        ({i: 50 for i in range(1, 24)}, 0.1, {1, 2, 3}),  # 23 open orders, all equal → exactly 3
        ({i: i for i in range(1, 11)}, 0.3, {8, 9, 10}),  # 10 × 0.3 is 3.0000000000000004 in floats, still 3
        ({1: 80, 2: 70}, 2.0, {1, 2}),
        ({1: 80, 2: 70}, 0.0, set()),
    ],
)
def test_top_fraction_flagging(scores: dict[int, int], fraction: float, flagged: set[int]) -> None:
    assert flag_top(scores, fraction) == flagged


@pytest.mark.parametrize(("higher", "total", "pct"), [(0, 23, 5), (2, 23, 14), (22, 23, 100), (0, 1, 100),
                                                       (9, 100, 10), (0, 0, None), (50, 10, 100)])
def test_rank_percent(higher: int, total: int, pct: int | None) -> None:
    from engine.rules.priority import rank_percent
    assert rank_percent(higher, total) == pct


# --- trace, purity, serialisation, explanation ------------------------------------------------------------------


def test_trace_lists_every_rule_considered_with_the_facts_read() -> None:
    d = evaluate(order(amount="6800", tier="vip"), Facts(complaints_30d=1), EXAMPLE, T0)
    ids = [t.rule_id for t in d.trace]
    for rule in EXAMPLE.model.approvals:
        assert rule.id in ids
    for w in EXAMPLE.model.priority.weights:
        assert w.id in ids
    approval = next(t for t in d.trace if t.rule_id == "order-over-5000")
    assert approval.matched and approval.reads == {"order.amount": Decimal("6800.00")} and "manager@华东" in approval.outcome
    vip = next(t for t in d.trace if t.rule_id == "vip")
    assert vip.reads == {"customer.tier": "vip"}
    comp = next(t for t in d.trace if t.rule_id == "complaints")
    assert not comp.matched and comp.reads == {"facts.complaints_30d": 1}


def test_runtime_error_in_a_rule_is_reported_not_raised() -> None:
    rules = load_rules(
        "priority:\n  weights:\n    - {id: bad, when: \"order.custom_fields['install_date'] > 3\", points: 5}\n"
        "    - {id: good, when: 'order.amount > 1', points: 1}\n"
    )
    d = evaluate(order(custom_fields={"install_date": "2025-11-20"}), Facts(), rules, T0)
    assert d.priority == 1
    bad = next(t for t in d.trace if t.rule_id == "bad")
    assert not bad.matched and bad.error is not None and "TypeError" in bad.error


def test_evaluation_is_pure_and_repeatable() -> None:
    o = order(amount="6800", notes="加急")
    facts = Facts(complaints_30d=2, stock={"HZ:CUR-LINEN-280": 1})
    before = (o.stage, o.region, o.priority, o.stage_deadline, dict(facts.stock))
    a = evaluate(o, facts, EXAMPLE, T0).to_json()
    b = evaluate(o, facts, EXAMPLE, T0).to_json()
    assert a == b
    assert (o.stage, o.region, o.priority, o.stage_deadline, dict(facts.stock)) == before


def test_to_json_is_json_and_carries_the_rules_version() -> None:
    refund = _refund("2500", shipped=timedelta(days=5), delivered=timedelta(days=3))
    j = evaluate(order(amount="6800.00"), Facts(refund=refund), EXAMPLE, T0).to_json()
    text = json.dumps(j, ensure_ascii=False)
    assert j["rules_version"] == EXAMPLE.version
    assert j["approvals"][0] == {"kind": "order", "level": 1, "role": "manager", "region": "华东",
                                 "rule_id": "order-over-5000", "escalate_after_s": 14400, "requested_by": None}
    assert j["refund"]["action"] == "need_return_proof" and j["route"]["base"] == "HZ"
    assert '"order.amount": "6800.00"' in text  # money stays exact text, never a float


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("zh", ["订单 tmall:E000001 的规则判定", "order-over-5000 — 命中", "vip — 未命中", "需要审批: 第 1 级 · 华东经理 (order-over-5000)", "生产基地: HZ",
                "refund-over-2000 — 跳过: refund.amount > 2000  [未评估：没有退款申请]", "sla-designing — 命中: 无条件  → 时限 2025-11-18 13:00 CST",
                "facts.waiting_for_customer = false"]),
        ("en", ["Rules decisions for order tmall:E000001", "order-over-5000 — matched", "vip — not matched",
                "Approvals needed: level 1 · manager of 华东 (order-over-5000)", "Production base: HZ", "[skipped: no refund request]",
                "→ deadline 2025-11-18 13:00 CST"]),
    ],
)
def test_explanation(language: str, words: list[str]) -> None:
    d = evaluate(order(amount="6800.00"), Facts(), EXAMPLE, T0)
    text = "\n".join(explain_lines(d.to_json(), "tmall:E000001", language, SH))
    for token in ("L1 ", "manager@", "nearest capable base", "owner @", "supervisor @"):  # no internal tokens
        assert token not in text, token
    for w in words:
        assert w in text, text
    assert "(order.amount = 6800.00)" in text.replace("读取: ", "").replace("read: ", "")


def test_example_rules_text_is_the_bundled_one() -> None:
    assert "order-over-5000" in EXAMPLE_TEXT
