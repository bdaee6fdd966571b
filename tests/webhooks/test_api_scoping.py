"""The staff API by role and region (issue 9 #5) and approval decisions over HTTP (issue 8 #10)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select, update

from bot.wiring.runtime import Runtime
from storage.models import ApprovalRow, OrderRow, OutboxRow
from tests.webhooks.test_api import add_user, seed
from tests.factories import order_json

APPROVALS, ORDERS, OUTBOX = ApprovalRow.__table__, OrderRow.__table__, OutboxRow.__table__


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _people(runtime: Runtime) -> dict[str, dict[str, str]]:
    return {name: bearer(await add_user(runtime, name, role, regions)) for name, role, regions in (
        ("ops", "admin", []), ("east", "manager", ["华东"]), ("east2", "manager", ["华东"]),
        ("south", "manager", ["华南"]), ("money", "finance", []), ("stock", "supply_chain", []))}


async def _approval(runtime: Runtime, order_key: str) -> Any:
    async with runtime.db.connect() as conn:
        return (await conn.execute(select(APPROVALS).join(ORDERS, ORDERS.c.id == APPROVALS.c.order_id).where(
            ORDERS.c.external_id == order_key.split(":")[1]))).one()


async def test_a_south_manager_gets_403_on_every_write_to_an_east_order(client: httpx.AsyncClient,
                                                                         runtime: Runtime) -> None:
    who = await _people(runtime)
    await seed(client, runtime, [order_json(1, amount=Decimal("8000.00"), city="杭州"),
                                 order_json(2, amount=Decimal("1000.00"), city="杭州")])
    writes = [
        ("/api/orders/generic:G00000001/transition", {"to": "cancelled", "reason": "别人的订单"}),
        ("/api/orders/generic:G00000002/transition", {"to": "ordered"}),
        ("/api/orders/generic:G00000002/notes", {"text": "仓库停电"}),
    ]
    for url, body in writes:
        for name in ("south", "money", "stock"):
            resp = await client.post(url, json=body, headers=who[name])
            assert resp.status_code == 403 and resp.json()["error"] == "forbidden", (url, name)
    approval = await _approval(runtime, "generic:G00000001")
    resp = await client.post(f"/api/approvals/{approval.id}/decision", json={"decision": "approve"},
                             headers=who["south"])
    assert resp.status_code == 403 and resp.json()["error"] == "not_allowed"
    assert (await _approval(runtime, "generic:G00000001")).status == "pending"
    order = (await client.get("/api/orders/generic:G00000002", headers=who["ops"])).json()
    assert order["stage"] == "designing" and order["exception_notes"] == []
    # the east manager may
    assert (await client.post(writes[1][0], json=writes[1][1], headers=who["east"])).status_code == 200
    assert (await client.post(writes[2][0], json=writes[2][1], headers=who["east"])).status_code == 201


async def test_cancelling_closes_the_orders_pending_approvals(client: httpx.AsyncClient, runtime: Runtime) -> None:
    who = await _people(runtime)
    await seed(client, runtime, [order_json(3, amount=Decimal("8000.00"), city="杭州")])
    resp = await client.post("/api/orders/generic:G00000003/transition", json={"to": "cancelled", "reason": "撤单"},
                             headers=who["east"])
    assert resp.status_code == 200 and resp.json()["stage"] == "cancelled" and resp.json()["pending_approvals"] == 0
    approval = await _approval(runtime, "generic:G00000003")
    assert approval.status == "superseded" and approval.reason == "order cancelled"  # the card says why (cards.py)
    async with runtime.db.connect() as conn:  # the card edit is queued (the notifier edits every copy)
        keys = (await conn.execute(select(OUTBOX.c.dedup_key))).scalars().all()
    assert f"approval_outcome:{approval.id}" in keys


async def test_phone_numbers_in_full_only_for_admin_and_the_orders_region(client: httpx.AsyncClient,
                                                                          runtime: Runtime) -> None:
    who = await _people(runtime)
    await seed(client, runtime, [order_json(4, amount=Decimal("1000.00"), city="杭州")])
    full = (await client.get("/api/orders/generic:G00000004", headers=who["ops"])).json()["customer"]["phone"]
    assert len(full) == 11 and "*" not in full
    for name, shown in (("ops", full), ("east", full), ("south", full[:3] + "****" + full[-4:]),
                        ("money", full[:3] + "****" + full[-4:]), ("stock", full[:3] + "****" + full[-4:])):
        one = (await client.get("/api/orders/generic:G00000004", headers=who[name])).json()
        listed = (await client.get("/api/orders", headers=who[name])).json()["items"][0]
        assert one["customer"]["phone"] == listed["customer"]["phone"] == shown, name
    async with runtime.db.begin() as conn:  # the order's owner sees it too, whatever their role
        stock_id = (await runtime.users.by_name("stock")).id
        await conn.execute(update(ORDERS).values(owner_user_id=stock_id))
    assert (await client.get("/api/orders/generic:G00000004", headers=who["stock"])).json()["customer"]["phone"] == full


async def test_decision_over_http_has_the_buttons_checks(client: httpx.AsyncClient, runtime: Runtime) -> None:
    who = await _people(runtime)
    await seed(client, runtime, [order_json(5, amount=Decimal("8000.00"), city="杭州")])
    approval = await _approval(runtime, "generic:G00000005")
    url = f"/api/approvals/{approval.id}/decision"
    assert (await client.post(url, json={"decision": "maybe"}, headers=who["east"])).status_code == 422
    no_reason = await client.post(url, json={"decision": "reject"}, headers=who["east"])
    assert no_reason.status_code == 422 and no_reason.json()["error"] == "reason_required"
    for name in ("south", "money"):  # wrong region, wrong role
        resp = await client.post(url, json={"decision": "approve"}, headers=who[name])
        assert resp.status_code == 403 and resp.json()["error"] == "not_allowed"
    async with runtime.db.begin() as conn:  # four-eyes: the east manager caused this request
        east_id = (await runtime.users.by_name("east")).id
        await conn.execute(update(APPROVALS).where(APPROVALS.c.id == approval.id).values(
            requested_by=f"user:{east_id}"))
    own = await client.post(url, json={"decision": "approve"}, headers=who["east"])
    assert own.status_code == 403 and own.json()["error"] == "not_allowed" and "four eyes" in own.json()["detail"]

    ok = await client.post(url, json={"decision": "approve", "reason": "ok"}, headers=who["east2"])
    assert ok.status_code == 200 and ok.json()["status"] == "approved" and ok.json()["decided_by"] == "east2"
    order = (await client.get("/api/orders/generic:G00000005", headers=who["ops"])).json()
    assert order["stage"] == "designing"
    again = await client.post(url, json={"decision": "reject", "reason": "late"}, headers=who["east2"])
    assert again.status_code == 409 and again.json()["error"] == "already_decided"
    async with runtime.db.connect() as conn:  # every copy of the card is edited by the approval_outcome row
        keys = (await conn.execute(select(OUTBOX.c.dedup_key))).scalars().all()
    assert f"approval_outcome:{approval.id}" in keys
    missing = await client.post("/api/approvals/999999/decision", json={"decision": "approve"}, headers=who["ops"])
    assert missing.status_code == 404


async def test_finance_cannot_advance_orders(client: httpx.AsyncClient, runtime: Runtime) -> None:
    who = await _people(runtime)
    await seed(client, runtime, [order_json(6, amount=Decimal("1000.00"), city="杭州")])
    resp = await client.post("/api/orders/generic:G00000006/transition", json={"to": "ordered"},
                             headers=who["money"])
    assert resp.status_code == 403
    assert (await client.get("/api/orders/generic:G00000006", headers=who["money"])).json()["stage"] == "designing"
