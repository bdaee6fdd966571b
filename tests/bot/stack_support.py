"""What the Telegram and WeCom full-stack tests share: a running stack and how an order enters it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.processes.chat_runtime import ChatRuntime
from bot.wiring.runtime import Runtime
from handlers.stalls import scan_stalls
from storage.models import OrderRow
from tests.conftest import SECRETS
from tests.factories import order_json, signed


@dataclass
class OrderStack:
    runtime: Runtime
    chat: ChatRuntime
    client: httpx.AsyncClient

    async def post_order(self, n: int, amount: str, city: str) -> None:
        """A signed generic-webhook order, taken in by the worker and its cards sent by the notifier."""
        body, headers = signed(SECRETS["generic"], order_json(n, amount=Decimal(amount), city=city))
        assert (await self.client.post("/webhooks/orders/generic", content=body, headers=headers)).status_code == 202
        await self.runtime.intake_worker().run(burst=True)
        await self.chat.core.notifier.run_once()

    async def stall(self, db: AsyncEngine, order_id: int) -> None:
        """The order's stage deadline an hour past, the stall scan run and its card sent."""
        async with db.begin() as conn:
            await conn.execute(update(OrderRow.__table__).where(OrderRow.__table__.c.id == order_id).values(
                stage_deadline=self.runtime.clock.now() - timedelta(hours=1)))
        assert await scan_stalls(self.chat.core.repo, self.runtime.clock)
        await self.chat.core.notifier.run_once()
