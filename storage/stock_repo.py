"""The stock table: written whole by `orderhub stock import` (one transaction), read by intake as routing facts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.stages import END_STATES, Stage
from storage.models import ExceptionNoteRow, OrderRow, StockRow

STOCK, NOTES, ORDERS = StockRow.__table__, ExceptionNoteRow.__table__, OrderRow.__table__
CHUNK = 500  # rows or keys per statement: far under SQLite's and asyncpg's parameter limits
_OPEN = [s.value for s in Stage if s not in END_STATES]


@dataclass(frozen=True, slots=True)
class StockLevel:
    sku: str
    base: str
    quantity: int


class SqlStock:
    """Implements `handlers.stock.StockLevels` and `StockNoteStore`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def _upsert(self) -> Any:
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(STOCK)
        return stmt.on_conflict_do_update(index_elements=["sku", "base"],
                                          set_={"quantity": stmt.excluded.quantity,
                                                "updated_at": stmt.excluded.updated_at})

    async def write(self, rows: Sequence[StockLevel], now: datetime, *, replace: bool = False) -> int:
        """All rows or none: one transaction. `replace`: the file is the whole stock, pairs not in it are removed."""
        async with self.engine.begin() as conn:
            if replace:
                await conn.execute(delete(STOCK))
            stmt = self._upsert()
            for i in range(0, len(rows), CHUNK):
                await conn.execute(stmt, [{"sku": r.sku, "base": r.base, "quantity": r.quantity, "updated_at": now}
                                          for r in rows[i:i + CHUNK]])
        return len(rows)

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(STOCK))).scalar_one())

    async def levels(self, skus: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        wanted = sorted(set(skus))
        if not wanted:
            return out
        async with self.engine.connect() as conn:
            for i in range(0, len(wanted), CHUNK):
                rows = await conn.execute(select(STOCK.c.base, STOCK.c.sku, STOCK.c.quantity)
                                          .where(STOCK.c.sku.in_(wanted[i:i + CHUNK])))
                out.update((f"{b}:{s}", int(q)) for b, s, q in rows)
        return out

    async def order_ids(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        async with self.engine.connect() as conn:
            for i in range(0, len(keys), CHUNK):
                part = keys[i:i + CHUNK]
                cond = or_(*(and_(ORDERS.c.channel == ch, ORDERS.c.external_id == ext) for ch, ext in part))
                rows = await conn.execute(select(ORDERS.c.channel, ORDERS.c.external_id, ORDERS.c.id).where(cond))
                out.update(((ch, ext), int(oid)) for ch, ext, oid in rows)
        return out

    async def has_note_by(self, order_id: int, author: str) -> bool:
        async with self.engine.connect() as conn:
            row = await conn.execute(select(NOTES.c.id).where(NOTES.c.order_id == order_id, NOTES.c.author == author)
                                     .limit(1))
            return row.first() is not None

    async def short_without_note(self, since: datetime, author: str,
                                 limit: int = 5000) -> list[tuple[tuple[str, str], tuple[str, ...]]]:
        """Open orders changed since `since` that intake left without a base for want of stock (their stored
        decision names the SKUs) and that have no note by `author` yet, newest first."""
        noted = exists().where(NOTES.c.order_id == ORDERS.c.id, NOTES.c.author == author)
        stmt = (select(ORDERS.c.channel, ORDERS.c.external_id, ORDERS.c.decisions)
                .where(ORDERS.c.production_base.is_(None), ORDERS.c.stage.in_(_OPEN), ORDERS.c.updated_at >= since,
                       ~noted)
                .order_by(ORDERS.c.id.desc()).limit(limit))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [((ch, ext), tuple(str(s) for s in skus)) for ch, ext, decisions in rows
                if isinstance(decisions, dict) and (skus := decisions.get("out_of_stock"))]
