"""What the Telegram and WeCom full-stack tests share: a running stack and how an order enters it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.processes.chat_runtime import ChatRuntime
from bot.wiring.runtime import Runtime
from handlers.stalls import scan_stalls
from storage.models import OrderRow
from tests.conftest import SECRETS
from tests.factories import order_json, signed


async def one_row(db: AsyncEngine, table: Any, *where: Any) -> Any:
    """The one row of `table` that matches `where` (fails unless there is exactly one)."""
    async with db.connect() as conn:
        return (await conn.execute(select(table).where(*where))).one()


@dataclass
class OrderStack(ABC):
    runtime: Runtime
    chat: ChatRuntime
    client: httpx.AsyncClient
    card_id: ClassVar[str]  # the key that tells one card the platform stand-in received from another

    @abstractmethod
    def cards(self) -> list[dict[str, Any]]:
        """Every card the platform stand-in received, in the order sent."""

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

    async def stall_awaiting_approval(self, db: AsyncEngine, n: int, amount: str, city: str
                                      ) -> tuple[dict[str, Any], Any, dict[str, Any]]:
        """An order big enough to wait for an approval, whose confirmation deadline then passed an hour ago: its
        approval card, its order row and its stall card."""
        await self.post_order(n, amount, city)
        [approval_card] = self.cards()
        order = await one_row(db, OrderRow, OrderRow.external_id == f"G{n:08d}")
        await self.stall(db, order.id)
        stall_card = next(c for c in self.cards() if c[self.card_id] != approval_card[self.card_id])
        return approval_card, order, stall_card
