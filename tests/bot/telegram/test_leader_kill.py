"""Issue 9.7 as it happened: two `orderhub scheduler` processes, the leader SIGKILLed while a Telegram send is in
flight (the stand-in answers each sendMessage 0.6 s late, and delivers it even when the caller is gone). The new
leader sends the rest; no alert is lost, and a message delivered twice is never a silent duplicate: its outbox row
has a recorded resend (counted as a possible duplicate)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import OutboxRow, SendAttemptRow
from tests.bot.telegram.scheduler_processes import scheduler_env, start_scheduler, stop_all, wait_until
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL
from tests.standins.telegram_api import Faults, TelegramStandIn

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.skipif(
    not (TEST_DATABASE_URL and TEST_REDIS_URL),
    reason="two scheduler processes need PostgreSQL and a real Redis (ORDERHUB_TEST_DATABASE_URL/_REDIS_URL)")]

ALERTS = 30


def _wait(what: str, check: Callable[[], Any], timeout: float = 90) -> None:
    wait_until(what, check, timeout, poll_s=0.02)


async def test_leader_killed_mid_send_loses_nothing_and_every_duplicate_is_recorded(
        db: AsyncEngine, database_url: str, redis_url: str, redis: object, tmp_path: Path,
        telegram_api: TelegramStandIn) -> None:
    now = datetime.now(UTC)
    async with db.begin() as conn:
        await conn.execute(insert(OutboxRow.__table__), [dict(
            dedup_key=f"kill:{uuid.uuid4().hex}", kind="admin_notice", created_at=now, due_at=now,
            payload={"text": f"告警 {i}", "platform": "telegram", "chat_id": str(7000 + i)},
            status="pending", attempts=0) for i in range(ALERTS)])
    telegram_api.faults = Faults(delay_s=0.6, methods=frozenset({"sendMessage"}))
    env = scheduler_env(database_url, redis_url, telegram_api, tmp_path)
    sent = lambda: len(telegram_api.ok_calls("sendMessage"))  # noqa: E731
    leader = start_scheduler(env, tmp_path, tmp_path / "leader.log")
    follower = None
    try:
        _wait("the leader sends", lambda: sent() >= 3)
        follower = start_scheduler(env, tmp_path, tmp_path / "follower.log")
        time.sleep(3)  # the follower is up and waiting for the lease
        seen = sent()
        _wait("the next send answered", lambda: sent() > seen)
        time.sleep(0.2)  # the leader's next sendMessage is now in flight (answered 0.6 s after it began)
        leader.send_signal(signal.SIGKILL)
        leader.wait(10)
        _wait("the new leader sent the rest", lambda: len({c["text"] for c in telegram_api.ok_calls("sendMessage")})
              >= ALERTS, timeout=120)
        # the row in flight when the leader died stays claimed by it until the claim runs out (handlers/notifier
        # CLAIM_S); then the new leader resends it, recorded as a possible duplicate
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            async with db.connect() as conn:
                statuses = set((await conn.execute(select(OutboxRow.__table__.c.status))).scalars())
            if statuses == {"sent"}:
                break
            await asyncio.sleep(0.5)
        time.sleep(1)  # let it write its log line
    finally:
        stop_all(leader, follower)

    delivered = Counter(c["text"] for c in telegram_api.ok_calls("sendMessage"))
    assert set(delivered) == {f"告警 {i}" for i in range(ALERTS)}  # nothing lost
    async with db.connect() as conn:
        rows = {r.id: r for r in (await conn.execute(select(OutboxRow.__table__))).all()}
        attempts = (await conn.execute(select(SendAttemptRow.__table__))).all()
    assert {r.status for r in rows.values()} == {"sent"}
    resent_rows = {a.outbox_id for a in attempts if a.resend}
    doubled = {text for text, n in delivered.items() if n > 1}
    assert all(n <= 2 for n in delivered.values()), delivered
    doubled_rows = {i for i, r in rows.items() if r.payload["text"] in doubled}
    assert doubled_rows <= resent_rows, "a duplicate without a recorded resend"  # never silent
    assert resent_rows, "the kill was meant to land mid-send: an unfinished attempt must have been resent"
    assert "possibly a duplicate" in (tmp_path / "follower.log").read_text(errors="replace")
