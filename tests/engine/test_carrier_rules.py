"""Carrier choice by goods (SKU, name, weight, size), then region, then default: first match wins, unknown
weights never match a weight row, bad rows are refused with a located message."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from engine.carriers.rules import CarrierRules, Goods, goods_of
from engine.rules import RulesError, load_rules
from tests.engine.rules_support import EXAMPLE_TEXT, order

CARRIERS = """
carriers:
  default: {primary: sf, backup: deppon}
  by_goods:
    - {id: motors, when: {skus: ["MOTOR-*"], regions: [华东]}, primary: kuaidi100}
    - {id: heavy, when: {min_weight_kg: 30}, primary: deppon, backup: sf}
    - {id: long, when: {min_size_cm: 300, names: [窗帘]}, primary: deppon}
  regions:
    华南: {primary: kuaidi100, backup: sf}
"""


def rules(extra: str = CARRIERS) -> CarrierRules:
    return load_rules(EXAMPLE_TEXT + extra, "rules.yaml").model.carriers


def goods(**attrs: Any) -> Goods:
    return goods_of(order(skus=("CUR-LINEN-280",), qty=2, attributes=attrs).data.items)


def test_goods_facts_from_items() -> None:
    g = goods(weight_kg="12.5", width_cm=280, height_cm=260)
    assert g.weight_kg == Decimal("25.0") and g.size_cm == Decimal(280)
    assert goods(width_cm=100).weight_kg is None  # one item without a weight: weight unknown


def test_first_matching_row_then_region_then_default() -> None:
    r = rules()
    assert r.chosen("华南", goods(weight_kg=20))[1] == "by_goods:heavy"  # 40 kg: the goods row beats the region
    assert r.order_of_carriers("华南", goods(weight_kg=20)) == ["deppon", "sf"]
    assert r.chosen("华南", goods(weight_kg=1))[1] == "regions:华南"
    assert r.chosen("华北", goods(weight_kg=1))[1] == "default"
    assert r.chosen("华南", goods())[1] == "regions:华南"  # weight unknown: the heavy row does not guess
    motor = goods_of(order(skus=("MOTOR-X1", "CUR-LINEN-280"), attributes={"weight_kg": 50}).data.items)
    assert r.chosen("华东", motor)[1] == "by_goods:motors"  # first match wins over `heavy`
    assert r.chosen("华北", motor)[1] == "by_goods:heavy"  # motors is for 华东 only
    assert r.order_of_carriers("华南") == ["kuaidi100", "sf"]  # no goods given: region as before


def test_explain_marks_each_row() -> None:
    lines = rules().explain("华南", goods(weight_kg=20, width_cm=320))
    assert lines[0].startswith("  ✗ by_goods:motors") and "no item SKU matches MOTOR-*" in lines[0]
    assert lines[1].startswith("  ✓ by_goods:heavy → deppon/sf")
    assert lines[2].startswith("  · by_goods:long") and "skipped" in lines[2]
    assert lines[3].startswith("  · regions:华南") and lines[4].startswith("  · default")


@pytest.mark.parametrize("row, where, words", [
    ("{id: x, when: {}, primary: sf}", "carriers.by_goods[0].when", "at least one condition"),
    ("{id: x, when: {min_weight_kg: 9, max_weight_kg: 3}, primary: sf}", "carriers.by_goods[0].when",
     "min_weight_kg is greater than max_weight_kg"),
    ("{id: x, when: {min_weight_kg: 1}, primary: ups}", "carriers.by_goods[0].primary", ""),
    ("{id: x, when: {weight: 1}, primary: sf}", "carriers.by_goods[0].when.weight", "unknown field"),
])
def test_bad_rows_are_refused_with_their_place(row: str, where: str, words: str) -> None:
    with pytest.raises(RulesError) as e:
        rules(f"\ncarriers:\n  by_goods:\n    - {row}\n")
    text = e.value.render("en")
    assert where in text and words in text, text


def test_duplicate_row_ids_are_refused() -> None:
    with pytest.raises(RulesError) as e:
        rules("\ncarriers:\n  by_goods:\n    - {id: a, when: {min_weight_kg: 1}, primary: sf}\n"
              "    - {id: a, when: {min_weight_kg: 2}, primary: deppon}\n")
    assert "by_goods ids must be unique: a" in e.value.render("en")
