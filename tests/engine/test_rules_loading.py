"""Loading and validating rules files: every broken file gets a precise, located, plain-words message."""

from __future__ import annotations

import json

import pytest

from engine.anomaly_library import TERMS
from engine.rules import RulesError, json_schema, load_rules, rules_hash
from tests.engine.rules_support import EXAMPLE, EXAMPLE_TEXT, edited, refused


def _pos(text: str, marker: str, offset: int = 0) -> tuple[int, int]:
    """1-based line and column of `marker` (plus offset) in `text`."""
    idx = text.index(marker) + offset
    line = text.count("\n", 0, idx) + 1
    col = idx - (text.rfind("\n", 0, idx) + 1) + 1
    return line, col


# (name, broken text, marker for the expected position, offset into the marker, field path, message fragment)
BROKEN = [
    (
        "bad yaml (unclosed list)",
        "regions:\n  华东:\n    cities: [杭州, 上海\n",
        "[杭州",
        0,
        "",
        "not valid YAML",
    ),
    (
        "bad yaml (tab)",
        "regions:\n\t华东: 1\n",
        "\t",
        0,
        "",
        "not valid YAML",
    ),
    (
        "duplicate key",
        "timezone: Asia/Shanghai\ntimezone: UTC\n",
        "timezone: UTC",
        0,
        "",
        'a key appears twice in the same mapping: "timezone"',
    ),
    (
        "unknown field",
        edited("    kind: order\n    description: {zh: 订单金额", "    kind: order\n    colour: red\n    description: {zh: 订单金额"),
        "colour",
        0,
        "approvals[0].colour",
        "unknown field 'colour'; allowed here: id, kind, description, when, levels",
    ),
    (
        "wrong type",
        edited("op: gt, value: 10000}, points: 5}", "op: gt, value: 10000}, points: lots}"),
        "lots",
        0,
        "priority.weights[4].points",
        "expected a whole number, got 'lots'",
    ),
    (
        "unknown stage",
        edited("{id: sla-ordered, stage: ordered, limit: 8h}", "{id: sla-ordered, stage: orderd, limit: 8h}"),
        "orderd",
        0,
        "sla.limits[3].stage",
        "unknown stage orderd; expected one of: pending_confirm, designing, ordered",
    ),
    (
        "bad expression (dunder)",
        edited('when: "order.created_hour >= 22 or order.created_hour < 6"', 'when: "order.created_hour >= 22 or order.__class__ < 6"'),
        "order.__class__",
        0,
        "priority.weights[2].when",
        "bad expression: names starting with an underscore are not allowed",
    ),
    (
        "bad expression (syntax)",
        edited('when: "order.created_hour >= 22 or order.created_hour < 6"', 'when: "order.created_hour >= 22 or"'),
        "order.created_hour >= 22 or",
        len("order.created_hour >= 22 or"),
        "priority.weights[2].when",
        "bad expression: not a valid expression",
    ),
    (
        "bad expression (function)",
        edited('when: "facts.previous_orders >= 3"', 'when: "eval(\'1\') == 1"'),
        "eval",
        0,
        "priority.weights[5].when",
        "unknown function 'eval'",
    ),
    (
        "unknown fact in a table condition",
        edited("when: {field: order.amount, op: gt, value: 5000}", "when: {field: order.amout, op: gt, value: 5000}"),
        "order.amout",
        0,
        "approvals[0].when.field",
        "unknown field 'order.amout'; did you mean order.amount?",
    ),
    (
        "text value for a number field",
        edited("when: {field: order.amount, op: gt, value: 5000}", "when: {field: order.amount, op: gt, value: lots}"),
        "lots",
        0,
        "approvals[0].when.value",
        "this field is a number, got 'lots'",
    ),
    (
        "unknown base in an override",
        edited("      base: HZ\n", "      base: XX\n"),
        "XX",
        0,
        "routing.overrides[0].base",
        "unknown production base 'XX'; one of: HZ, FS, LF, CD",
    ),
    (
        "unknown product type at a base",
        edited("makes: [curtain, blind, accessory]}", "makes: [curtain, blinds, accessory]}"),
        "blinds",
        0,
        "bases.HZ.makes[1]",
        "unknown product type 'blinds'",
    ),
    (
        "bad duration",
        edited("{id: sla-designing, stage: designing, limit: 48h}", "{id: sla-designing, stage: designing, limit: 48 hours}"),
        "48 hours",
        0,
        "sla.limits[2].limit",
        "expected a duration such as 48h, 2d, 30m or 1h30m, got '48 hours'",
    ),
    (
        "duplicate rule id",
        edited("{id: sla-ordered, stage: ordered", "{id: sla-confirm, stage: ordered"),
        "sla-confirm, stage: ordered",
        0,
        "sla.limits[3].id",
        "the rule id 'sla-confirm' is used twice (first at sla.limits[0])",
    ),
    (
        "city in two regions",
        edited("cities: [广州, 深圳]", "cities: [广州, 深圳, 杭州]"),
        "杭州]",
        0,
        "regions.华南.cities[2]",
        "杭州 is already in region 华东",
    ),
    (
        "unknown region in an approval level",
        edited("        region: order           # the manager", "        region: 华中           # the manager"),
        "华中",
        0,
        "approvals[0].levels[0].region",
        "unknown region '华中'",
    ),
    (
        "condition without a known key",
        edited("when: {field: order.amount, op: gt, value: 5000}", "when: {fld: order.amount, op: gt, value: 5000}"),
        "{fld",
        0,
        "approvals[0].when",
        "a condition needs one of the keys field, all, any, not or expr",
    ),
    (
        "bad regular expression",
        edited("{field: customer.tier, op: eq, value: vip}", "{field: customer.tier, op: matches, value: 'vip('}"),
        "'vip('",
        0,
        "priority.weights[0].when.value",
        "not a valid regular expression",
    ),
    (
        "end state with a time limit",
        edited("{id: sla-ordered, stage: ordered, limit: 8h}", "{id: sla-ordered, stage: completed, limit: 8h}"),
        "completed, limit",
        0,
        "sla.limits[3].stage",
        "completed is an end state",
    ),
    (
        "trend with neither consecutive nor count",
        edited("      consecutive: 5\n", ""),
        "- id: five-in-a-row-per-base",
        2,
        "anomalies.trends[0]",
        "a trend needs `consecutive: N` or `count: N` with `window`",
    ),
    (
        "missing required field",
        edited("    kind: refund\n", ""),
        "- id: refund-over-2000",
        2,
        "approvals[1].kind",
        "this field is required but missing",
    ),
    (
        "thousands separator in an expression (a tuple: always truthy)",
        edited('when: "facts.previous_orders >= 3"', 'when: "order.amount > 2,500"'),
        ",500",
        0,
        "priority.weights[5].when",
        "did you mean 2500?",
    ),
    (
        "expression that is a number, not a condition",
        edited('when: "facts.previous_orders >= 3"', 'when: "order.amount * 2"'),
        "order.amount * 2",
        0,
        "priority.weights[5].when",
        "a condition must be true or false",
    ),
    (
        "chained comparison of mixed kinds",
        edited('when: "facts.previous_orders >= 3"', 'when: "3 <= facts.previous_orders == customer.city"'),
        "customer.city\"",
        0,
        "priority.weights[5].when",
        "a number is never equal to a text",
    ),
    (
        "bad time zone",
        edited("timezone: Asia/Shanghai\ncurrency", "timezone: Asia/Shanghia\ncurrency"),
        "Asia/Shanghia",
        0,
        "timezone",
        "unknown time zone 'Asia/Shanghia'",
    ),
]


