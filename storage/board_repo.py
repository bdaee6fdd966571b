"""The board's reads (columns, counts, one card), its sign-in nonces and its change events.

Columns are read in one statement: a window function numbers each column's rows by priority then age, so a page
of every column costs one round trip however many open orders there are (bench/board.py).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
from sqlalchemy import exists, func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.stages import Stage
from handlers.board import COLUMNS, MAX_TEXT, BoardCard, BoardFilter
from storage.models import ApprovalRow, OrderRow, RefundRow, UserRow

log = logging.getLogger(__name__)
ORDERS, APPROVALS, USERS = OrderRow.__table__, ApprovalRow.__table__, UserRow.__table__
REFUNDS = RefundRow.__table__
CLOSED_REFUNDS = ("rejected", "refunded")  # engine.refunds.RefundState's end states
EVENTS_CHANNEL = "orderhub:board:events"
NONCE_PREFIX = "orderhub:board:nonce:"


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def conditions(f: BoardFilter, now: datetime) -> list[Any]:
    conds: list[Any] = [ORDERS.c.stage.in_([s.value for s in COLUMNS])]
    if f.regions is not None:
        conds.append(ORDERS.c.region.in_(list(f.regions)) if f.regions else ORDERS.c.id == -1)
    if f.city:
        conds.append(ORDERS.c.customer_city == f.city)
    if f.region:
        conds.append(ORDERS.c.region == f.region)
    if f.min_amount is not None:
        conds.append(ORDERS.c.amount >= f.min_amount)
    if f.max_amount is not None:
        conds.append(ORDERS.c.amount <= f.max_amount)
    if f.priority is not None:
        conds.append(ORDERS.c.priority >= f.priority)
    if f.flagged:
        conds.append(ORDERS.c.flagged.is_(True))
    if f.stalled:
        conds.append(ORDERS.c.stage_deadline < now)
    if f.owner:
        conds.append(ORDERS.c.owner_user_id == select(USERS.c.id).where(USERS.c.name == f.owner).scalar_subquery())
    if f.q:
        pattern = _like(f.q.strip()[:MAX_TEXT])
        digits = "".join(ch for ch in f.q if ch.isdigit())
        alts = [ORDERS.c.external_id.ilike(pattern, escape="\\"), ORDERS.c.customer_name.ilike(pattern, escape="\\"),
                ORDERS.c.customer_city.ilike(pattern, escape="\\")]
        if len(digits) >= 4:
            alts.append(ORDERS.c.customer_phone.like(_like(digits), escape="\\"))
        conds.append(or_(*alts))
    return conds


def _refund_open() -> Any:
    """A refund of the order still being handled (not yet refunded or rejected): the card's ↩ badge."""
    return exists().where(REFUNDS.c.order_id == ORDERS.c.id, REFUNDS.c.state.not_in(CLOSED_REFUNDS)).correlate(ORDERS)


def _pending() -> Any:
    return (select(func.count()).select_from(APPROVALS)
            .where(APPROVALS.c.order_id == ORDERS.c.id, APPROVALS.c.status == "pending")
            .correlate(ORDERS).scalar_subquery())


_COLUMNS = (ORDERS.c.id, ORDERS.c.channel, ORDERS.c.external_id, ORDERS.c.customer_name, ORDERS.c.customer_phone,
            ORDERS.c.customer_city, ORDERS.c.region, ORDERS.c.amount, ORDERS.c.currency, ORDERS.c.priority,
            ORDERS.c.flagged, ORDERS.c.stage, ORDERS.c.created_at, ORDERS.c.stage_entered_at,
            ORDERS.c.stage_deadline, ORDERS.c.tracking)
_ORDER_BY = (ORDERS.c.priority.desc(), ORDERS.c.created_at.asc(), ORDERS.c.id.asc())


def _card(row: Any) -> BoardCard:
    tracking = row.tracking if isinstance(row.tracking, dict) else None
    return BoardCard(
        id=row.id, channel=row.channel, external_id=row.external_id, customer_name=row.customer_name,
        customer_phone=row.customer_phone, city=row.customer_city, region=row.region, amount=row.amount,
        currency=row.currency, priority=row.priority, flagged=bool(row.flagged), stage=Stage(row.stage),
        created_at=row.created_at, stage_entered_at=row.stage_entered_at, stage_deadline=row.stage_deadline,
        owner=row.owner, pending_approvals=int(row.pending or 0),
        tracking_status=str(tracking.get("status")) if tracking and tracking.get("status") else None,
        refund_open=bool(row.refund_open),
    )


