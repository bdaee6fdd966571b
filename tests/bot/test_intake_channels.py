"""A sender may only write orders of its own channels, and an update never takes an order out of an approval
without the approver seeing it (issue 9.4): the cross-channel overwrite and the lower-then-restore bypass."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.wiring.runtime import Runtime
from storage.models import ApprovalRow, DeadLetterRow, OrderRow, OutboxRow
from tests.bot.test_intake_flow import count, post
from tests.factories import order_json


def _trade(payment: str = "8000.00", **kw: Any) -> dict[str, Any]:
    return {
        "tid": 4187001, "payment": payment, "created": "2025-11-11 00:03:12", "buyer_nick": "tb_wang",
        "receiver_name": "王女士", "receiver_mobile": "13800138000", "receiver_state": "浙江省",
        "receiver_city": "杭州市", "orders": {"order": [{"oid": 1, "title": "亚麻遮光窗帘", "num": 1, "price": payment,
                                                        "outer_sku_id": "CUR-LINEN"}]}, **kw,
    }


async def _order(db: AsyncEngine, channel: str = "tmall", external_id: str = "4187001") -> Any:
    async with db.connect() as conn:
        return (await conn.execute(select(OrderRow).where(OrderRow.channel == channel,
                                                          OrderRow.external_id == external_id))).one()


async def _approvals(db: AsyncEngine) -> list[tuple[str, str, str, str | None]]:
    async with db.connect() as conn:
        rows = (await conn.execute(select(ApprovalRow).order_by(ApprovalRow.id))).all()
    return [(r.status, r.rule_id, r.required_role, r.region) for r in rows]


async def _taken_in(client: httpx.AsyncClient, runtime: Runtime, payload: Any, channel: str = "tmall") -> None:
    """`payload` accepted at the channel's webhook (202), then the intake worker's pass over the queue."""
    assert (await post(client, payload, channel)).status_code == 202
    await runtime.intake_worker().run(burst=True)


def _generic_claiming_tmall(amount: str = "1.00") -> dict[str, Any]:
    o = order_json(1, amount=Decimal(amount), city="杭州")
    o.update(external_id="4187001", channel="tmall")
    return o


async def test_a_generic_order_naming_tmall_is_refused_at_the_route(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    await _taken_in(client, runtime, _trade("10.00"))
    before = await _order(db)
    for payload in (_generic_claiming_tmall(), {"orders": [order_json(2), _generic_claiming_tmall()]}):
        r = await post(client, payload, "generic")
        assert r.status_code == 403 and r.json()["error"] == "channel_not_allowed", r.text
    await runtime.intake_worker().run(burst=True)
    after = await _order(db)
    assert (after.amount, after.customer_name, after.customer_phone) == (before.amount, "王女士", "13800138000")
    assert await count(db, OrderRow) == 1  # nothing of the refused batch was queued


async def test_the_worker_refuses_a_foreign_channel_queued_before_the_route_checked(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    await _taken_in(client, runtime, _trade())
    await runtime.queue.enqueue("generic", [orjson.dumps(_generic_claiming_tmall())])  # e.g. queued by an older build
    await runtime.intake_worker().run(burst=True)
    order = await _order(db)
    assert (order.amount, order.stage) == (Decimal("8000.00"), "pending_confirm")
    assert [a[0] for a in await _approvals(db)] == ["pending"]
    async with db.connect() as conn:
        errors = (await conn.execute(select(DeadLetterRow.error))).scalars().all()
    assert len(errors) == 1 and "ChannelNotAllowed" in errors[0]


async def test_a_generic_order_may_name_a_channel_without_a_route_of_its_own(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    o = order_json(3)
    o["channel"] = "showroom"
    await _taken_in(client, runtime, o, "generic")
    assert (await _order(db, "showroom", o["external_id"])).channel == "showroom"


async def test_lower_then_restore_never_leaves_the_approval(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    await _taken_in(client, runtime, _trade("8000.00"))
    assert (await _order(db)).stage == "pending_confirm"
    assert await _approvals(db) == [("pending", "order-over-5000", "manager", "华东")]

    await _taken_in(client, runtime, _trade("1.00"))  # lowered below the threshold
    order = await _order(db)
    assert (order.stage, order.amount) == ("pending_confirm", Decimal("1.00"))  # not silently confirmed
    assert await _approvals(db) == [("superseded", "order-over-5000", "manager", "华东"),
                                    ("pending", "changed-after-request", "manager", "华东")]  # the approver sees it

    await _taken_in(client, runtime, _trade("8000.00"))  # restored
    assert (await _order(db)).stage == "pending_confirm"
    # the first request (same content, same version) is asked again: pending, its card sent anew
    assert [a[:2] for a in await _approvals(db)] == [("pending", "order-over-5000"),
                                                     ("superseded", "changed-after-request")]
    async with db.connect() as conn:
        cards = (await conn.execute(select(OutboxRow.dedup_key).where(OutboxRow.kind == "approval_request"))).all()
    assert len(cards) == 3  # the request, the review, the request again


async def test_a_change_to_an_approved_order_is_asked_again(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    await _taken_in(client, runtime, _trade("8000.00"))
    async with db.begin() as conn:  # the manager approved it (as the decision use case records it)
        await conn.execute(update(ApprovalRow).values(status="approved", decided_by="东区经理"))
        await conn.execute(update(OrderRow).values(stage="designing"))
    await _taken_in(client, runtime, _trade("80000.00"))  # not what was approved
    assert (await _order(db)).stage == "designing"
    assert await _approvals(db) == [("approved", "order-over-5000", "manager", "华东"),
                                    ("pending", "order-over-5000", "manager", "华东")]
    # a note only: not what an approval is about
    await _taken_in(client, runtime, _trade("80000.00", buyer_message="请周末安装"))
    assert len(await _approvals(db)) == 2


async def test_a_change_to_an_order_never_asked_about_needs_no_approval(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    await _taken_in(client, runtime, _trade("800.00"))
    assert (await _order(db)).stage == "designing"
    await _taken_in(client, runtime, _trade("900.00"))
    assert (await _order(db)).stage == "designing" and await _approvals(db) == []
