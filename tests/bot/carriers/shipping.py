"""Orders taken in through the real intake and shipped with SF waybills: the starting point of the tracking tests
and of bench/tracking.py, which push carrier events for those waybills."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx

from bot.wiring.runtime import Runtime
from handlers.carriers import Party
from handlers.orders import transition
from handlers.tracking import ship
from storage.orders_repo import SqlOrders
from tests.conftest import SECRETS
from tests.factories import order_json, signed
from webhooks.app import create_app


def waybill(i: int) -> str:
    """The SF waybill `shipped_orders` gives order `i`."""
    return f"SF{1500000000000 + i}"


async def shipped_orders(rt: Runtime, n: int) -> list[str]:
    """`n` generic orders posted to the intake webhook, taken in, moved to in_production and shipped by SF from a
    Hangzhou warehouse; their waybills, in order."""
    app = create_app(rt.app_services())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        body, headers = signed(SECRETS["generic"], {"orders": [order_json(i, amount=Decimal("900.00"))
                                                                for i in range(n)]})
        assert (await client.post("/webhooks/orders/generic", content=body, headers=headers)).status_code == 202
    await rt.intake_worker().run(burst=True)
    repo, deps, now = SqlOrders(rt.db), rt.tracking_deps(), datetime.now(UTC)
    out = []
    for i in range(n):
        ref = f"generic:G{i:08d}"
        for stage in ("ordered", "in_production"):
            await transition(repo, rt.current_rules(), ref, stage, "", "ops", now)
        await ship(deps, {}, ref, "sf", waybill(i), "ops", now, Party("仓库", "", "杭州"))
        out.append(waybill(i))
    return out