@pytest.mark.parametrize(("name", "text", "marker", "offset", "field", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_files_are_located_precisely(name: str, text: str, marker: str, offset: int, field: str, message: str) -> None:
    error = refused(text, source="rules.yaml")
    issues = error.issues
    assert len(issues) == 1, [str(i) for i in issues]
    issue = issues[0]
    line, col = _pos(text, marker, offset)
    assert (issue.path, issue.line, issue.field) == ("rules.yaml", line, field), str(issue)
    if name not in ("trend with neither consecutive nor count", "missing required field", "bad yaml (tab)"):
        assert issue.column == col, str(issue)
    assert message in issue.message, issue.message
    rendered = str(error)
    assert f"rules.yaml:{line}:" in rendered and "Traceback" not in rendered


def test_every_problem_is_reported_not_just_the_first() -> None:
    text = edited("{id: sla-ordered, stage: ordered, limit: 8h}", "{id: sla-ordered, stage: orderd, limit: 8h}")
    text = edited("op: gt, value: 10000}, points: 5}", "op: gt, value: 10000}, points: lots}", text)
    error = refused(text, source="r.yaml")
    assert {i.field for i in error.issues} == {"sla.limits[3].stage", "priority.weights[4].points"}
    assert str(error).startswith("2 problems in the rules file:\n  r.yaml:")


def test_semantic_problems_are_all_reported() -> None:
    text = edited("      base: HZ\n", "      base: XX\n")
    text = edited("cities: [广州, 深圳]", "cities: [广州, 深圳, 杭州]", text)
    assert len(refused(text).issues) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "must be a mapping of sections"),
        ("version: 2\n", "unknown value 2; expected one of: 1"),
        ("calendars:\n  default:\n    hours: ['18:00-09:00']\n", "the end must be after the start"),
        ("calendars:\n  default:\n    hours: ['09:00-13:00', '12:00-18:00']\n", "working hours overlap"),
        ("sla:\n  calendar: office\n", "unknown calendar 'office'"),
        ("routing:\n  cities:\n    杭州: [130, 20]\n", "coordinates are [latitude, longitude]"),
    ],
)
def test_small_files(text: str, message: str) -> None:
    refused(text, message)


