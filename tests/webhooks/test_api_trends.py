"""Notes through the API: five 物流延迟 notes in a row at one production base make exactly one trend alert for
supply chain; the sixth of the same run makes none."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy import select

from bot.wiring.runtime import Runtime
from storage.models import OrderRow, OutboxRow
from tests.factories import order_json
from tests.webhooks.test_api import add_user, seed

OUTBOX = OutboxRow.__table__


async def test_five_delay_notes_make_one_trend_alert(client: httpx.AsyncClient, runtime: Runtime) -> None:
    admin = {"Authorization": f"Bearer {await add_user(runtime, 'ops', 'admin')}"}
    await seed(client, runtime, [order_json(i, amount=Decimal("1000.00"), city="杭州") for i in range(6)])
    async with runtime.db.connect() as conn:
        bases = set((await conn.execute(select(OrderRow.__table__.c.production_base))).scalars())
    assert len(bases) == 1 and None not in bases  # routed to one base: one group for the per-base trend

    fired = []
    for i in range(6):
        resp = await client.post(f"/api/orders/generic:G{i:08d}/notes", json={"text": "快递三天没有更新"}, headers=admin)
        assert resp.status_code == 201 and resp.json()["category"] == "logistics_delay"
        fired.append(resp.json()["trends"])
    assert fired == [[], [], [], [], ["five-in-a-row-per-base"], []]

    async with runtime.db.connect() as conn:
        rows = (await conn.execute(select(OUTBOX).where(OUTBOX.c.kind == "trend_alert"))).all()
    to_supply_chain = [r for r in rows if r.recipient_role == "supply_chain"]
    assert len(to_supply_chain) == 1
    payload = to_supply_chain[0].payload
    assert payload["category_zh"] == "物流延迟" and payload["count"] == 5
    assert payload["orders"] == [f"generic:G{i:08d}" for i in range(5)]
