"""The staff API's backend over storage (implements webhooks.services.ApiBackend)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.approvals import Approval, Verdict
from engine.kpi import Kpis, compute_kpis
from engine.rules import RuleSet
from handlers.approvals import Deciders, decide
from handlers.chat_ports import ChatRepo, OutboxDelivery, OutboxStore, UserInfo
from handlers.notes import TrendNotes, record_note
from handlers.refunds import RefundDeps, follow_ups
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
    chat: ChatRepo | None = None  # approvals are decided over the chat core's repository (the same use case)
    delivery: OutboxDelivery | None = None  # None: the notifier's sweep edits the cards (approval_outcome rows)
    refunds: RefundDeps | None = None  # the refund use cases' dependencies (webhooks/refunds_api.py)
    owners: Any = None  # handlers.owners.OwnerStore (storage.owners.SqlOwners): POST /api/orders/{ref}/assign

    def rules(self) -> RuleSet:
        return self.current_rules()

    async def authenticate(self, token: str) -> User | None:
        return await self.users.by_token(token)

    async def add_note(self, detail: OrderDetail, text: str, author: str) -> dict[str, Any]:
        """Classified on arrival; a trend it completes is queued as an alert (see handlers.notes)."""
        ref = f"{detail.order.channel}:{detail.order.data.external_id}"
        note = await record_note(self.orders, self.trend_notes, self.outbox, self.rules(), detail.order.id, text,
                                 author, self.clock.now(), order_ref=ref)
        result = note.classification
        return {"id": note.id, "order_id": detail.order.id, "text": text, "category": result.category,
                "score": result.score, "matched": result.matched, "trends": [h.spec.id for h in note.trends],
                "candidates": list(note.candidates), "review": note.review}

    async def approvals(self, status: str, limit: int) -> list[dict[str, Any]]:
        return await self.reports.approvals(status, limit)

    async def kpis(self, since: datetime, until: datetime) -> Kpis:
        return compute_kpis(await self.reports.kpi_inputs(since, until))

    async def decide(self, approval_id: int, user: Any, verdict: Verdict, reason: str) -> dict[str, Any]:
        """The chat button's decide use case, as the bearer's own user; raises handlers.approvals.DecisionRefused."""
        assert self.chat is not None, "the API backend is wired without the chat repository"
        actor = UserInfo(user.id, user.name, user.role, tuple(user.regions))
        after = follow_ups(self.refunds) if self.refunds is not None else {}
        decided = await decide(Deciders(self.chat, self.rules(), self.delivery, after), approval_id, actor, verdict,
                               reason, self.clock.now())
        return approval_json(decided)


def approval_json(a: Approval) -> dict[str, Any]:
    return {"id": a.id, "order_id": a.order_id, "kind": a.kind, "level": a.level, "required_role": a.required_role,
            "region": a.region, "amount": str(a.amount), "status": a.status.value, "requested_by": a.requested_by,
            "requested_at": a.requested_at, "decided_by": a.decided_by, "decided_at": a.decided_at,
            "reason": a.reason, "rule_id": a.rule_id}