def test_empty_file_is_a_valid_empty_rule_set() -> None:
    rules = load_rules("")
    assert rules.version == rules_hash("")
    assert rules.model.approvals == []


def test_example_loads_and_is_versioned_by_content() -> None:
    assert EXAMPLE.version == rules_hash(EXAMPLE_TEXT)
    assert len(EXAMPLE.version) == 64
    assert load_rules(EXAMPLE_TEXT + "\n# a comment\n").version != EXAMPLE.version


@pytest.mark.parametrize(
    ("city", "region"),
    [
        ("杭州", "华东"), ("上海", "华东"), ("南京", "华东"), ("苏州", "华东"), ("宁波", "华东"),
        ("广州", "华南"), ("深圳", "华南"), ("北京", "华北"), ("天津", "华北"), ("成都", "西南"), ("重庆", "西南"),
        ("杭州市", "华东"), ("拉萨", None), ("", None),
    ],
)
def test_regions_of_the_example(city: str, region: str | None) -> None:
    assert EXAMPLE.region_of(city) == region


def test_json_schema_describes_the_format() -> None:
    schema = json_schema()
    json.dumps(schema)  # serialisable
    assert set(schema["properties"]) >= {"regions", "approvals", "sla", "bases", "routing", "refunds", "priority", "anomalies"}
    assert schema["additionalProperties"] is False
    assert "designing" in json.dumps(schema)


def test_money_in_conditions_is_decimal_not_float() -> None:
    rules = load_rules("approvals:\n- {id: a, kind: order, when: {field: order.amount, op: gt, value: 0.1}, levels: [{role: finance}]}\n")
    from decimal import Decimal

    from engine.rules import Facts, evaluate
    from tests.engine.rules_support import T0, order

    assert evaluate(order(amount="0.10"), Facts(), rules, T0).approvals == []  # 0.1 as float would be > 0.1000000000000000055
    assert evaluate(order(amount="0.11"), Facts(), rules, T0).approvals[0].role == "finance"
    assert isinstance(rules.approvals[0].cond.text, str) and "0.1" in rules.approvals[0].cond.text
    assert Decimal("0.1") == Decimal(str(0.1))


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdef", "bcdefg")
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("&a [*a]", "refers to the node that contains it"),
        ("x: *unknown", "found undefined alias"),
        (BOMB, "expands to more than"),
        ("[" * 1000 + "]" * 1000, "nested too deeply"),
        ("a: !!python/object/apply:os.system [id]\n", "unknown field 'a'"),  # tags build nothing
    ],
)
def test_hostile_yaml_is_refused_politely(text: str, message: str) -> None:
    refused(text, message)


def test_random_damage_to_the_example_never_crashes() -> None:
    """Deleting, swapping and mangling lines gives RulesError or a valid file, never another exception."""
    import random

    rng = random.Random(20251125)
    lines = EXAMPLE_TEXT.splitlines(keepends=True)
    for _ in range(60):
        damaged = list(lines)
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(damaged))
            op = rng.random()
            if op < 0.3:
                del damaged[k]
            elif op < 0.8:
                s = damaged[k]
                p = rng.randrange(len(s)) if s else 0
                damaged[k] = s[:p] + rng.choice(" :-[]{}\"'#\t!&*?|>x0") + s[p + 1 :]
            else:
                j = rng.randrange(len(damaged))
                damaged[k], damaged[j] = damaged[j], damaged[k]
        try:
            load_rules("".join(damaged), "r.yaml")
        except RulesError as e:
            assert all(i.message and i.path == "r.yaml" for i in e.issues)


