"""Order owners in the database: the rules' pick when an order enters a stage, and a person's reassignment.

`assign_owners` runs inside the caller's transaction (the move or the intake unit), so the owner commits with the
stage. Each pool's row in `owner_cursors` is bumped first (by the number of its orders) by one upsert…RETURNING: its
lock queues concurrent assignments to the same pool (round-robin turns are never shared; least-loaded counts see
the previous pick).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from engine.rules.owners import Candidate, OwnerChoice, OwnerNeed, pick_owners
from engine.stages import END_STATES
from handlers.orders import OrderEvents, announce
from handlers.owners import OrderOwnerFacts
from storage.models import AuditRow, OrderRow, OwnerCursorRow, UserRow

ORDERS, USERS, AUDIT, CURSORS = OrderRow.__table__, UserRow.__table__, AuditRow.__table__, OwnerCursorRow.__table__
_END = [s.value for s in END_STATES]
INT64 = 2**63 - 1


def _upsert(conn: AsyncConnection) -> Any:
    """The dialect's INSERT with ON CONFLICT (as storage.order_moves has it; importing it from there is a cycle)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


async def _turns(conn: AsyncConnection, pool_key: str, count: int) -> int:
    """Take `count` round-robin turns of the pool at once; returns the first (the row stays locked until commit)."""
    stmt = _upsert(conn)(CURSORS).values(pool_key=pool_key, seq=count)
    stmt = stmt.on_conflict_do_update(index_elements=["pool_key"], set_={"seq": CURSORS.c.seq + count})
    return int((await conn.execute(stmt.returning(CURSORS.c.seq))).scalar_one()) - count + 1


async def _candidates(conn: AsyncConnection, need: OwnerNeed) -> list[Candidate]:
    who = USERS.c.name == need.user if need.user is not None else USERS.c.role == need.role
    rows = (await conn.execute(select(USERS.c.id, USERS.c.name, USERS.c.role, USERS.c.regions, USERS.c.active)
                               .where(who, USERS.c.active.is_(True)))).all()
    loads: dict[int, int] = {}
    if need.strategy == "least_loaded" and need.user is None and rows:
        counted = (await conn.execute(
            select(ORDERS.c.owner_user_id, func.count()).where(
                ORDERS.c.owner_user_id.in_([r.id for r in rows]), ORDERS.c.stage.not_in(_END))
            .group_by(ORDERS.c.owner_user_id))).all()
        loads = {int(u): int(n) for u, n in counted}
    return [Candidate(r.id, r.name, r.role, tuple(r.regions or ()), bool(r.active), loads.get(r.id, 0)) for r in rows]


async def assign_owners(conn: AsyncConnection, wanted: Sequence[tuple[int, OwnerNeed]], now: datetime
                        ) -> list[OwnerChoice]:
    """Pick and write the owners the rules ask for (order id, need), inside the caller's transaction: per pool one
    cursor upsert, one read of its members (and their loads), then the updates and audit entries (`order.owner`:
    the row and why) in one statement each. Pools are taken in key order, so concurrent batches lock their cursor
    rows in the same order (no deadlock). Nobody fitting leaves that order's owner as it was."""
    groups: dict[str, list[tuple[int, OwnerNeed]]] = {}
    for order_id, need in wanted:
        groups.setdefault(need.pool_key, []).append((order_id, need))
    choices: list[tuple[int, OwnerNeed, OwnerChoice]] = []
    for key in sorted(groups):
        items = sorted(groups[key], key=lambda x: x[0])
        need = items[0][1]
        first = await _turns(conn, key, len(items)) if need.user is None else 1
        picked = pick_owners(need, await _candidates(conn, need), first, len(items))
        choices += [(order_id, n, c) for (order_id, n), c in zip(items, picked, strict=True)]
    owned = [{"oid": order_id, "uid": c.user_id} for order_id, _n, c in choices if c.user_id is not None]
    if owned:
        await conn.execute(update(ORDERS).where(ORDERS.c.id == bindparam("oid"))
                           .values(owner_user_id=bindparam("uid")), owned)
    if choices:
        await conn.execute(insert(AUDIT), [
            {"at": now, "actor": "system", "action": "order.owner", "subject": f"order:{order_id}",
             "detail": {"rule": n.rule_id, "stage": n.stage.value, "owner": c.name, "reason": c.reason}}
            for order_id, n, c in choices])
    return [c for _o, _n, c in choices]


