"""The expression language: what it computes, and everything it refuses (no eval, no Python internals)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.rules.errors import ExprError
from engine.rules.evaluate import make_ctx
from engine.rules.expr import compile_expr
from engine.rules.facts import Facts, RefundRequest
from tests.engine.rules_support import EXAMPLE, T0, order

CTX = make_ctx(
    EXAMPLE,
    order(amount="6800.00", city="上海", tier="vip", notes="请尽快安装", skus=("CUR-A", "SOFA-B"),
          created=datetime(2025, 11, 11, 15, 30, tzinfo=UTC), custom_fields={"install_date": "2025-11-20", "floors": 3}),
    Facts(complaints_30d=2, extra={"campaign": "双11"},
          refund=RefundRequest(Decimal(2500), T0, "王女士", shipped_at=T0 - timedelta(days=5), delivered_at=T0 - timedelta(days=3))),
    T0,
)


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("order.amount > 5000", True),
        ("order.amount == 6800", True),
        ("order.amount * 2 - 600", Decimal("13000.00")),
        ("order.amount / 0", None),  # division by zero is "unknown", not a crash
        ("order.amount > 5000 and customer.tier == 'vip'", True),
        ("order.amount > 9000 or customer.city in ['上海', '北京']", True),
        ("not facts.waiting_for_customer", True),
        ("customer.city not in ('杭州',)", True),
        ("'sofa' in order.product_types", True),
        ("order.product_types", ["curtain", "sofa"]),
        ("order.created_hour", 23),  # 15:30 UTC is 23:30 in Shanghai
        ("order.created_weekday", 2),
        ("22 <= order.created_hour < 24", True),
        ("order.custom_fields['install_date']", "2025-11-20"),
        ("order.custom_fields['floors'] >= 3", True),
        ("order.custom_fields['missing'] > 1", False),  # null compares false, like SQL
        ("order.custom_fields['missing'] == None", True),
        ("order.skus[0]", "CUR-A"),
        ("order.skus[9]", None),
        ("facts.extra['campaign'] == '双11'", True),
        ("len(order.skus)", 2),
        ("order.qty_total", 2),
        ("order.age_hours", Decimal("10.5")),
        ("order.stage_hours", 0),
        ("order.item_count", 2),
        ("lower('ABC') == 'abc'", True),
        ("max(order.amount, 7000)", Decimal(7000)),
        ("contains_any(order.notes, ['尽快', '加急'])", True),
        ("matches(customer.phone, '^138')", True),
        ("refund.days_since_delivery", Decimal("3.00")),
        ("refund.shipped and refund.delivered", True),
        ("'high' if order.amount > 5000 else 'low'", "high"),
        ("-order.amount < 0", True),
        ("0.1 + 0.2 == 0.3", True),  # decimal, not float
        ("customer.name + '!'", "王女士!"),
    ],
)
def test_expression_values(expr: str, value: Any) -> None:
    assert compile_expr(expr).fn(CTX) == value


def test_reads_are_the_fields_named() -> None:
    assert compile_expr("order.amount > 5000 and customer.tier == 'vip' or order.amount > 1").reads == (
        "order.amount",
        "customer.tier",
    )


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("order.__class__", "underscore"),
        ("order.amount.__class__.__mro__", "only names like order.amount"),
        ("().__class__.__base__", "only names like order.amount"),
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('id')", "only the built-in rule functions can be called"),
        ("eval('1')", "unknown function 'eval'"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("customer.name.upper()", "only the built-in rule functions can be called"),
        ("lambda: 1", "a lambda is not allowed"),
        ("[x for x in order.skus]", "a comprehension is not allowed"),
        ("{'a': 1}", "a dict literal is not allowed"),
        ("f'{order.amount}'", "an f-string is not allowed"),
        ("2 ** 1000000", "the operator Pow is not allowed"),
        ("order.amount // 2", "the operator FloorDiv is not allowed"),
        ("(y := 1)", "assignment"),
        ("order", "'order' alone is not a value"),
        ("x > 1", "unknown name 'x'"),
        ("order.amout > 1", "did you mean order.amount?"),
        ("secret.key", "unknown name 'secret'"),
        ("order.amount > 'a'", "cannot compare a number with text"),
        ("customer.city - 1", "'-' works on numbers, not text"),
        ("customer.city['x']", "only maps such as"),
        ("order.custom_fields[1]", "a map key must be text"),
        ("order.skus[1:2]", "an index must be a plain text or number"),
        ("len(order.skus, 2)", "len() takes 1 argument(s), got 2"),
        ("matches(order.notes, customer.name)", "needs a text and a quoted pattern"),
        ("matches(order.notes, '(')", "not a valid regular expression"),
        ("order.amount >", "not a valid expression"),
        ("import os", "not a valid expression"),
        ("1+" * 150 + "1", "too complex"),
        ("x" * 1001, "longer than 1000"),
    ],
)
def test_refused_expressions(expr: str, message: str) -> None:
    with pytest.raises(ExprError) as exc:
        compile_expr(expr)
    assert message in exc.value.message


@pytest.mark.parametrize(
    ("expr", "column"),
    [("order.amount > 1 and order.amout > 2", 21), ("  x > 1", 2), ("order.amount > ", 14)],
)
def test_error_columns_point_into_the_expression(expr: str, column: int) -> None:
    with pytest.raises(ExprError) as exc:
        compile_expr(expr)
    assert exc.value.offset == column


def test_runtime_type_error_raises_for_the_evaluator_to_catch() -> None:
    fn = compile_expr("order.custom_fields['install_date'] > 3").fn
    with pytest.raises(TypeError):
        fn(CTX)


@pytest.mark.parametrize("name", sorted(__import__("engine.rules.fields", fromlist=["FIELDS"]).FIELDS))
def test_every_documented_fact_can_be_read(name: str) -> None:
    from engine.rules.fields import FIELDS

    value = FIELDS[name].getter(CTX)
    kind = FIELDS[name].kind
    expected = {"number": (int, Decimal), "text": str, "bool": bool, "list": list, "map": dict}[kind]
    assert value is None or isinstance(value, expected), (name, value)
    assert compile_expr(f"{name} == {name}").reads == (name,)


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        # two operands (compiled without a generator) and three give bools, as Python's and/or do not
        ("order.amount and customer.city", True),
        ("order.notes or order.amount", True),
        ("'' or customer.city", True),
        ("'' and customer.city", False),
        ("'' or ''", False),
        ("order.amount > 1 and customer.tier == 'vip' and customer.city == '上海'", True),
        ("order.amount > 9000 or customer.tier == 'x' or customer.city == '北京'", False),
        # short-circuit: the second operand is never evaluated (it would raise a TypeError)
        ("order.amount < 1 and order.custom_fields['install_date'] > 3", False),
        ("order.amount > 1 or order.custom_fields['install_date'] > 3", True),
        # a constant on the right of a single comparison (not called per evaluation), and on the left
        ("order.custom_fields['floors'] >= 3", True),
        ("3 <= order.custom_fields['floors']", True),
        ("order.custom_fields['missing'] > 3", False),
        ("order.amount > 1 > 0", True),
    ],
)
def test_boolean_operators_and_constant_comparisons(expr: str, value: Any) -> None:
    result = compile_expr(expr).fn(CTX)
    assert result == value and type(result) is bool


@pytest.mark.parametrize(
    ("field", "words", "value"),
    [
        ("order.notes", ["加急", "尽快"], True),  # a text: any word in it (one regex search)
        ("order.notes", ["加急", "快.装"], False),  # words are literal text, not patterns
        ("order.notes", ["快安"], True),
        ("order.notes", [""], True),  # the empty word is in every text, as with `in`
        ("customer.phone", ["x", "9"], False),
        ("order.skus", ["CUR-A", "X"], True),  # a list: membership, not substrings
        ("order.skus", ["CUR"], False),
        ("order.custom_fields", ["floors"], True),  # a map: its keys
        ("refund.requested_by", ["女士"], True),
        ("facts.extra", ["nope"], False),
    ],
)
def test_table_contains_any_matches_words_in_text_and_elements_in_lists(field: str, words: list[str], value: bool) -> None:
    from engine.rules.conditions import compile_condition
    from engine.rules.model import FieldCond

    cond = compile_condition(FieldCond(field=field, op="contains_any", value=words))
    assert cond.test(CTX) is value


@pytest.mark.parametrize(
    ("expr", "message", "column"),
    [
        ("order.amount > 2,500", "did you mean 2500?", 16),  # (order.amount > 2, 500): a tuple, always truthy
        ("order.amount > 1,000,000", "did you mean 1000000?", 16),
        ("order.amount", "a condition must be true or false, but this is a number", 0),
        ("customer.city", "but this is a text", 0),
        ("order.skus", "but this is a list", 0),
        ("order.amount * 2", "but this is a number", 0),
        ("order.amount > 5000 and 3", "each side of and must be true or false", 24),
        ("not order.notes", "what follows not must be true or false", 4),
        ("'a' if order.amount else 'b'", "the test of if", 7),
        ("order.amount == '5000'", "a number is never equal to a text", 16),
        ("1 < order.amount == customer.city", "a number is never equal to a text", 20),
        ("order.amount > 1 < 'x'", "cannot compare a number with text", 19),
        ("customer.tier > customer.vip", "unknown field", 16),
        ("order.amount in customer.city", "'in' a text needs a text on its left", 16),
        ("order.amount in 5", "'in' needs a list", 16),
        ("refund.shipped > 1", "cannot order bool against number", 17),
    ],
)
def test_conditions_must_be_true_or_false(expr: str, message: str, column: int) -> None:
    with pytest.raises(ExprError) as exc:
        compile_expr(expr, boolean=True)
    assert message in exc.value.message and exc.value.offset == column, (exc.value.message, exc.value.offset)


@pytest.mark.parametrize(
    "expr",
    ["order.amount > 2500", "refund.shipped and not refund.delivered", "order.custom_fields['vip']",
     "customer.city in ['上海', '北京']", "'sofa' in order.product_types", "order.custom_fields['n'] == 3",
     "22 <= order.created_hour < 24", "contains_any(order.notes, ['急'])", "order.notes == None"],
)
def test_conditions_that_are_true_or_false_compile(expr: str) -> None:
    compile_expr(expr, boolean=True)


def test_a_tuple_condition_is_refused_at_load_not_matched_for_every_order() -> None:
    from engine.rules.conditions import CondError, compile_condition

    with pytest.raises(CondError) as exc:
        compile_condition("order.amount > 2,500")
    assert "did you mean 2500?" in exc.value.message
