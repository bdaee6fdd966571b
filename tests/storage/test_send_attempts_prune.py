"""Chat send attempts are pruned: those of settled messages (sent, failed) older than the retention go, hourly on
the scheduler leader; a pending message's attempts stay whatever their age (a takeover still needs them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.wiring.runtime import Runtime
from storage.models import OutboxRow, SendAttemptRow
from storage.send_attempts import SqlSendAttempts

NOW = datetime(2025, 11, 11, 2, 0, tzinfo=UTC)


async def _seed(db: AsyncEngine) -> dict[str, int]:
    """One outbox row per status, each with an old (40 days) and a recent (1 day) attempt."""
    ids: dict[str, int] = {}
    async with db.begin() as conn:
        for status in ("sent", "failed", "pending"):
            ids[status] = (await conn.execute(insert(OutboxRow.__table__).values(
                dedup_key=f"k:{status}", kind="admin_notice", created_at=NOW, due_at=NOW, payload={"text": "x"},
                status=status).returning(OutboxRow.__table__.c.id))).scalar_one()
            for age in (40, 1):
                await conn.execute(insert(SendAttemptRow.__table__).values(
                    outbox_id=ids[status], platform="telegram", chat_id="1", send_key=f"{status}{age}",
                    started_at=NOW - timedelta(days=age), finished_at=NOW - timedelta(days=age), message_id="9"))
    return ids


async def _left(db: AsyncEngine) -> set[str]:
    async with db.connect() as conn:
        return {r.send_key for r in (await conn.execute(select(SendAttemptRow.__table__))).all()}


async def test_prune_keeps_recent_attempts_and_every_attempt_of_a_pending_message(db: AsyncEngine) -> None:
    await _seed(db)
    attempts = SqlSendAttempts(db)
    assert await attempts.prune(NOW - timedelta(days=30)) == 2
    assert await _left(db) == {"sent1", "failed1", "pending40", "pending1"}
    assert await attempts.prune(NOW - timedelta(days=30)) == 0  # nothing more: the job may run as often as it likes
    assert await attempts.last(1, "telegram", "1") is not None  # what a takeover reads still works


async def test_prune_works_in_bounded_batches(db: AsyncEngine) -> None:
    await _seed(db)
    attempts = SqlSendAttempts(db)
    assert await attempts.prune(NOW, limit=1) == 1
    assert await attempts.prune(NOW, limit=10) == 3  # the recent settled ones too, once the cut-off passes them


async def test_the_leaders_hourly_job_uses_the_configured_retention(runtime: Runtime, db: AsyncEngine) -> None:
    await _seed(db)
    runtime.settings.send_attempts_keep_days = 45
    runtime.clock = type("C", (), {"now": staticmethod(lambda: NOW)})()
    jobs = {name: (every_s, job) for name, every_s, job in runtime.housekeeping_jobs()}
    every_s, job = jobs["send_attempts_prune"]
    assert every_s == 3600.0
    assert await job() == 0  # 40 days < 45: kept
    runtime.settings.send_attempts_keep_days = 30
    _, job = {name: (every_s, job) for name, every_s, job in runtime.housekeeping_jobs()}["send_attempts_prune"]
    assert await job() == 2 and await _left(db) == {"sent1", "failed1", "pending40", "pending1"}


async def test_serve_s_chat_runtime_schedules_the_prune(runtime: Runtime) -> None:
    from bot.processes.chat_runtime import ChatRuntime

    chat = ChatRuntime.build(runtime)
    assert {"send_attempts_prune", "stock_notes"} <= {name for name, _, _ in chat.core.extra_jobs}
