"""The staff API's backend over storage (implements webhooks.services.ApiBackend)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.kpi import Kpis, compute_kpis
from engine.rules import RuleSet
from handlers.chat_ports import OutboxStore
from handlers.notes import TrendNotes, record_note
from handlers.orders import OrderDetail
from handlers.ports import Clock
from storage.orders_repo import SqlOrders
from storage.reports_repo import SqlReports
from storage.users_repo import SqlUsers, User


@dataclass
class SqlApiBackend:
    orders: SqlOrders
    users: SqlUsers
    reports: SqlReports
    clock: Clock
    current_rules: Callable[[], RuleSet]
    trend_notes: TrendNotes
    outbox: OutboxStore
    language: str = "zh"

    def rules(self) -> RuleSet:
        return self.current_rules()

    async def authenticate(self, token: str) -> User | None:
        return await self.users.by_token(token)

    async def add_note(self, detail: OrderDetail, text: str, author: str) -> dict[str, Any]:
        """Classified on arrival; a trend it completes is queued as an alert (see handlers.notes)."""
        note = await record_note(self.orders, self.trend_notes, self.outbox, self.rules(), detail.order.id, text,
                                 author, self.clock.now())
        result = note.classification
        return {"id": note.id, "order_id": detail.order.id, "text": text, "category": result.category,
                "score": result.score, "matched": result.matched, "trends": [h.spec.id for h in note.trends]}

    async def approvals(self, status: str, limit: int) -> list[dict[str, Any]]:
        return await self.reports.approvals(status, limit)

    async def kpis(self, since: datetime, until: datetime) -> Kpis:
        return compute_kpis(await self.reports.kpi_inputs(since, until))
