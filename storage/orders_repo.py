"""Order reads and moves for the API and chat: rows ⇄ engine dataclasses, compare-and-set stage moves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.approvals import gates_confirmation
from engine.order import Customer, Item, Order, OrderData, Transition
from engine.stages import Stage
from handlers.orders import Move, OrderDetail, OrderEvents, OrderQuery, announce
from storage.models import ApprovalRow, ExceptionNoteRow, OrderRow, StageTransitionRow, UserRow
from storage.order_moves import apply_move

ORDERS, TRANSITIONS, APPROVALS, NOTES = (OrderRow.__table__, StageTransitionRow.__table__, ApprovalRow.__table__,
                                         ExceptionNoteRow.__table__)
_OWNERS = UserRow.__table__.alias("owner")
# the owner's name beside each order row (cards and the API name the owner)
OWNER_NAME = (select(_OWNERS.c.name).where(_OWNERS.c.id == ORDERS.c.owner_user_id).scalar_subquery()
              .label("owner_name"))


def order_from_row(row: Any, history: list[Transition] | None = None) -> Order:
    """The one place an orders row becomes an engine Order (model_construct: the row was validated on intake)."""
    data = OrderData.model_construct(
        external_id=row.external_id,
        channel=row.channel,
        created_at=row.created_at,
        customer=Customer.model_construct(id=row.customer_id, name=row.customer_name, phone=row.customer_phone,
                                          city=row.customer_city, tier=row.customer_tier),
        items=[Item.model_validate(i) for i in row.items],
        amount=row.amount,
        currency=row.currency,
        custom_fields=row.custom_fields or {},
        notes=row.notes or "",
    )
    return Order(id=row.id, channel=row.channel, data=data, stage=Stage(row.stage),
                 stage_entered_at=row.stage_entered_at, stage_deadline=row.stage_deadline, region=row.region,
                 priority=row.priority, history=history or [])


def transition_from_row(t: Any) -> Transition:
    return Transition(t.at, Stage(t.from_stage) if t.from_stage else None, Stage(t.to_stage), t.actor, t.reason)


def parse_ref(ref: str) -> Any:
    """`123` (internal id) or `channel:external_id`. An id beyond the column's 32-bit range (or a non-ASCII digit)
    matches nothing rather than failing in the driver."""
    if ref.isdigit():
        if not ref.isascii() or len(ref) > 10 or int(ref) > 2**31 - 1:
            return ORDERS.c.id == -1
        return ORDERS.c.id == int(ref)
    channel, sep, external_id = ref.partition(":")
    if not sep:
        return ORDERS.c.id == -1
    return and_(ORDERS.c.channel == channel, ORDERS.c.external_id == external_id)


class SqlOrders:
    """`handlers.orders.OrderStore`. `events` hears every committed move (and, in SqlChatRepo, decision); the
    composition root passes the board's Redis feed, `None` only where nothing is moved (tests/test_architecture.py)."""

    def __init__(self, engine: AsyncEngine, events: OrderEvents | None = None) -> None:
        self.engine = engine
        self.events = events

    async def get(self, ref: str, *, with_history: bool = True) -> OrderDetail | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(ORDERS, OWNER_NAME).where(parse_ref(ref)))).first()
            if row is None:
                return None
            history: list[Transition] = []
            notes: list[dict[str, Any]] = []
            if with_history:
                history = [
                    transition_from_row(t)
                    for t in (await conn.execute(
                        select(TRANSITIONS).where(TRANSITIONS.c.order_id == row.id).order_by(TRANSITIONS.c.id)
                    )).all()
                ]
                notes = [
                    {"id": n.id, "at": n.at, "author": n.author, "text": n.text, "category": n.category,
                     "kind": n.kind}
                    for n in (await conn.execute(
                        select(NOTES).where(NOTES.c.order_id == row.id).order_by(NOTES.c.id))).all()
                ]
            kinds = (await conn.execute(select(APPROVALS.c.kind).where(
                APPROVALS.c.order_id == row.id, APPROVALS.c.status == "pending"))).scalars().all()
        confirmations = sum(1 for k in kinds if gates_confirmation(k))
        return self._detail(row, history, len(kinds), notes, confirmations)

    @staticmethod
    def _detail(row: Any, history: list[Transition], pending: int = 0,
                notes: list[dict[str, Any]] | None = None, confirmations: int = 0) -> OrderDetail:
        return OrderDetail(
            order=order_from_row(row, history), payload_hash=row.payload_hash, received_at=row.received_at,
            updated_at=row.updated_at, production_base=row.production_base, work_order_no=row.work_order_no,
            tracking=row.tracking, flagged=row.flagged, decisions=row.decisions, rules_version=row.rules_version,
            completed_at=row.completed_at, pending_approvals=pending, pending_confirmations=confirmations,
            owner_user_id=row.owner_user_id, owner_name=row._mapping.get("owner_name"), notes=notes or [],
        )

    async def list(self, query: OrderQuery) -> tuple[int, list[OrderDetail]]:
        conds = []
        if query.stage is not None:
            conds.append(ORDERS.c.stage == query.stage.value)
        if query.city:
            conds.append(ORDERS.c.customer_city == query.city)
        if query.min_amount is not None:
            conds.append(ORDERS.c.amount >= query.min_amount)
        if query.priority is not None:
            conds.append(ORDERS.c.priority >= query.priority)
        if query.stalled_at is not None:
            conds.append(ORDERS.c.stage_deadline < query.stalled_at)
        if query.flagged is not None:
            conds.append(ORDERS.c.flagged.is_(query.flagged))
        async with self.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(ORDERS).where(*conds))).scalar_one()
            rows = (await conn.execute(
                select(ORDERS, OWNER_NAME).where(*conds).order_by(ORDERS.c.id.desc()).limit(query.limit).offset(query.offset)
            )).all()
        return total, [self._detail(r, []) for r in rows]

    async def move(self, move: Move, now: datetime) -> bool:
        announced: list[dict[str, Any]] = []
        async with self.engine.begin() as conn:
            moved = await apply_move(conn, move, now, announced)
        await announce(self.events, announced)
        return moved

    async def add_note(self, order_id: int, text: str, author: str, category: str | None, score: float | None,
                       now: datetime) -> int:
        async with self.engine.begin() as conn:
            res = await conn.execute(insert(NOTES).values(order_id=order_id, at=now, author=author, text=text,
                                                          category=category, score=score, kind="exception"))
            await conn.execute(update(ORDERS).where(ORDERS.c.id == order_id).values(manual_intervention=True))
        return int(res.inserted_primary_key[0])
