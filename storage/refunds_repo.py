"""Refund rows ⇄ handlers.refunds.Refund; every step one transaction with its audit entry, the order's move, the
finance approval and the customer's message (implements handlers.refunds.RefundStore)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from engine.refunds import RefundState
from handlers.chat_ports import AuditEntry, NewOutbox
from handlers.orders import Move, announce
from handlers.outbox_kinds import approval_request
from handlers.refunds import FinanceLevel, Refund
from storage.chat_repo import SqlChatRepo
from storage.models import ApprovalRow, AuditRow, RefundRow
from storage.order_moves import apply_move
from storage.queries import fetch_all, fetch_one

REFUNDS, APPROVALS, AUDIT = RefundRow.__table__, ApprovalRow.__table__, AuditRow.__table__


class MoveNoLongerApplies(Exception):
    pass


def refund_from_row(row: Any) -> Refund:
    return Refund(
        id=row.id, order_id=row.order_id, source=row.source, source_ref=row.source_ref, amount=row.amount,
        reason=row.reason, items=tuple(row.items or ()), state=RefundState(row.state), rule_id=row.rule_id,
        decision=dict(row.decision or {}), requested_by=row.requested_by, requested_at=row.requested_at,
        updated_at=row.updated_at, decided_at=row.decided_at, automatic=bool(row.automatic),
        approval_id=row.approval_id, proof=row.proof, notify_platform=row.notify_platform,
        notify_chat_id=row.notify_chat_id)


def _values(r: Refund) -> dict[str, Any]:
    return {"order_id": r.order_id, "source": r.source, "source_ref": r.source_ref, "amount": r.amount,
            "reason": r.reason, "items": list(r.items), "state": r.state.value, "rule_id": r.rule_id,
            "decision": r.decision, "requested_by": r.requested_by, "requested_at": r.requested_at,
            "decided_at": r.decided_at, "automatic": r.automatic, "approval_id": r.approval_id, "proof": r.proof,
            "notify_platform": r.notify_platform, "notify_chat_id": r.notify_chat_id, "updated_at": r.updated_at}


class SqlRefunds(SqlChatRepo):
    """Refunds over the chat core's repository (its order reads, outbox and audit helpers)."""

    async def _one(self, *cond: Any) -> Refund | None:
        return await fetch_one(self.engine, select(REFUNDS).where(*cond), refund_from_row)

    async def refund(self, refund_id: int) -> Refund | None:
        return await self._one(REFUNDS.c.id == refund_id)

    async def by_source(self, source: str, source_ref: str) -> Refund | None:
        return await self._one(REFUNDS.c.source == source, REFUNDS.c.source_ref == source_ref)

    async def by_approval(self, approval_id: int) -> Refund | None:
        return await self._one(REFUNDS.c.approval_id == approval_id)

    async def waiting_proof_for_chat(self, platform: str, chat_id: str) -> Refund | None:
        return await fetch_one(self.engine, select(REFUNDS).where(
            REFUNDS.c.state == RefundState.WAITING_PROOF.value, REFUNDS.c.notify_platform == platform,
            REFUNDS.c.notify_chat_id == chat_id).order_by(REFUNDS.c.id.desc()).limit(1), refund_from_row)

    async def of_order(self, order_id: int) -> list[Refund]:
        return await fetch_all(self.engine, select(REFUNDS).where(REFUNDS.c.order_id == order_id)
            .order_by(REFUNDS.c.id), refund_from_row)

    async def refunds(self, state: str | None, limit: int) -> list[Refund]:
        q = select(REFUNDS).order_by(REFUNDS.c.id.desc()).limit(limit)
        if state:
            q = q.where(REFUNDS.c.state == state)
        return await fetch_all(self.engine, q, refund_from_row)

    async def history(self, refund_id: int) -> list[dict[str, Any]]:
        refund = await self.refund(refund_id)
        if refund is None:
            return []
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(AUDIT).where(
                AUDIT.c.subject.in_([f"refund:{refund_id}", f"order:{refund.order_id}"]),
                AUDIT.c.action.like("refund.%")).order_by(AUDIT.c.id))).all()
        out = []
        for r in rows:
            d = dict(r.detail or {})
            if r.subject.startswith("order:") and d.get("refund_id") != refund_id:
                continue
            out.append({"at": r.at, "by": r.actor, "action": r.action, **d})
        return out

    async def save(self, refund: Refund, *, expected: RefundState | None, now: datetime, audit: AuditEntry,
                   move: Move | None = None, finance: Sequence[FinanceLevel] = (),
                   outbox: Callable[[Refund], Sequence[NewOutbox]] = lambda r: (),
                   card: Callable[[Refund], Sequence[tuple[str, str]]] = lambda r: ()) -> Refund | None:
        announced: list[dict[str, Any]] = []
        try:
            async with self.engine.begin() as conn:
                if expected is None:
                    new_id = (await conn.execute(insert(REFUNDS).values(**_values(refund))
                                                 .returning(REFUNDS.c.id))).scalar_one()
                    stored = Refund(**{**{f: getattr(refund, f) for f in Refund.__slots__}, "id": int(new_id)})
                    audit = AuditEntry(audit.actor, audit.action, audit.subject, {**audit.detail, "refund_id": new_id})
                else:
                    vals = _values(refund)
                    for k in ("order_id", "source", "source_ref", "requested_at", "requested_by"):
                        vals.pop(k)
                    res = await conn.execute(update(REFUNDS).where(
                        REFUNDS.c.id == refund.id, REFUNDS.c.state == expected.value).values(**vals))
                    if res.rowcount != 1:
                        return None
                    stored = refund
                if move is not None and not await apply_move(conn, move, now, announced):
                    raise MoveNoLongerApplies()
                if finance:
                    stored = await self._finance(conn, stored, finance, now, [list(f) for f in card(stored)])
                await self._audit(conn, audit, now)
                await self._enqueue(conn, outbox(stored), now)
            await announce(self.events, announced)  # a refund's cancellation reaches every open board
            return stored
        except MoveNoLongerApplies:
            return None
        except IntegrityError:
            if expected is None and refund.source_ref is not None:
                return None  # the same (source, source_ref) stored meanwhile
            raise

    async def _finance(self, conn: Any, refund: Refund, levels: Sequence[FinanceLevel], now: datetime,
                       fields: list[list[str]]) -> Refund:
        """The refund's finance approval: one row per level, bound to the refund (order_version `refund:<id>`);
        the first level's card goes out now, the next when the one below is approved (handlers.approvals)."""
        first_id: int | None = None
        lowest = min(lv.level for lv in levels)
        for lv in sorted(levels, key=lambda x: x.level):
            escalate = now + lv.escalate_after if lv.escalate_after and lv.level == lowest else None
            aid = (await conn.execute(insert(APPROVALS).values(
                order_id=refund.order_id, kind="refund", level=lv.level, required_role=lv.role, region=lv.region,
                amount=refund.amount, order_version=f"refund:{refund.id}", rule_id=lv.rule_id, status="pending",
                requested_by=refund.requested_by, requested_at=now, escalate_at=escalate, escalation_level=0,
                reason="").returning(APPROVALS.c.id))).scalar_one()
            if lv.level == lowest:
                if first_id is None:
                    first_id = int(aid)
                await self._enqueue(conn, [approval_request(int(aid), refund.order_id, now, role=lv.role,
                                                            region=lv.region, refund_id=refund.id, fields=fields)],
                                    now)
        await conn.execute(update(REFUNDS).where(REFUNDS.c.id == refund.id).values(approval_id=first_id))
        return Refund(**{**{f: getattr(refund, f) for f in Refund.__slots__}, "approval_id": first_id})
