"""`SqlSendAttempts`: the send_attempts table (handlers/send_attempts.py says why). Each call is its own short
transaction, so `begin` is durable before the platform call and `finish` right after it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from handlers.send_attempts import SendAttempt
from storage.models import OutboxRow, SendAttemptRow

ATTEMPTS, OUTBOX = SendAttemptRow.__table__, OutboxRow.__table__


class SqlSendAttempts:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def begin(self, outbox_id: int, platform: str, chat_id: str, send_key: str, resend: bool,
                    now: datetime) -> int:
        async with self.engine.begin() as conn:
            res = await conn.execute(insert(ATTEMPTS).values(
                outbox_id=outbox_id, platform=platform, chat_id=str(chat_id)[:64], send_key=send_key[:40],
                resend=resend, started_at=now).returning(ATTEMPTS.c.id))
            return int(res.scalar_one())

    async def finish(self, attempt_id: int, now: datetime, message_id: str | None, error: str | None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(ATTEMPTS).where(ATTEMPTS.c.id == attempt_id).values(
                finished_at=now, message_id=message_id[:64] if message_id else None, error=error))

    async def last(self, outbox_id: int, platform: str, chat_id: str) -> SendAttempt | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(ATTEMPTS).where(
                ATTEMPTS.c.outbox_id == outbox_id, ATTEMPTS.c.platform == platform,
                ATTEMPTS.c.chat_id == str(chat_id)[:64]).order_by(ATTEMPTS.c.id.desc()).limit(1))).first()
        if row is None:
            return None
        return SendAttempt(row.id, row.outbox_id, row.platform, row.chat_id, row.send_key, bool(row.resend),
                           row.started_at, row.finished_at, row.message_id, row.error)

    async def prune(self, before: datetime, limit: int = 10_000) -> int:
        """Delete attempts started before `before` whose outbox row is settled (sent or failed): a takeover reads
        attempts only of pending rows, so a settled row's attempts are history. At most `limit` per call, so one
        pass never holds a long transaction; returns how many went."""
        settled = select(OUTBOX.c.id).where(OUTBOX.c.status != "pending")
        old = (select(ATTEMPTS.c.id).where(ATTEMPTS.c.started_at < before, ATTEMPTS.c.outbox_id.in_(settled))
               .order_by(ATTEMPTS.c.id).limit(limit))
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(ATTEMPTS).where(ATTEMPTS.c.id.in_(old)))
            return int(res.rowcount or 0)
