"""Dead letters as rows an admin can see, each with an outbox alert so someone is told."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.outbox_kinds import dead_letter
from handlers.ports import IntakeEntry
from storage.models import DeadLetterRow, OutboxRow
from storage.outbox_rows import outbox_values

DEAD = DeadLetterRow.__table__
OUTBOX = OutboxRow.__table__


class SqlDeadLetters:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def record(self, entry: IntakeEntry, error: str, now: datetime) -> None:
        """Idempotent by entry id: recording the same death twice (a crash in between) writes one row, one alert."""
        async with self.engine.begin() as conn:
            await conn.execute(
                self._insert(DEAD).on_conflict_do_nothing(index_elements=["entry_id"]),
                {"entry_id": entry.id, "channel": entry.channel, "body": entry.body.decode(errors="replace"),
                 "error": error[:4000], "attempts": entry.attempts + 1, "created_at": now},
            )
            await conn.execute(
                self._insert(OUTBOX).on_conflict_do_nothing(index_elements=["dedup_key"]),
                outbox_values(dead_letter(entry.id, entry.channel, error, entry.attempts + 1, now), now),
            )

    async def list(self, include_replayed: bool = False) -> list[dict[str, Any]]:
        stmt = select(DEAD).order_by(DEAD.c.id)
        if not include_replayed:
            stmt = stmt.where(DEAD.c.replayed_at.is_(None))
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in (await conn.execute(stmt)).all()]

    async def mark_all_replayed(self, now: datetime) -> int:
        async with self.engine.begin() as conn:
            res = await conn.execute(update(DEAD).where(DEAD.c.replayed_at.is_(None)).values(replayed_at=now))
            return res.rowcount or 0
