"""Stall detection and the notify policy, as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from engine.notify_policy import AlertKey, Why, needs_notify
from engine.order import Customer, Item, Order, OrderData
from engine.stages import Stage
from engine.stall import DEFAULT_LADDER, Rung, find_stalls, ladder_from_rules, level_due

NOW = datetime(2025, 11, 11, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _order(id_: int, stage: Stage, deadline: datetime | None) -> Order:
    data = OrderData(external_id=f"O{id_}", created_at=NOW, customer=Customer(id="c"),
                     items=[Item(sku="s", qty=1, unit_price=Decimal(1))], amount=Decimal(1))
    return Order(id=id_, channel="generic", data=data, stage=stage, stage_entered_at=NOW, stage_deadline=deadline)


@pytest.mark.parametrize(
    ("overdue", "level"),
    [(-H, None), (timedelta(0), 0), (3 * H, 0), (4 * H, 1), (7 * H, 1), (8 * H, 2), (100 * H, 2)],
)
def test_level_due(overdue: timedelta, level: int | None) -> None:
    assert level_due(overdue, DEFAULT_LADDER) == level


def test_find_stalls_skips_end_states_undated_and_on_time() -> None:
    orders = [
        _order(1, Stage.DESIGNING, NOW - 5 * H),
        _order(2, Stage.ORDERED, NOW - 1 * H),
        _order(3, Stage.COMPLETED, NOW - 9 * H),
        _order(4, Stage.CANCELLED, NOW - 9 * H),
        _order(5, Stage.SHIPPED, None),
        _order(6, Stage.SHIPPED, NOW + H),
        _order(7, Stage.PENDING_CONFIRM, NOW),  # exactly at the deadline: not yet overdue
    ]
    stalls = find_stalls(orders, NOW)
    assert [(s.order_id, s.stage, s.level, s.role) for s in stalls] == [
        (1, "designing", 1, "supervisor"),
        (2, "ordered", 0, "owner"),
    ]
    assert stalls[0].overdue == 5 * H


def test_ladder_from_rules() -> None:
    assert ladder_from_rules([("owner", timedelta(0)), ("admin", 2 * H)]) == (Rung("owner", timedelta(0)),
                                                                                Rung("admin", 2 * H))
    assert ladder_from_rules([]) == DEFAULT_LADDER


KEY = AlertKey(9, "designing", 1)


@pytest.mark.parametrize(
    ("kw", "send", "why"),
    [
        ({}, True, Why.NEW),
        ({"already_sent": True}, False, Why.ALREADY_SENT),
        ({"snoozed_until": NOW + H}, False, Why.SNOOZED),
        ({"snoozed_until": NOW - H}, True, Why.NEW),
        ({"snoozed_until": NOW}, True, Why.NEW),
        ({"acked_stage": "designing"}, False, Why.ACKNOWLEDGED),
        ({"acked_stage": "pending_confirm"}, True, Why.NEW),  # an ack of an earlier stage does not carry over
    ],
)
def test_needs_notify(kw: dict, send: bool, why: Why) -> None:
    kw.setdefault("already_sent", False)
    decision = needs_notify(KEY, now=NOW, **kw)
    assert (decision.send, decision.why) == (send, why)


def test_dedup_key_shape() -> None:
    assert KEY.dedup_key == "stall:9:designing:1"


def test_a_late_stall_names_every_rung_reached() -> None:
    from engine.notify_policy import levels_to_announce

    assert [d for d in find_stalls([_order(1, Stage.DESIGNING, NOW - 9 * H)], NOW)[0].due] == [
        (0, "owner"), (1, "supervisor"), (2, "region_head")]
    assert levels_to_announce([0, 1, 2], set()) == [0, 1, 2]
    assert levels_to_announce([0, 1, 2], {0}) == [1, 2]
    assert levels_to_announce([0, 1, 2], {2}) == []  # a level below one sent is covered by it
    assert levels_to_announce([0, 1], {0, 1}) == []
