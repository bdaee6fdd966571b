"""`POST /api/orders/{ref}/assign` (issue 12.1): the reassign use case over HTTP, with its refusals."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy import select

from bot.wiring.runtime import Runtime
from storage.models import AuditRow, OrderRow
from tests.factories import order_json
from tests.webhooks.test_api import add_user, seed
from tests.webhooks.test_api_scoping import bearer

ORDERS, AUDIT = OrderRow.__table__, AuditRow.__table__
URL = "/api/orders/generic:G00000001/assign"


async def _owner(runtime: Runtime) -> int | None:
    async with runtime.db.connect() as conn:
        return (await conn.execute(select(ORDERS.c.owner_user_id).where(ORDERS.c.external_id == "G00000001"))
                ).scalar_one()


async def test_assign_over_http_with_its_refusals(client: httpx.AsyncClient, runtime: Runtime) -> None:
    who = {name: bearer(await add_user(runtime, name, role, regions)) for name, role, regions in (
        ("ops", "admin", []), ("east", "manager", ["华东"]), ("south", "manager", ["华南"]),
        ("stock", "supply_chain", ["华东"]), ("跟单", "supply_chain", ["华东"]), ("南跟单", "supply_chain", ["华南"]))}
    await seed(client, runtime, [order_json(1, amount=Decimal("1000.00"), city="杭州")])
    refusals = [
        ("south", URL, {"user": "跟单"}, 403, "forbidden"),  # another region's manager
        ("stock", URL, {"user": "跟单"}, 403, "forbidden"),  # staff who may act on orders, not reassign them
        ("east", URL, {"user": "无此人"}, 404, "user_not_found"),
        ("east", URL, {"user": "南跟单"}, 409, "user_not_allowed"),
        ("east", URL, {"user": "跟\x00单"}, 422, "bad_input"),
        ("east", URL, {"user": ""}, 422, "invalid_request"),
        ("east", URL, {}, 422, "invalid_request"),
        ("east", "/api/orders/" + "9" * 40 + "/assign", {"user": "跟单"}, 404, "order_not_found"),
        ("east", "/api/orders/9223372036854775808/assign", {"user": "跟单"}, 404, "order_not_found"),
    ]
    for name, url, body, status, code in refusals:
        resp = await client.post(url, json=body, headers=who[name])
        assert (resp.status_code, resp.json().get("error")) == (status, code), (name, body, resp.text)
    assert (await client.post(URL, json={"user": "跟单"})).status_code == 401
    assert await _owner(runtime) is None
    assert (await client.get("/api/orders/generic:G00000001", headers=who["ops"])).json()["owner"] is None

    resp = await client.post(URL, json={"user": "跟单"}, headers=who["east"])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"order_id": resp.json()["order_id"], "key": "generic:G00000001", "owner": "跟单",
                           "previous": None}
    assert await _owner(runtime) is not None
    shown = (await client.get("/api/orders/generic:G00000001", headers=who["ops"])).json()
    assert shown["owner"] == "跟单"  # the API names the owner too
    async with runtime.db.connect() as conn:
        [audit] = (await conn.execute(select(AUDIT).where(AUDIT.c.action == "order.assigned"))).all()
    assert (audit.actor, audit.detail["to"]) == ("east", "跟单")
