"""The staff API's backend over storage (implements webhooks.services.ApiBackend)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.anomaly import categories_from_rules, classify
from engine.kpi import Kpis, compute_kpis
from engine.rules import RuleSet
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
    language: str = "zh"

    def rules(self) -> RuleSet:
        return self.current_rules()

    async def authenticate(self, token: str) -> User | None:
        return await self.users.by_token(token)

    async def add_note(self, detail: OrderDetail, text: str, author: str) -> dict[str, Any]:
        rules = self.rules()
        result = classify(text, categories_from_rules(rules.anomaly_categories, rules.model.anomalies.threshold))
        note_id = await self.orders.add_note(detail.order.id, text, author, result.category, result.score,
                                             self.clock.now())
        return {"id": note_id, "order_id": detail.order.id, "text": text, "category": result.category,
                "score": result.score, "matched": result.matched}

    async def approvals(self, status: str, limit: int) -> list[dict[str, Any]]:
        return await self.reports.approvals(status, limit)

    async def kpis(self, since: datetime, until: datetime) -> Kpis:
        return compute_kpis(await self.reports.kpi_inputs(since, until))
