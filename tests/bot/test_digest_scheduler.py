"""The digest job in the scheduler: a cron trigger at the configured local time, and a catch-up when a process takes
the lead after that time; two schedulers still queue one digest per person."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from bot.wiring.chat import build_chat_core
from bot.cli.main import app
from bot.workers.scheduler import ChatJobs, start_scheduler
from bot.settings import BUNDLED_RULES, Settings
from engine.rules import load_rules
from engine.stall import DEFAULT_LADDER
from handlers.digest import DigestJob
from handlers.notes import category_names
from handlers.notifier import Notifier
from storage.chat_repo import SqlChatRepo
from storage.digest_repo import SqlDigestSource
from storage.models import ChatIdentityRow, OutboxRow, UserRow
from tests.chatfake import FakeChannel

RULES = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


async def add_linked(db: AsyncEngine, name: str, role: str, chat: str) -> None:
    async with db.begin() as conn:
        res = await conn.execute(insert(UserRow.__table__).values(name=name, role=role, regions=[],
                                                                  created_at=datetime.now(UTC), active=True))
        await conn.execute(insert(ChatIdentityRow.__table__).values(
            user_id=res.inserted_primary_key[0], platform="telegram", external_id=chat, chat_id=chat,
            linked_at=datetime.now(UTC)))


def jobs(db: AsyncEngine, clock: Clock, channel: FakeChannel) -> ChatJobs:
    repo = SqlChatRepo(db)
    digest = DigestJob(SqlDigestSource(db), repo, clock, lambda: category_names(RULES), time(8, 30), "Asia/Shanghai")
    return ChatJobs(repo, clock, Notifier(repo, {"telegram": channel}, clock, token_key=b"k"),
                    lambda: DEFAULT_LADDER, digest)


async def digest_keys(db: AsyncEngine) -> list[str]:
    async with db.connect() as conn:
        return list((await conn.execute(select(OutboxRow.__table__.c.dedup_key).where(
            OutboxRow.__table__.c.kind == "digest"))).scalars())


async def test_a_late_leader_catches_up_once_even_with_two_schedulers(db: AsyncEngine, redis: aioredis.Redis
                                                                      ) -> None:
    await add_linked(db, "管理员", "admin", "701")
    await add_linked(db, "供应链", "supply_chain", "702")
    clock = Clock(datetime(2025, 11, 11, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai: today's 08:30 has passed
    channel = FakeChannel()
    fast = {"stall_every_s": 60, "escalation_every_s": 60, "outbox_every_s": 0.1, "lease_every_s": 0.1}
    first = await start_scheduler(redis, jobs(db, clock, channel), lease_key="test:digest:lease", lease_ttl_ms=500,
                                  **fast)
    second = None
    try:
        for _ in range(50):
            if first.runs["digest_catchup"] and len(channel.sent) == 2:
                break
            await asyncio.sleep(0.1)
        keys = await digest_keys(db)
        assert len(keys) == 2 and all(k.startswith("digest:2025-11-11:") for k in keys)
        await first.stop()  # hand over: the second leader's catch-up finds today's digests queued
        second = await start_scheduler(redis, jobs(db, clock, channel), lease_key="test:digest:lease",
                                       lease_ttl_ms=500, **fast)
        for _ in range(50):
            if second.runs["digest_catchup"]:
                break
            await asyncio.sleep(0.1)
        assert second.runs["digest_catchup"] == 1
        assert len(await digest_keys(db)) == 2
        assert sorted(m.message.chat_id for m in channel.sent) == ["701", "702"]
        assert all(m.text.startswith("☀️ 早报 · 2025-11-11") for m in channel.sent)
    finally:
        await first.stop()
        if second is not None:
            await second.stop()


async def test_before_the_digest_time_the_catch_up_waits_for_the_cron(db: AsyncEngine, redis: aioredis.Redis) -> None:
    await add_linked(db, "管理员", "admin", "701")
    clock = Clock(datetime(2025, 11, 10, 23, 0, tzinfo=UTC))  # 07:00 in Shanghai
    sched = await start_scheduler(redis, jobs(db, clock, FakeChannel()), lease_key="test:digest:lease2",
                                  lease_ttl_ms=500, lease_every_s=0.1)
    try:
        for _ in range(30):
            if sched.runs["digest_catchup"]:
                break
            await asyncio.sleep(0.1)
        assert sched.runs["digest_catchup"] == 1 and await digest_keys(db) == []
        trigger = sched.scheduler.get_job("digest").trigger
        assert str(trigger.timezone) == "Asia/Shanghai"
        fire = trigger.get_next_fire_time(None, datetime(2025, 11, 11, 9, 0, tzinfo=UTC))  # 17:00 Shanghai
        assert fire.astimezone(UTC) == datetime(2025, 11, 12, 0, 30, tzinfo=UTC)  # tomorrow 08:30 Shanghai
    finally:
        await sched.stop()


def test_the_digest_time_is_a_setting_and_off_means_no_digest(db: AsyncEngine, redis: aioredis.Redis) -> None:
    assert Settings(_env_file=None).digest_at == "08:30"
    assert Settings(_env_file=None, digest_at="7:05").digest_at == "07:05"
    assert Settings(_env_file=None, digest_at="off").digest_at is None
    with pytest.raises(ValidationError, match="HH:MM"):
        Settings(_env_file=None, digest_at="25:00")
    core = build_chat_core(db, redis, {}, Clock(datetime.now(UTC)), lambda: RULES, token_key=b"k",
                           timezone="Europe/Berlin", digest_at="07:05")
    job = core.digest_job()
    assert job is not None and job.at == time(7, 5) and job.timezone == "Europe/Berlin"
    assert build_chat_core(db, redis, {}, Clock(datetime.now(UTC)), lambda: RULES, token_key=b"k").digest_job() is None


async def test_report_digest_prints_the_digest(database_url: str, redis_url: str, tmp_path: Path,
                                               db: AsyncEngine) -> None:
    env = {"ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_REDIS_URL": redis_url,
           "ORDERHUB_DATA_DIR": str(tmp_path / "data"), "ORDERHUB_LANGUAGE": "en"}
    result = await asyncio.to_thread(CliRunner().invoke, app, ["report", "--digest"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("☀️ Morning digest · ")
    for piece in ("Order accuracy: —", "Orders received yesterday: 0", "Orders that could not be stored, waiting: 0"):
        assert piece in result.output
