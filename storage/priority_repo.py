"""Priority refresh reads and writes: every open order with its history facts in one batched pass, then the new
scores and flags in one executemany. Never touches `stage` (only `storage.order_moves.apply_move` writes that)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from engine.order import Order
from engine.rules.facts import Facts
from engine.stages import END_STATES, Stage
from storage.models import OrderRow
from storage.orders_repo import order_from_row
from storage.rules_repo import RulesRepo

ORDERS = OrderRow.__table__
OPEN = [s.value for s in Stage if s not in END_STATES]
FACTS_CHUNK = 5000  # orders per facts lookup: three grouped queries per 5,000 open orders, never one per order


class SqlPriorities:
    """The priority refresh's storage (handlers.priority.PriorityStore)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._facts = RulesRepo(async_sessionmaker(engine, expire_on_commit=False))

    async def open_orders(self, now: datetime) -> list[tuple[Order, Facts]]:
        """Every open order and its facts: one select plus the facts lookup's three grouped queries per 5,000 orders
        (never one per order), the same counts intake and `rules explain` read."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(ORDERS).where(ORDERS.c.stage.in_(OPEN)).order_by(ORDERS.c.id))).all()
        orders = [order_from_row(r) for r in rows]
        facts: dict[int, Facts] = {}
        for i in range(0, len(orders), FACTS_CHUNK):  # bounded IN lists: SQLite and PG cap bound parameters
            facts.update(await self._facts.facts_for(orders[i:i + FACTS_CHUNK], now))
        return [(o, facts[o.id]) for o in orders]

    async def save(self, scores: Mapping[int, int], flagged: set[int], now: datetime) -> int:
        """Write score and flag of each given open order and clear the flag of closed orders. Returns rows changed.

        Only rows whose values differ are written, and only while still open (an order closed meanwhile keeps its
        stage and loses its flag)."""
        ids = list(scores)
        changed = 0
        async with self.engine.begin() as conn:
            current = {}
            for i in range(0, len(ids), 5000):
                chunk = ids[i:i + 5000]
                current.update({r.id: (r.priority, bool(r.flagged)) for r in (await conn.execute(
                    select(ORDERS.c.id, ORDERS.c.priority, ORDERS.c.flagged).where(ORDERS.c.id.in_(chunk)))).all()})
            rows = [{"oid": oid, "p": int(s), "f": oid in flagged} for oid, s in scores.items()
                    if current.get(oid) is not None and current[oid] != (int(s), oid in flagged)]
            if rows:
                still_open = or_(*(ORDERS.c.stage == s for s in OPEN))  # executemany cannot expand an IN list
                stmt = (update(ORDERS).where(ORDERS.c.id == bindparam("oid"), still_open)
                        .values(priority=bindparam("p"), flagged=bindparam("f")))
                await conn.execute(stmt, rows)
                changed += len(rows)
            # a closed order is no longer among the open ones (an order received since the read is unflagged)
            res = await conn.execute(update(ORDERS).where(ORDERS.c.flagged.is_(True), ORDERS.c.stage.not_in(OPEN))
                                     .values(flagged=False))
            changed += res.rowcount or 0
        return changed
