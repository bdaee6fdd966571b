"""Stock-aware routing (`routing.use_stock`): the nearest capable base that has the stock, and `out_of_stock` when
a SKU is known short at every capable base. Stock levels come in as facts; the engine reads nothing."""

from __future__ import annotations

import pytest

from engine.rules import Facts, evaluate, load_rules
from tests.engine.rules_support import EXAMPLE, EXAMPLE_TEXT, T0, edited, order

CURTAIN_BASES = ("HZ", "FS", "LF", "CD")  # every base makes curtains in the example rules
ALL_ZERO = {f"{b}:CUR-A": 0 for b in CURTAIN_BASES}


@pytest.mark.parametrize(
    ("city", "skus", "qty", "stock", "base", "out_of_stock"),
    [
        ("杭州", ("CUR-A",), 1, {}, "HZ", ()),  # no stock known: distance only
        ("杭州", ("CUR-A",), 1, {"HZ:CUR-A": 0, "CD:CUR-A": 3}, "FS", ()),  # FS unknown, nearer than CD
        ("杭州", ("CUR-A",), 1, {"HZ:CUR-A": 0, "FS:CUR-A": 0, "LF:CUR-A": 1}, "LF", ()),
        ("杭州", ("CUR-A",), 3, {"HZ:CUR-A": 2, "FS:CUR-A": 3}, "FS", ()),  # 2 < 3 ordered: HZ is short
        ("杭州", ("CUR-A",), 3, {"HZ:CUR-A": 3}, "HZ", ()),  # exactly enough
        ("杭州", ("CUR-A",), 1, ALL_ZERO, None, ("CUR-A",)),  # short everywhere
        ("杭州", ("CUR-A",), 1, {**ALL_ZERO, "CD:CUR-A": 1}, "CD", ()),  # the far base has it
        ("杭州", ("CUR-A", "CUR-B"), 1, {**ALL_ZERO, **{f"{b}:CUR-B": 9 for b in CURTAIN_BASES}}, None, ("CUR-A",)),
        # no base has both, but neither SKU is short everywhere: unrouted, no 库存不足
        ("杭州", ("CUR-A", "CUR-B"), 1, {"HZ:CUR-A": 0, "FS:CUR-A": 0, "LF:CUR-A": 0, "CD:CUR-B": 0}, None, ()),
        ("杭州", ("CUR-A",), 1, {"HZ:OTHER": 0, "FS:OTHER": 0}, "HZ", ()),  # other SKUs' stock does not matter
    ],
)
def test_stock_routing(city: str, skus: tuple[str, ...], qty: int, stock: dict[str, int], base: str | None,
                       out_of_stock: tuple[str, ...]) -> None:
    d = evaluate(order(city=city, skus=skus, qty=qty), Facts(stock=stock), EXAMPLE, T0)
    assert (d.route.base if d.route else None) == base
    assert d.out_of_stock == out_of_stock
    summary = d.to_json(trace=False)
    assert summary.get("out_of_stock", []) == list(out_of_stock)


def test_out_of_stock_trace_says_why() -> None:
    d = evaluate(order(skus=("CUR-A",)), Facts(stock=ALL_ZERO), EXAMPLE, T0)
    row = next(t for t in d.trace if t.section == "routing" and t.rule_id == "routing.nearest")
    assert not row.matched and row.note.startswith("no base has the stock")


def test_use_stock_false_ignores_stock() -> None:
    rules = load_rules(EXAMPLE_TEXT.replace("use_stock: true", "use_stock: false"), "rules.yaml")
    d = evaluate(order(skus=("CUR-A",)), Facts(stock=ALL_ZERO), rules, T0)
    assert d.route is not None and d.route.base == "HZ"
    assert d.out_of_stock == ()


def test_override_beats_stock() -> None:
    d = evaluate(order(city="深圳", skus=("CUR-A",), channel="showroom"), Facts(stock=ALL_ZERO), EXAMPLE, T0)
    assert d.route is not None and d.route.rule_id == "showroom-to-hz"


def test_the_first_matching_override_wins_and_a_full_trace_names_the_rest_skipped() -> None:
    text = edited("      base: HZ\n\n", "      base: HZ\n    - id: showroom-to-fs\n"
                  "      when: {field: order.channel, op: eq, value: showroom}\n      base: FS\n\n")
    rules = load_rules(text, "rules.yaml")
    full = evaluate(order(channel="showroom"), Facts(), rules, T0)
    assert full.route is not None and (full.route.rule_id, full.route.base) == ("showroom-to-hz", "HZ")
    rows = {t.rule_id: t for t in full.trace if t.section == "routing"}
    assert rows["showroom-to-hz"].matched and rows["showroom-to-hz"].outcome == "HZ"
    assert not rows["showroom-to-fs"].matched and rows["showroom-to-fs"].note == "skipped: showroom-to-hz matched first"
    brief = evaluate(order(channel="showroom"), Facts(), rules, T0, trace=False)
    assert brief.route == full.route
    assert "showroom-to-fs" not in {t.rule_id for t in brief.trace}
