"""Builders shared by the rules-engine tests: the bundled example, small orders, and an edited copy of the example."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.order import Customer, Item, Order, OrderData
from engine.rules import RulesError, RuleSet, load_rules
from engine.stages import Stage

EXAMPLE_PATH = Path(__file__).resolve().parents[2] / "engine" / "rules.example.yaml"
EXAMPLE_TEXT = EXAMPLE_PATH.read_text(encoding="utf-8")
EXAMPLE: RuleSet = load_rules(EXAMPLE_TEXT, str(EXAMPLE_PATH))
T0 = datetime(2025, 11, 12, 2, 0, tzinfo=UTC)  # Wed 10:00 Shanghai


def edited(old: str, new: str, text: str = EXAMPLE_TEXT) -> str:
    """The example with one exact fragment replaced (fails loudly if the fragment is gone)."""
    assert old in text, f"fragment not in the example: {old!r}"
    return text.replace(old, new, 1)


def refused(text: str, *pieces: str, source: str = "<string>") -> RulesError:
    """The RulesError that load_rules raises for `text`, checked to name each of `pieces`; returned for the checks a
    test adds (its issues, its rendering)."""
    with pytest.raises(RulesError) as exc:
        load_rules(text, source)
    for piece in pieces:
        assert piece in str(exc.value), (piece, str(exc.value))
    return exc.value


def order(
    *,
    id: int = 1,
    amount: str | Decimal = "3780.00",
    city: str = "杭州",
    tier: str = "normal",
    skus: tuple[str, ...] = ("CUR-LINEN-280",),
    qty: int = 1,
    stage: Stage = Stage.DESIGNING,
    entered: datetime = T0,
    created: datetime = T0,
    notes: str = "",
    channel: str = "tmall",
    attributes: dict[str, Any] | None = None,
    custom_fields: dict[str, Any] | None = None,
) -> Order:
    amount = Decimal(str(amount))
    items = [
        Item(sku=s, name=s, qty=qty, unit_price=(amount / len(skus) / qty).quantize(Decimal("0.01")),
             attributes=attributes or {})
        for s in skus
    ]
    data = OrderData(
        external_id=f"E{id:06d}",
        channel=channel,
        created_at=created,
        customer=Customer(id=f"C{id}", name="王女士", phone="13800138000", city=city, tier=tier),
        items=items,
        amount=amount,
        notes=notes,
        custom_fields=custom_fields or {},
    )
    return Order(id=id, channel=channel, data=data, stage=stage, stage_entered_at=entered)
