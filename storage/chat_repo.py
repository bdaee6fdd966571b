"""The chat core's storage: rows ⇄ `handlers.chat_ports` / `engine` dataclasses, on the async engine.

Every write that must be atomic is one transaction here (a decision with its order move, audit entry and outbox
rows); every "first one wins" is a compare-and-set `UPDATE ... WHERE status = 'pending'` whose row count says who
won. Works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from engine.approvals import Approval, Decided, Status
from engine.stages import END_STATES, Stage
from handlers.chat import ChatRef
from handlers.chat_ports import (
    AuditEntry,
    AwaitingReason,
    Identity,
    NewOutbox,
    ChatOrderView,
    OutboxItem,
    StageMove,
    UserInfo,
)
from handlers.orders import OrderEvents, announce
from storage.models import (
    ApprovalRow,
    AuditRow,
    AwaitedReasonRow,
    ChatIdentityRow,
    LinkCodeRow,
    MessageRefRow,
    OrderAccessRow,
    OrderRow,
    OutboxRow,
    StageTransitionRow,
    StallAckRow,
    UserRow,
)
from storage.alert_groups_repo import SqlAlertGroups, insert_ignore, outbox_item
from storage.order_moves import apply_move
from storage.orders_repo import OWNER_NAME, SqlOrders, order_from_row
from storage.outbox_rows import outbox_values
from storage.queries import fetch_all, fetch_one

ORDERS, APPROVALS, OUTBOX, REFS = OrderRow.__table__, ApprovalRow.__table__, OutboxRow.__table__, MessageRefRow.__table__
USERS, IDENTITIES, AUDIT, TRANSITIONS = (UserRow.__table__, ChatIdentityRow.__table__, AuditRow.__table__,
                                         StageTransitionRow.__table__)
LINK_CODES, ACCESS, ACKS, REASONS = (LinkCodeRow.__table__, OrderAccessRow.__table__, StallAckRow.__table__,
                                     AwaitedReasonRow.__table__)
_OPEN = [s.value for s in Stage if s not in END_STATES]
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are typed by people


def _user(row: Any) -> UserInfo:
    return UserInfo(row.id, row.name, row.role, tuple(row.regions or ()), row.phone, row.supervisor_id, row.email,
                    row.quiet_hours)


def _approval(row: Any) -> Approval:
    return Approval(
        id=row.id, order_id=row.order_id, kind=row.kind, level=row.level, required_role=row.required_role,
        region=row.region, amount=row.amount, order_version=row.order_version, status=Status(row.status),
        requested_by=row.requested_by, requested_at=row.requested_at, escalate_at=row.escalate_at,
        escalation_level=row.escalation_level, rule_id=row.rule_id, decided_by=row.decided_by,
        decided_at=row.decided_at, reason=row.reason or "",
    )


def _view(row: Any, rank: tuple[int, int] | None = None) -> ChatOrderView:
    return ChatOrderView(order=order_from_row(row), version=row.payload_hash, tracking=row.tracking,
                     owner_user_id=row.owner_user_id, snoozed_until=row.snoozed_until, completed_at=row.completed_at,
                     flagged=bool(row.flagged), rank=rank, owner_name=row._mapping.get("owner_name"),
                     production_base=row.production_base)


_item = outbox_item
_UNCLAIMED: dict[str, Any] = {"claimed_by": None, "claimed_until": None}  # a marked row is free again


def _hash_code(code: str) -> str:
    normal = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()


def _phone_variants(phone: str) -> list[str]:
    """Exact forms a stored phone may take; never a suffix match (that would reach other people's numbers)."""
    return [phone, "+86" + phone, "86" + phone, "+86 " + phone, "+86-" + phone]


class SqlChatRepo(SqlAlertGroups, SqlOrders):
    """Implements `handlers.chat_ports.ChatRepo` (its order reads and the one move are `SqlOrders`')."""

    def __init__(self, engine: AsyncEngine, events: OrderEvents | None = None) -> None:
        super().__init__(engine, events)

    def _insert_ignore(self, table: Any, index: list[str]) -> Any:
        return insert_ignore(self.engine, table, index)

    # --- users and identities -------------------------------------------------------------------------------------

    async def user(self, user_id: int) -> UserInfo | None:
        return await fetch_one(self.engine, select(USERS).where(USERS.c.id == user_id, USERS.c.active.is_(True)), _user)

    async def user_by_identity(self, platform: str, external_id: str) -> UserInfo | None:
        return await fetch_one(self.engine, select(USERS).join(IDENTITIES, IDENTITIES.c.user_id == USERS.c.id).where(
            IDENTITIES.c.platform == platform, IDENTITIES.c.external_id == str(external_id), USERS.c.active.is_(True)),
            _user)

    async def users_with_role(self, role: str, region: str | None) -> list[UserInfo]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(USERS).where(USERS.c.role == role, USERS.c.active.is_(True)).order_by(USERS.c.id))).all()
        users = [_user(r) for r in rows]
        return users if region is None else [u for u in users if region in u.regions]

    async def identities_of(self, user_ids: Sequence[int]) -> list[Identity]:
        if not user_ids:
            return []
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(IDENTITIES).where(IDENTITIES.c.user_id.in_(list(user_ids))).order_by(IDENTITIES.c.id))).all()
        return [Identity(r.user_id, r.platform, r.external_id, r.chat_id, r.verified_phone) for r in rows]

    async def create_link_code(self, user_id: int, now: datetime, ttl: timedelta = timedelta(days=3)) -> str:
        """A one-time code for `/link CODE`, shown once (e.g. by the CLI); only its hash is stored."""
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        async with self.engine.begin() as conn:
            await conn.execute(insert(LINK_CODES).values(code_hash=_hash_code(raw), user_id=user_id, created_at=now,
                                                         expires_at=now + ttl))
        return f"{raw[:4]}-{raw[4:]}"

    async def redeem_link_code(self, code: str, platform: str, external_id: str, chat_id: str,
                               now: datetime) -> UserInfo | None:
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(LINK_CODES).where(LINK_CODES.c.code_hash == _hash_code(code)))).first()
            if row is None or row.used_at is not None or row.expires_at <= now:
                return None
            used = await conn.execute(update(LINK_CODES).where(
                LINK_CODES.c.id == row.id, LINK_CODES.c.used_at.is_(None)).values(
                used_at=now, used_by=f"{platform}:{external_id}"))
            if used.rowcount != 1:
                return None  # redeemed by someone else a moment ago
            user = (await conn.execute(select(USERS).where(USERS.c.id == row.user_id))).first()
            if user is None:
                return None
            await conn.execute(delete(IDENTITIES).where(
                IDENTITIES.c.platform == platform, IDENTITIES.c.external_id == str(external_id)))
            await conn.execute(insert(IDENTITIES).values(user_id=user.id, platform=platform,
                                                         external_id=str(external_id), chat_id=str(chat_id),
                                                         linked_at=now))
            await self._audit(conn, AuditEntry(user.name, "identity.linked", f"user:{user.id}",
                                               {"platform": platform, "external_id": str(external_id)}), now)
        return _user(user)

    async def link_customer_phone(self, platform: str, external_id: str, chat_id: str, phone: str,
                                  display_name: str, now: datetime) -> UserInfo:
        """Record a phone the platform verified as the sender's; an unknown sender becomes a customer user."""
        external_id = str(external_id)
        async with self.engine.begin() as conn:
            ident = (await conn.execute(select(IDENTITIES).where(
                IDENTITIES.c.platform == platform, IDENTITIES.c.external_id == external_id))).first()
            if ident is not None:
                await conn.execute(update(IDENTITIES).where(IDENTITIES.c.id == ident.id).values(
                    verified_phone=phone, chat_id=str(chat_id)))
                user = (await conn.execute(select(USERS).where(USERS.c.id == ident.user_id))).first()
                return _user(user)
            name = f"{platform}:{external_id}"
            res = await conn.execute(insert(USERS).values(name=name, role="customer", regions=[], phone=phone,
                                                          created_at=now, active=True))
            user_id = res.inserted_primary_key[0]
            await conn.execute(insert(IDENTITIES).values(user_id=user_id, platform=platform, external_id=external_id,
                                                         chat_id=str(chat_id), verified_phone=phone, linked_at=now))
        return UserInfo(user_id, name, "customer", (), phone)

    async def verified_phone(self, platform: str, external_id: str) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(IDENTITIES.c.verified_phone).where(
                IDENTITIES.c.platform == platform, IDENTITIES.c.external_id == str(external_id)))).scalar()

    async def grant_order_access(self, platform: str, external_id: str, chat_id: str, order_id: int,
                                 now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(self._insert_ignore(ACCESS, ["platform", "external_id", "order_id"]).values(
                platform=platform, external_id=str(external_id), chat_id=str(chat_id), order_id=order_id,
                granted_at=now))

    async def granted_order_ids(self, platform: str, external_id: str) -> set[int]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(ACCESS.c.order_id).where(
                ACCESS.c.platform == platform, ACCESS.c.external_id == str(external_id)))).all()
        return {r.order_id for r in rows}

    # --- orders ---------------------------------------------------------------------------------------------------

    async def _orders(self, *conds: Any, order_by: Any = None, limit: int = 1000) -> list[ChatOrderView]:
        async with self.engine.connect() as conn:
            order = order_by if isinstance(order_by, tuple) else (order_by if order_by is not None else ORDERS.c.id,)
            rows = (await conn.execute(select(ORDERS, OWNER_NAME).where(*conds).order_by(*order).limit(limit))).all()
        return [_view(r) for r in rows]

    async def order(self, order_id: int) -> ChatOrderView | None:
        """One order, with its rank among the open orders (the "前 10 %" of staff cards) when it is open."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(ORDERS, OWNER_NAME).where(ORDERS.c.id == order_id))).first()
            if row is None:
                return None
            if row.stage not in _OPEN:
                return _view(row)
            counts = (await conn.execute(select(
                func.count(), func.count().filter(ORDERS.c.priority > row.priority)).where(
                ORDERS.c.stage.in_(_OPEN)))).one()
        return _view(row, (int(counts[1]), int(counts[0])))

    async def order_by_ref(self, ref: str, *, external_only: bool = False) -> ChatOrderView | None:
        ref = ref.strip()
        if not ref:
            return None
        if ref.isdigit() and not external_only:
            found = await self.order(int(ref))
            if found:
                return found
        channel, sep, ext = ref.partition(":")
        if sep and channel and ext:
            found_list = await self._orders(ORDERS.c.channel == channel, ORDERS.c.external_id == ext, limit=2)
        else:
            found_list = await self._orders(ORDERS.c.external_id == ref, limit=2)
        if len(found_list) != 1:
            return None  # ambiguous across channels: ask for channel:id
        return await self.order(found_list[0].order.id) or found_list[0]

    async def orders_by_phone(self, phone: str, limit: int = 50) -> list[ChatOrderView]:
        if len(phone) < 7:
            return []
        return await self._orders(ORDERS.c.customer_phone.in_(_phone_variants(phone)),
                                  order_by=ORDERS.c.created_at.desc(), limit=limit)

    async def orders_by_ids(self, ids: Sequence[int]) -> list[ChatOrderView]:
        return await self._orders(ORDERS.c.id.in_(list(ids)), limit=len(ids)) if ids else []

    async def overdue_orders(self, now: datetime, *, after: tuple[datetime, int] | None = None,
                             limit: int = 1000) -> list[ChatOrderView]:
        conds = [ORDERS.c.stage.in_(_OPEN), ORDERS.c.stage_deadline.is_not(None), ORDERS.c.stage_deadline < now]
        if after is not None:  # keyset paging: strictly after the previous page's last (deadline, id)
            deadline, last_id = after
            conds.append(or_(ORDERS.c.stage_deadline > deadline,
                             and_(ORDERS.c.stage_deadline == deadline, ORDERS.c.id > last_id)))
        return await self._orders(*conds, order_by=(ORDERS.c.stage_deadline, ORDERS.c.id), limit=limit)

    async def stalled(self, now: datetime, *, city: str | None = None, stage: Stage | None = None,
                      limit: int = 1000) -> list[ChatOrderView]:
        conds = [ORDERS.c.stage.in_(_OPEN), ORDERS.c.stage_deadline.is_not(None), ORDERS.c.stage_deadline < now]
        if city:
            conds.append(ORDERS.c.customer_city == city)
        if stage is not None:
            conds.append(ORDERS.c.stage == stage.value)
        return await self._orders(*conds, order_by=ORDERS.c.stage_deadline, limit=limit)

    async def search(self, text: str, limit: int = 20) -> list[ChatOrderView]:
        q = text.strip().replace("\\", "").replace("%", "").replace("_", "")
        if not q:
            return []
        like = f"%{q}%"
        cond = or_(ORDERS.c.external_id.ilike(like), ORDERS.c.customer_name.ilike(like),
                   ORDERS.c.customer_city == q, ORDERS.c.customer_id == q, ORDERS.c.notes.ilike(like),
                   ORDERS.c.work_order_no == q)
        if q.isdigit() and len(q) >= 4:
            cond = or_(cond, ORDERS.c.customer_phone.like(f"%{q}"))
        return await self._orders(cond, order_by=ORDERS.c.id.desc(), limit=limit)

    async def top_orders(self, limit: int = 200) -> list[ChatOrderView]:
        return await self._orders(ORDERS.c.stage.in_(_OPEN), ORDERS.c.flagged.is_(True),
                                  order_by=(ORDERS.c.priority.desc(), ORDERS.c.id), limit=limit)

    # --- approvals ------------------------------------------------------------------------------------------------

    async def approval(self, approval_id: int) -> Approval | None:
        return await fetch_one(self.engine, select(APPROVALS).where(APPROVALS.c.id == approval_id), _approval)

    async def approvals_of_order(self, order_id: int) -> list[Approval]:
        return await fetch_all(self.engine, select(APPROVALS).where(APPROVALS.c.order_id == order_id)
            .order_by(APPROVALS.c.id), _approval)

    async def pending_approvals(self, limit: int = 200) -> list[Approval]:
        return await fetch_all(self.engine, select(APPROVALS).where(APPROVALS.c.status == "pending")
            .order_by(APPROVALS.c.requested_at, APPROVALS.c.id).limit(limit), _approval)

    async def due_escalations(self, now: datetime, limit: int = 200) -> list[Approval]:
        return await fetch_all(self.engine, select(APPROVALS).where(
            APPROVALS.c.status == "pending", APPROVALS.c.escalate_at.is_not(None),
            APPROVALS.c.escalate_at <= now).order_by(APPROVALS.c.escalate_at).limit(limit), _approval)

    async def apply_decision(self, decided: Decided, *, move: StageMove | None, outbox: Sequence[NewOutbox],
                             audit: AuditEntry, now: datetime, supersede_ids: Sequence[int] = (),
                             reschedule: Sequence[tuple[int, datetime | None]] = ()) -> bool:
        a = decided.approval
        announced: list[dict[str, Any]] = []
        async with self.engine.begin() as conn:
            res = await conn.execute(update(APPROVALS).where(
                APPROVALS.c.id == a.id, APPROVALS.c.status == decided.expected_status.value).values(
                status=a.status.value, decided_by=a.decided_by, decided_at=a.decided_at, reason=a.reason))
            if res.rowcount != 1:
                return False  # someone else decided first
            if supersede_ids:
                await conn.execute(update(APPROVALS).where(
                    APPROVALS.c.id.in_(list(supersede_ids)), APPROVALS.c.status == "pending").values(
                    status="superseded", decided_by="system", decided_at=now, reason=f"order decided by {a.id}"))
            for approval_id, escalate_at in reschedule:  # a next level's clock starts when its card goes out
                await conn.execute(update(APPROVALS).where(
                    APPROVALS.c.id == approval_id, APPROVALS.c.status == "pending").values(escalate_at=escalate_at))
            if move is not None:  # False: the order moved meanwhile; the decision stands, no move
                await apply_move(conn, move, now, announced)
            await self._audit(conn, audit, now)
            await self._enqueue(conn, outbox, now)
            region = (await conn.execute(select(ORDERS.c.region).where(ORDERS.c.id == a.order_id))).scalar()
        announced.insert(0, {"kind": "decided", "order_id": a.order_id, "approval_id": a.id,
                             "status": a.status.value, "region": region, "by": a.decided_by})
        await announce(self.events, announced)
        return True

    async def apply_escalation(self, escalated: Approval, *, expected_level: int, outbox: Sequence[NewOutbox],
                               now: datetime) -> bool:
        async with self.engine.begin() as conn:
            res = await conn.execute(update(APPROVALS).where(
                APPROVALS.c.id == escalated.id, APPROVALS.c.status == "pending",
                APPROVALS.c.escalation_level == expected_level).values(
                escalation_level=escalated.escalation_level, escalate_at=escalated.escalate_at))
            if res.rowcount != 1:
                return False
            await self._audit(conn, AuditEntry("system", "approval.escalated", f"order:{escalated.order_id}",
                                               {"approval_id": escalated.id,
                                                "level": escalated.escalation_level}), now)
            await self._enqueue(conn, outbox, now)
        return True

    async def await_reason(self, pending: AwaitingReason) -> None:
        key = (REASONS.c.platform == pending.platform, REASONS.c.user_external_id == str(pending.user_external_id),
               REASONS.c.chat_id == str(pending.chat_id))
        async with self.engine.begin() as conn:
            await conn.execute(delete(REASONS).where(*key))
            await conn.execute(insert(REASONS).values(
                approval_id=pending.approval_id, platform=pending.platform,
                user_external_id=str(pending.user_external_id), chat_id=str(pending.chat_id),
                prompt_message_id=pending.prompt_message_id, created_at=pending.created_at))

    async def take_awaiting_reason(self, platform: str, user_external_id: str, chat_id: str) -> AwaitingReason | None:
        key = (REASONS.c.platform == platform, REASONS.c.user_external_id == str(user_external_id),
               REASONS.c.chat_id == str(chat_id))
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(REASONS).where(*key))).first()
            if row is None:
                return None
            gone = await conn.execute(delete(REASONS).where(REASONS.c.id == row.id))
            if gone.rowcount != 1:
                return None
        return AwaitingReason(row.approval_id, row.platform, row.user_external_id, row.chat_id,
                              row.prompt_message_id, row.created_at)

    # --- outbox and message references ----------------------------------------------------------------------------

    async def _enqueue(self, conn: AsyncConnection, items: Sequence[NewOutbox], now: datetime) -> list[int]:
        ids: list[int] = []
        for it in items:
            stmt = self._insert_ignore(OUTBOX, ["dedup_key"]).values(outbox_values(it, now)).returning(OUTBOX.c.id)
            new_id = (await conn.execute(stmt)).scalar()
            if new_id is not None:
                ids.append(int(new_id))
        return ids

    async def enqueue(self, items: Sequence[NewOutbox], now: datetime) -> list[int]:
        async with self.engine.begin() as conn:
            return await self._enqueue(conn, items, now)

    async def existing_keys(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(OUTBOX.c.dedup_key).where(OUTBOX.c.dedup_key.in_(list(keys))))).all()
        return {r.dedup_key for r in rows}

    async def outbox_ids_for_keys(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(OUTBOX.c.id).where(OUTBOX.c.dedup_key.in_(list(keys)))
                                       .order_by(OUTBOX.c.id))).all()
        return [r.id for r in rows]

    async def outbox_item(self, outbox_id: int) -> OutboxItem | None:
        return await fetch_one(self.engine, select(OUTBOX).where(OUTBOX.c.id == outbox_id), _item)

    async def due_outbox(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        return await fetch_all(self.engine, select(OUTBOX).where(OUTBOX.c.status == "pending", OUTBOX.c.due_at <= now)
            .order_by(OUTBOX.c.due_at, OUTBOX.c.id).limit(limit), _item)

    async def claim_outbox(self, outbox_id: int, owner: str, now: datetime, until: datetime) -> OutboxItem | None:
        """One UPDATE … RETURNING (SQLite >= 3.35, PostgreSQL): the database decides which process holds the row."""
        free = or_(OUTBOX.c.claimed_until.is_(None), OUTBOX.c.claimed_until < now, OUTBOX.c.claimed_by == owner)
        stmt = (update(OUTBOX).where(OUTBOX.c.id == outbox_id, OUTBOX.c.status == "pending", free)
                .values(claimed_by=owner, claimed_until=until).returning(*OUTBOX.c))
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).first()
        return _item(row) if row else None

    async def _refs(self, cond: Any) -> list[ChatRef]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(REFS).where(cond).order_by(REFS.c.id))).all()
        return [ChatRef(r.platform, r.chat_id, r.message_id) for r in rows]

    async def refs_of_outbox(self, outbox_id: int) -> list[ChatRef]:
        return await self._refs(REFS.c.outbox_id == outbox_id)

    async def refs_of_approval(self, approval_id: int) -> list[ChatRef]:
        return await self._refs(REFS.c.approval_id == approval_id)

    async def record_sent(self, outbox_id: int, approval_id: int | None, ref: ChatRef, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(self._insert_ignore(REFS, ["platform", "chat_id", "message_id"]).values(
                outbox_id=outbox_id, approval_id=approval_id, platform=ref.platform, chat_id=str(ref.chat_id),
                message_id=str(ref.message_id), sent_at=now))

    async def mark_sent(self, outbox_id: int, now: datetime, error: str | None = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(OUTBOX).where(OUTBOX.c.id == outbox_id).values(
                status="sent", sent_at=now, attempts=OUTBOX.c.attempts + 1, last_error=error, **_UNCLAIMED))

    async def mark_retry(self, outbox_id: int, due_at: datetime, error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(OUTBOX).where(OUTBOX.c.id == outbox_id).values(
                due_at=due_at, attempts=OUTBOX.c.attempts + 1, last_error=error, **_UNCLAIMED))

    async def mark_failed(self, outbox_id: int, error: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(OUTBOX).where(OUTBOX.c.id == outbox_id).values(
                status="failed", attempts=OUTBOX.c.attempts + 1, last_error=error, **_UNCLAIMED))

    # --- stalls ---------------------------------------------------------------------------------------------------

    async def acked_stages(self, order_ids: Sequence[int]) -> dict[int, str]:
        if not order_ids:
            return {}
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(ACKS.c.order_id, ACKS.c.stage).join(
                ORDERS, and_(ORDERS.c.id == ACKS.c.order_id, ORDERS.c.stage == ACKS.c.stage)).where(
                ACKS.c.order_id.in_(list(order_ids))))).all()
        return {r.order_id: r.stage for r in rows}

    async def acknowledge(self, order_id: int, stage: Stage, actor: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(self._insert_ignore(ACKS, ["order_id", "stage"]).values(
                order_id=order_id, stage=stage.value, acked_by=actor, acked_at=now))
            await self._audit(conn, AuditEntry(actor, "stall.acknowledged", f"order:{order_id}",
                                               {"stage": stage.value}), now)

    async def snooze(self, order_id: int, until: datetime, actor: str, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(ORDERS).where(ORDERS.c.id == order_id).values(snoozed_until=until))
            await self._audit(conn, AuditEntry(actor, "stall.snoozed", f"order:{order_id}",
                                               {"until": until.isoformat()}), now)

    # --- audit ----------------------------------------------------------------------------------------------------

    async def _audit(self, conn: AsyncConnection, entry: AuditEntry, now: datetime) -> None:
        await conn.execute(insert(AUDIT).values(at=now, actor=entry.actor, action=entry.action,
                                                subject=entry.subject, detail=dict(entry.detail)))

    async def audit(self, entry: AuditEntry, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await self._audit(conn, entry, now)
