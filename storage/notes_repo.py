"""Exception notes as trend facts: a note with its order's base and carrier, and the notes of one group before it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.trends import NoteFact, Per
from storage.models import ExceptionNoteRow, OrderRow
from storage.note_learning_repo import read_examples
from storage.queries import fetch_all

NOTES, ORDERS = ExceptionNoteRow.__table__, OrderRow.__table__
_COLS = (NOTES.c.id, NOTES.c.order_id, NOTES.c.category, NOTES.c.at, ORDERS.c.channel, ORDERS.c.external_id,
         ORDERS.c.production_base, ORDERS.c.tracking, ORDERS.c.region, NOTES.c.text)


def _fact(row: Any) -> NoteFact:
    tracking = row.tracking if isinstance(row.tracking, dict) else {}
    carrier = tracking.get("carrier") or None
    return NoteFact(row.id, row.order_id, f"{row.channel}:{row.external_id}", row.category, row.at,
                    row.production_base, str(carrier) if carrier else None, row.region, row.text or "")


class SqlTrendNotes:
    """Implements `handlers.notes.TrendNotes`. Only exception notes count (refunds and complaints are not trends)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def _select(self) -> Any:
        return select(*_COLS).join(ORDERS, ORDERS.c.id == NOTES.c.order_id).where(NOTES.c.kind == "exception")

    async def learned_examples(self) -> list[tuple[str, str]]:
        """People's corrections, (text, category), newest first: what the classifier learns from."""
        async with self.engine.connect() as conn:
            return await read_examples(conn)

    async def note_fact(self, note_id: int) -> NoteFact | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(self._select().where(NOTES.c.id == note_id))).first()
        return _fact(row) if row else None

    async def group_notes(self, upto_id: int, per: Per, group: str | None, *, since: datetime | None,
                          limit: int) -> list[NoteFact]:
        """The group's notes with id ≤ `upto_id` (and at ≥ `since`), newest first, at most `limit`."""
        stmt = self._select().where(NOTES.c.id <= upto_id)
        if per == "base":
            stmt = stmt.where(ORDERS.c.production_base == group)
        elif per == "carrier":
            stmt = stmt.where(ORDERS.c.tracking["carrier"].as_string() == group)
        if since is not None:
            stmt = stmt.where(NOTES.c.at >= since)
        return await fetch_all(self.engine, stmt.order_by(NOTES.c.id.desc()).limit(limit), _fact)