def test_windows_line_endings_and_bom_are_fine() -> None:
    assert load_rules("\ufeff" + EXAMPLE_TEXT.replace("\n", "\r\n")).model == EXAMPLE.model


@pytest.mark.parametrize(
    ("english", "chinese"),
    [
        ("unknown field 'colour'; allowed here: id, kind", "未知字段 'colour'；此处允许：id, kind"),
        ("unknown field 'order.amout'; did you mean order.amount?", "未知字段 'order.amout'；是否想写 order.amount?"),
        ("this field is required but missing", "缺少必填字段"),
        ("expected a whole number, got 'lots'", "应为整数，实际为 'lots'"),
        ("unknown stage orderd; expected one of: designing, ordered", "未知阶段 orderd；可选：designing, ordered"),
        ("bad expression: names starting with an underscore are not allowed", "表达式有误：不允许以下划线开头的名称"),
        ("bad expression: unknown function 'eval'; available: len", "表达式有误：未知函数 'eval'；可用：len"),
        ("unknown production base 'XX'; one of: HZ, FS", "未知生产基地 'XX'；可选：HZ, FS"),
        ("the rule id 'a' is used twice (first at sla.limits[0])", "规则编号 'a' 重复（首次出现在 sla.limits[0]）"),
        ("杭州 is already in region 华东", "杭州 已属于区域 华东"),
        ("something nobody translated", "something nobody translated"),
    ],
)
def test_messages_in_chinese(english: str, chinese: str) -> None:
    from engine.rules.errors import localize

    assert localize(english, "zh") == chinese
    assert localize(english, "en") == english


def test_error_report_in_both_languages() -> None:
    text = edited("{id: sla-ordered, stage: ordered, limit: 8h}", "{id: sla-ordered, stage: orderd, limit: 8h}")
    error = refused(text, source="r.yaml")
    line, col = _pos(text, "orderd")
    assert error.render("zh").splitlines() == [
        "规则文件有 1 处问题：",
        (
            f"  r.yaml:{line}:{col}: sla.limits[3].stage: 未知阶段 orderd；可选：pending_confirm, designing, ordered, "
            "in_production, shipped, awaiting_install, completed or cancelled"
        ),
    ]
    assert error.render("en") == str(error)


def test_the_example_encodes_the_business() -> None:
    """The bundled file says what the issue asks, so a careless edit of it fails here, not in production."""
    m = EXAMPLE.model
    assert {r: list(v.cities) for r, v in m.regions.items()} == {
        "华东": ["杭州", "上海", "南京", "苏州", "宁波"],
        "华南": ["广州", "深圳"],
        "华北": ["北京", "天津"],
        "西南": ["成都", "重庆"],
    }
    cal = m.calendars[m.sla.calendar]
    assert (cal.timezone, cal.hours, cal.workdays) == ("Asia/Shanghai", ["09:00-18:00"], ["mon", "tue", "wed", "thu", "fri", "sat"])
    assert cal.holidays and m.sla.warn_at == 0.8
    assert [s.role for s in m.sla.escalation] == ["owner", "supervisor", "region_head"]
    designing = next(lim for lim in m.sla.limits if lim.id == "sla-designing")
    assert (designing.stage.value, designing.limit.total_seconds() / 3600, designing.business_time) == ("designing", 48, True)
    names = {cid: c.name.zh for cid, c in m.anomalies.categories.items()}
    assert names == {  # the library's nine, in the library's order: a category the rules lack can never be a note's answer
        "logistics_delay": "物流延迟", "stock_shortage": "库存不足", "missing_docs": "资料缺失",
        "quality_issue": "质量问题", "production_delay": "生产延误", "address_unclear": "地址不清",
        "customer_change": "客户变更", "measurement_error": "测量错误", "install_issue": "安装问题"}
    assert list(names) == list(TERMS) and EXAMPLE.library_gaps() == []
    assert all(c.name.en for c in m.anomalies.categories.values())
    assert all(c.keywords and c.examples for c in m.anomalies.categories.values())
    five = next(t for t in m.anomalies.trends if t.consecutive is not None)
    assert five.consecutive == 5 and five.notify
    assert [r.outcome for r in m.refunds.matrix] == ["approve", "need_return_proof", "need_return_proof", "reject"]
    assert {b: bool(v.makes) for b, v in m.bases.items()} == {"HZ": True, "FS": True, "LF": True, "CD": True}