async def assign_owner(conn: AsyncConnection, order_id: int, need: OwnerNeed, now: datetime) -> OwnerChoice:
    """One order entering a stage (the one move, storage.order_moves.apply_move)."""
    return (await assign_owners(conn, [(order_id, need)], now))[0]


class SqlOwners:
    """What the reassign use case (handlers.owners.assign) reads and writes; `events` (the board's live feed) hears
    each committed reassignment, so open boards show the new owner."""

    def __init__(self, engine: AsyncEngine, events: OrderEvents | None = None) -> None:
        self.engine = engine
        self.events = events

    async def order(self, ref: str) -> OrderOwnerFacts | None:
        ref = ref.strip()
        async with self.engine.connect() as conn:
            if ref.isdigit():
                if int(ref) > INT64:
                    return None
                cond = [ORDERS.c.id == int(ref)]
            else:
                channel, sep, ext = ref.partition(":")
                cond = [ORDERS.c.channel == channel, ORDERS.c.external_id == ext] if sep and channel and ext \
                    else [ORDERS.c.external_id == ref]
            rows = (await conn.execute(
                select(ORDERS.c.id, ORDERS.c.channel, ORDERS.c.external_id, ORDERS.c.region, ORDERS.c.stage,
                       ORDERS.c.owner_user_id, USERS.c.name).select_from(
                    ORDERS.outerjoin(USERS, USERS.c.id == ORDERS.c.owner_user_id)).where(*cond).limit(2))).all()
        if len(rows) != 1:
            return None  # unknown, or an external id in two channels: ask for channel:id
        r = rows[0]
        return OrderOwnerFacts(r.id, f"{r.channel}:{r.external_id}", r.region, r.stage, r.owner_user_id, r.name)

    async def user(self, name: str) -> Candidate | None:
        async with self.engine.connect() as conn:
            r = (await conn.execute(select(USERS.c.id, USERS.c.name, USERS.c.role, USERS.c.regions, USERS.c.active)
                                    .where(USERS.c.name == name))).first()
        return None if r is None else Candidate(r.id, r.name, r.role, tuple(r.regions or ()), bool(r.active))

    async def staff(self, limit: int) -> list[Candidate]:
        """Active staff and their open orders, by name: one read of the people, then one grouped count over the
        (owner, stage) index for just them (never a scan of every order ever owned)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(
                select(USERS.c.id, USERS.c.name, USERS.c.role, USERS.c.regions)
                .where(USERS.c.active.is_(True), USERS.c.role != "customer")
                .order_by(USERS.c.name).limit(limit))).all()
            loads: dict[int, int] = {}
            if rows:
                counted = (await conn.execute(
                    select(ORDERS.c.owner_user_id, func.count())
                    .where(ORDERS.c.owner_user_id.in_([r.id for r in rows]), ORDERS.c.stage.not_in(_END))
                    .group_by(ORDERS.c.owner_user_id))).all()
                loads = {int(u): int(n) for u, n in counted}
        return [Candidate(r.id, r.name, r.role, tuple(r.regions or ()), True, loads.get(r.id, 0)) for r in rows]

    async def set_owner(self, order_id: int, previous: int | None, user_id: int, actor: str, now: datetime,
                        detail: dict[str, Any]) -> bool:
        """Compare-and-set on the previous owner, with its audit entry; False if someone changed it meanwhile."""
        async with self.engine.begin() as conn:
            prev = ORDERS.c.owner_user_id.is_(None) if previous is None else ORDERS.c.owner_user_id == previous
            row = (await conn.execute(update(ORDERS).where(ORDERS.c.id == order_id, prev)
                                      .values(owner_user_id=user_id, updated_at=now)
                                      .returning(ORDERS.c.region))).first()
            if row is None:
                return False
            await conn.execute(insert(AUDIT).values(at=now, actor=actor, action="order.assigned",
                                                    subject=f"order:{order_id}", detail=detail))
        await announce(self.events, [{"kind": "assigned", "order_id": order_id, "region": row.region, "by": actor,
                                      "owner": detail.get("to")}])
        return True
