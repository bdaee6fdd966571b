"""What the Telegram and WeCom full-stack tests share: a running stack and how an order enters it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import httpx

from bot.processes.chat_runtime import ChatRuntime
from bot.wiring.runtime import Runtime
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
