"""Deactivating a user in the database (handlers.owners.deactivate_owner): the user inactive and their open orders
re-picked by storage.owners.assign_owner, or cleared, in one transaction. Beside storage.owners rather than in it:
it reads whole orders (storage.orders_repo), which itself reaches storage.owners through the move."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.stages import END_STATES
from handlers.orders import OrderEvents, announce
from handlers.owners import Deactivated, NeedsFor, OwnedOrder
from storage.models import AuditRow, OrderRow, UserRow
from storage.orders_repo import order_from_row
from storage.owners import assign_owner

ORDERS, USERS, AUDIT = OrderRow.__table__, UserRow.__table__, AuditRow.__table__
_END = [s.value for s in END_STATES]


class SqlOwnerDeactivation:
    """Implements `handlers.owners.DeactivateStore`; `events` (the board's live feed) hears each owner change."""

    def __init__(self, engine: AsyncEngine, events: OrderEvents | None = None) -> None:
        self.engine = engine
        self.events = events

    async def deactivate(self, name: str, needs: NeedsFor, actor: str, now: datetime) -> Deactivated | None:
        """handlers.owners.DeactivateStore: the user inactive first (so the re-pick, in the same transaction,
        cannot choose them), then one `assign_owner` per open order they own (each takes its own round-robin turn,
        as separate stage entries would), the rest cleared; every change audited, the board told."""
        async with self.engine.begin() as conn:
            user = (await conn.execute(select(USERS.c.id, USERS.c.name, USERS.c.active)
                                       .where(USERS.c.name == name))).first()
            if user is None:
                return None
            await conn.execute(update(USERS).where(USERS.c.id == user.id).values(active=False))
            rows = (await conn.execute(select(ORDERS).where(ORDERS.c.owner_user_id == user.id,
                                                            ORDERS.c.stage.not_in(_END))
                                       .order_by(ORDERS.c.id))).all()
            owned = [OwnedOrder(r.id, f"{r.channel}:{r.external_id}", order_from_row(r), r.production_base)
                     for r in rows]
            repicked: list[tuple[OwnedOrder, str]] = []
            cleared: list[tuple[OwnedOrder, str]] = []
            for o, need in zip(owned, needs(owned), strict=True):
                if need is None:
                    cleared.append((o, f"no owners: row for {o.order.stage.value}"))
                    continue
                choice = await assign_owner(conn, o.id, need, now)
                if choice.user_id is None:
                    cleared.append((o, choice.reason))
                else:
                    repicked.append((o, choice.name or ""))
            if cleared:
                await conn.execute(update(ORDERS).where(ORDERS.c.id.in_([o.id for o, _ in cleared]),
                                                        ORDERS.c.owner_user_id == user.id)
                                   .values(owner_user_id=None, updated_at=now))
            if repicked:
                await conn.execute(update(ORDERS).where(ORDERS.c.id.in_([o.id for o, _ in repicked]))
                                   .values(updated_at=now))
            changes = [(o, to, None) for o, to in repicked] + [(o, None, why) for o, why in cleared]
            audit = [{"at": now, "actor": actor[:64], "action": "user.deactivated", "subject": f"user:{user.id}",
                      "detail": {"name": user.name, "was_active": bool(user.active), "repicked": len(repicked),
                                 "cleared": len(cleared)}}]
            audit += [{"at": now, "actor": actor[:64], "action": "order.assigned", "subject": f"order:{o.id}",
                       "detail": {"from": user.name, "to": to, "stage": o.order.stage.value,
                                  "via": "owner_deactivated", **({"reason": why} if why else {})}}
                      for o, to, why in changes]
            await conn.execute(insert(AUDIT), audit)
        await announce(self.events, [{"kind": "assigned", "order_id": o.id, "region": o.order.region, "by": actor,
                                      "owner": to} for o, to, _ in changes])
        return Deactivated(user.name, bool(user.active), tuple((o.key, to) for o, to in repicked),
                           tuple(o.key for o, _ in cleared))