class SqlBoard:
    """`handlers.board.BoardSource` over the orders table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def counts(self, f: BoardFilter, now: datetime) -> dict[Stage, int]:
        stmt = select(ORDERS.c.stage, func.count()).where(*conditions(f, now)).group_by(ORDERS.c.stage)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        found = {Stage(stage): int(n) for stage, n in rows}
        return {s: found.get(s, 0) for s in COLUMNS}

    async def cards(self, f: BoardFilter, now: datetime, stages: Sequence[Stage], offset: int,
                    limit: int) -> dict[Stage, list[BoardCard]]:
        # One statement: per column the page's ids (a top-N over the index on stage, priority, age), then those rows
        # in full with their owner and pending-approval count (computed for the page only, not every open order).
        conds = conditions(f, now)
        parts = [select(ORDERS.c.id.label("rid")).where(*conds, ORDERS.c.stage == stage.value)
                 .order_by(*_ORDER_BY).limit(limit).offset(offset).subquery() for stage in stages]
        page = union_all(*(select(p.c.rid) for p in parts)).subquery()
        stmt = (select(*_COLUMNS, USERS.c.name.label("owner"), _pending().label("pending"), _refund_open().label("refund_open"))
                .select_from(page.join(ORDERS, ORDERS.c.id == page.c.rid)
                             .outerjoin(USERS, USERS.c.id == ORDERS.c.owner_user_id))
                .order_by(ORDERS.c.stage, *_ORDER_BY))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        out: dict[Stage, list[BoardCard]] = {s: [] for s in stages}
        for row in rows:
            out[Stage(row.stage)].append(_card(row))
        return out

    async def card(self, order_id: int) -> BoardCard | None:
        stmt = (select(*_COLUMNS, USERS.c.name.label("owner"), _pending().label("pending"), _refund_open().label("refund_open"))
                .select_from(ORDERS.outerjoin(USERS, USERS.c.id == ORDERS.c.owner_user_id))
                .where(ORDERS.c.id == order_id))
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _card(row) if row is not None else None

    async def owners(self, regions: tuple[str, ...] | None = None) -> list[str]:
        # the same scope as the columns: a manager is not shown who owns orders of other regions
        open_owned = conditions(BoardFilter(regions=regions), datetime.min) + [ORDERS.c.owner_user_id.is_not(None)]
        stmt = (select(USERS.c.name).where(USERS.c.id.in_(select(ORDERS.c.owner_user_id).where(*open_owned)))
                .order_by(USERS.c.name))
        async with self.engine.connect() as conn:
            return [r[0] for r in (await conn.execute(stmt)).all()]


class RedisNonces:
    """`handlers.board.NonceStore`: a nonce is a key with a TTL; using it deletes it (GETDEL: one use)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def issue(self, nonce: str, ttl_s: int) -> None:
        if not await self.redis.set(NONCE_PREFIX + nonce, b"1", ex=ttl_s, nx=True):
            raise ValueError("nonce already issued")

    async def alive(self, nonce: str) -> bool:
        return bool(await self.redis.exists(NONCE_PREFIX + nonce))

    async def consume(self, nonce: str) -> bool:
        return await self.redis.getdel(NONCE_PREFIX + nonce) is not None


class RedisBoardEvents:
    """`handlers.board.BoardEvents` over Redis pub/sub, so every api process's browsers hear every change."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def publish(self, event: dict[str, Any]) -> None:
        """Best effort: a change already stored must not fail because Redis is away (browsers refresh later)."""
        try:
            await self.redis.publish(EVENTS_CHANNEL, orjson.dumps(event, default=str))
        except Exception as exc:
            log.warning("board event not published: %s", exc)

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(EVENTS_CHANNEL)
        try:
            while True:
                message = await pubsub.get_message(timeout=15.0)
                if message is None:
                    yield {"kind": "ping"}
                    continue
                try:
                    yield orjson.loads(message["data"])
                except orjson.JSONDecodeError:
                    continue
        finally:
            try:
                await pubsub.unsubscribe(EVENTS_CHANNEL)
                await pubsub.aclose()
            except Exception:
                pass
