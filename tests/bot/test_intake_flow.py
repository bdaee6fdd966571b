"""Webhook → queue → worker → database, on whichever backends the session runs with."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.wiring.runtime import Runtime
from engine.channels import ChannelAdapter
from engine.channels.generic import generic_to_order
from engine.order import OrderData
from storage.models import ApprovalRow, DeadLetterRow, OrderRow, OutboxRow, StageTransitionRow
from tests.conftest import SECRETS
from tests.factories import order_json, signed


async def post(client: httpx.AsyncClient, payload: Any, channel: str = "generic") -> httpx.Response:
    body, headers = signed(SECRETS.get(channel, "generic-secret"), payload)
    return await client.post(f"/webhooks/orders/{channel}", content=body, headers=headers)


async def count(db: AsyncEngine, model: Any, *where: Any) -> int:
    async with db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


async def test_orders_are_stored_once_even_when_delivered_twice(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    orders = [order_json(i, amount=Decimal("1200.00")) for i in range(50)]
    assert (await post(client, {"orders": orders})).status_code == 202
    assert (await post(client, {"orders": orders[:20]})).status_code == 202  # a platform retry
    for o in orders[:5]:
        assert (await post(client, o)).status_code == 202
    totals = await runtime.intake_worker().run(burst=True)
    assert totals.inserted == 50
    assert totals.duplicates == 25
    assert await count(db, OrderRow) == 50
    assert await count(db, OrderRow, OrderRow.stage == "designing") == 50  # ≤ 5000 CNY: confirmed automatically
    assert await count(db, StageTransitionRow) == 100  # received → pending_confirm → designing
    assert (await runtime.queue.status()).depth == 0


async def test_large_order_waits_for_its_regional_manager(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    await post(client, order_json(1, amount=Decimal("8600.00"), city="杭州"))
    await runtime.intake_worker().run(burst=True)
    async with db.connect() as conn:
        order = (await conn.execute(select(OrderRow))).one()
        approval = (await conn.execute(select(ApprovalRow))).one()
        outbox = (await conn.execute(select(OutboxRow))).one()
    assert order.stage == "pending_confirm"
    assert order.amount == Decimal("8600.00")
    assert order.region == "华东"
    assert order.stage_deadline is not None
    assert (approval.required_role, approval.region, approval.status) == ("manager", "华东", "pending")
    assert outbox.kind == "approval_request"
    assert outbox.payload == {"approval_id": approval.id, "order_id": order.id}


async def test_changed_order_supersedes_its_pending_approval(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    first = order_json(3, amount=Decimal("9000.00"), city="广州")
    await post(client, first)
    await runtime.intake_worker().run(burst=True)
    changed = order_json(3, amount=Decimal("9900.00"), city="广州")
    await post(client, changed)
    await runtime.intake_worker().run(burst=True)
    async with db.connect() as conn:
        approvals = (await conn.execute(select(ApprovalRow).order_by(ApprovalRow.id))).all()
        order = (await conn.execute(select(OrderRow))).one()
    assert order.amount == Decimal("9900.00")
    assert [a.status for a in approvals] == ["superseded", "pending"]
    assert approvals[1].amount == Decimal("9900.00")
    async with db.connect() as conn:
        outbox = (await conn.execute(select(OutboxRow.kind, OutboxRow.payload).order_by(OutboxRow.id))).all()
    # the old card is edited to say it is void; the new request goes out
    assert sorted((k, p["approval_id"]) for k, p in outbox) == [
        ("approval_outcome", approvals[0].id), ("approval_request", approvals[0].id),
        ("approval_request", approvals[1].id)]


async def test_changed_order_below_threshold_is_shown_to_the_approver_not_confirmed(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    """Lowered below the threshold after a request was made: it stays waiting, and the manager asked gets a review
    (issue 9.4: auto-confirming here was the first half of the lower-then-restore bypass)."""
    await post(client, order_json(4, amount=Decimal("9000.00")))
    await runtime.intake_worker().run(burst=True)
    await post(client, order_json(4, amount=Decimal("900.00")))
    await runtime.intake_worker().run(burst=True)
    async with db.connect() as conn:
        order = (await conn.execute(select(OrderRow))).one()
        approvals = (await conn.execute(select(ApprovalRow).order_by(ApprovalRow.id))).all()
    assert order.stage == "pending_confirm"
    assert [(a.status, a.rule_id) for a in approvals] == [("superseded", "order-over-5000"),
                                                          ("pending", "changed-after-request")]
    assert approvals[1].required_role == approvals[0].required_role and approvals[1].region == approvals[0].region
    assert await count(db, OutboxRow, OutboxRow.kind == "approval_outcome") == 1


async def test_poisoned_entry_is_dead_lettered_after_exactly_three_tries(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    calls: list[str] = []

    def poisoned(raw: dict[str, Any]) -> OrderData:
        calls.append(raw["external_id"])
        if raw["external_id"] == "G00000003" and len(calls) > 5:  # the webhook's validation passes; the worker's not
            raise RuntimeError("adapter bug")
        return generic_to_order(raw)

    runtime.adapters["generic"] = ChannelAdapter("generic", poisoned)
    assert (await post(client, {"orders": [order_json(i) for i in range(5)]})).status_code == 202
    await runtime.intake_worker().run(burst=True)
    assert calls.count("G00000003") == 1 + 3  # webhook validation + exactly three tries
    assert await count(db, OrderRow) == 4
    status = await runtime.queue.status()
    assert (status.depth, status.retrying, status.dead) == (0, 0, 1)
    dead = await runtime.queue.dead_entries()
    assert orjson.loads(dead[0]["b"])["external_id"] == "G00000003"
    assert dead[0]["a"] == "3"
    assert "adapter bug" in dead[0]["e"]
    assert await count(db, DeadLetterRow) == 1
    assert await count(db, OutboxRow, OutboxRow.kind == "dead_letter", OutboxRow.recipient_role == "admin") == 1
    scrape = (await client.get("/metrics")).text
    assert "orderhub_dead_letters 1.0" in scrape

    # Fixed adapter, replay: the order arrives.
    runtime.adapters["generic"] = ChannelAdapter("generic", generic_to_order)
    assert await runtime.queue.replay_dead() == 1
    await runtime.intake_worker().run(burst=True)
    assert await count(db, OrderRow) == 5
    assert (await runtime.queue.status()).dead == 0


async def test_two_workers_share_the_stream_without_doubling(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    for start in range(0, 600, 100):
        await post(client, {"orders": [order_json(i) for i in range(start, start + 100)]})
    await post(client, {"orders": [order_json(i) for i in range(0, 600, 3)]})
    a, b = runtime.intake_worker("w-a"), runtime.intake_worker("w-b")
    a.opt.batch_size = b.opt.batch_size = 50
    await asyncio.gather(a.run(burst=True), b.run(burst=True))
    assert a.totals.inserted > 0 and b.totals.inserted > 0
    assert a.totals.inserted + b.totals.inserted == 600
    assert await count(db, OrderRow) == 600


async def test_crashed_workers_pending_entries_are_reclaimed(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    await post(client, {"orders": [order_json(i) for i in range(30)]})
    # A worker reads a batch and dies before storing it: the entries stay pending under its name.
    taken = await runtime.queue.read("dead-worker", 30, 100)
    assert len(taken) == 30
    runtime.settings.intake_claim_idle_s = 0.2
    await asyncio.sleep(0.3)
    await runtime.intake_worker("rescuer").run(burst=True)
    assert await count(db, OrderRow) == 30
    assert (await runtime.queue.status()).pending == 0


async def test_tmall_order_maps_into_the_canonical_shape(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    trade = {"tid": 4187001, "payment": "3100.00", "created": "2025-11-11 00:03:12", "receiver_name": "王女士",
             "receiver_mobile": "13800138000", "receiver_city": "深圳市",
             "orders": {"order": [{"title": "丝绒窗帘", "num": 1, "price": "3100.00", "outer_sku_id": "CUR-V",
                                   "sku_properties_name": "宽度:3.2m;高度:260cm"}]}}
    assert (await post(client, trade, channel="tmall")).status_code == 202
    await runtime.intake_worker().run(burst=True)
    async with db.connect() as conn:
        order = (await conn.execute(select(OrderRow))).one()
    assert (order.channel, order.external_id, order.customer_city, order.region) == ("tmall", "4187001", "深圳", "华南")
    assert order.items[0]["attributes"] == {"width_cm": 320, "height_cm": 260}
    assert order.created_at.isoformat() == "2025-11-10T16:03:12+00:00"


async def test_redelivered_orders_cost_no_rules_evaluation(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine, evaluations: list[str]
) -> None:
    orders = [order_json(i, amount=Decimal("1200.00")) for i in range(60)]  # a batch big enough for the lookup
    assert (await post(client, {"orders": orders})).status_code == 202
    await runtime.intake_worker().run(burst=True)
    evaluations.clear()
    changed = order_json(3, amount=Decimal("1300.00"))
    assert (await post(client, {"orders": [*orders, changed]})).status_code == 202  # a retry storm, one change
    totals = await runtime.intake_worker().run(burst=True)
    assert (totals.inserted, totals.updated, totals.duplicates) == (0, 1, 60)
    assert evaluations == [changed["external_id"]]
    async with db.connect() as conn:
        stored = (await conn.execute(select(OrderRow.decisions, OrderRow.flagged))).all()
    assert all("trace" not in d and d["fired"] and d["inputs"]["default_facts"] for d, _ in stored)
    assert not any(flagged for _, flagged in stored)  # a model default, sent once per batch


async def test_overlapping_batches_keep_the_order_of_changes(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    """Small batches planned ahead and, on PostgreSQL, a batch's transaction open while the previous one commits:
    an order changed twice in consecutive batches still ends with its last version, everything once."""
    from contextlib import asynccontextmanager

    for start in range(0, 120, 40):
        await post(client, {"orders": [order_json(i, amount=Decimal("1000.00")) for i in range(start, start + 40)]})
    for version in (2, 3):  # each change lands in a later batch than the one before
        await post(client, {"orders": [order_json(i, amount=Decimal(1000 + version)) for i in range(0, 120, 7)]})
    worker = runtime.intake_worker()
    worker.opt.batch_size = 10
    store = worker.processor.store
    real_unit, open_units, most = store.unit, [0], [0]

    @asynccontextmanager
    async def counted() -> Any:
        open_units[0] += 1
        most[0] = max(most[0], open_units[0])
        try:
            async with real_unit() as unit:
                yield unit
        finally:
            open_units[0] -= 1

    store.unit = counted  # type: ignore[method-assign]
    totals = await worker.run(burst=True)

    assert (totals.inserted, totals.updated, totals.failed) == (120, 2 * len(range(0, 120, 7)), [])
    async with db.connect() as conn:
        amounts = dict((await conn.execute(select(OrderRow.external_id, OrderRow.amount))).all())
    assert len(amounts) == 120
    last = {(o := order_json(i, amount=Decimal(1003 if i % 7 == 0 else 1000)))["external_id"]: Decimal(o["amount"])
            for i in range(120)}
    assert amounts == last
    assert most[0] == (2 if db.dialect.name == "postgresql" else 1)
    assert (await runtime.queue.status()).pending == 0
