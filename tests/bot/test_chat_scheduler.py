"""Two scheduler processes, one lease: only the leader scans and sends; when it stops, the other takes over.
Runs on the real Redis at 127.0.0.1:6379 db 15 (random key, cleaned up); skipped when it is not reachable."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from io import StringIO

import redis.asyncio as aioredis
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.demo.console_channel import ConsoleChannel
from bot.workers.scheduler import ChatJobs, start_scheduler
from engine.stall import DEFAULT_LADDER
from handlers.chat import Button, Card, ChatRef, Outgoing
from handlers.chat_ports import NewOutbox
from handlers.notifier import Notifier
from storage.chat_repo import SqlChatRepo
from storage.models import ChatIdentityRow, UserRow
from tests.chatfake import FakeChannel


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def _admin_on_telegram(db: AsyncEngine, clock: Clock) -> None:
    async with db.begin() as conn:
        res = await conn.execute(UserRow.__table__.insert().values(name="a", role="admin", regions=[],
                                                                   created_at=clock.now(), active=True))
        await conn.execute(ChatIdentityRow.__table__.insert().values(
            user_id=res.inserted_primary_key[0], platform="telegram", external_id="9", chat_id="9",
            linked_at=clock.now()))


async def test_only_the_leader_runs_jobs(db: AsyncEngine, real_redis: tuple[aioredis.Redis, str]) -> None:
    redis, prefix = real_redis
    key = prefix + "lease"
    repo, clock, channel = SqlChatRepo(db), Clock(), FakeChannel()
    await _admin_on_telegram(db, clock)

    def jobs() -> ChatJobs:
        notifier = Notifier(repo, {"telegram": channel}, clock, token_key=b"k")
        return ChatJobs(repo, clock, notifier, lambda: DEFAULT_LADDER)

    fast = {"stall_every_s": 0.1, "escalation_every_s": 0.1, "outbox_every_s": 0.1, "lease_every_s": 0.1}
    first = await start_scheduler(redis, jobs(), lease_key=key, lease_ttl_ms=600, **fast)
    await asyncio.sleep(0.3)
    second = await start_scheduler(redis, jobs(), lease_key=key, lease_ttl_ms=600, **fast)
    try:
        await repo.enqueue([NewOutbox("n1", "notice", clock.now(), {"text": "hello"}, recipient_role="admin")],
                           clock.now())
        await asyncio.sleep(0.8)
        assert first.runs["stall_scan"] > 0 and first.runs["outbox"] > 0
        assert sum(second.runs.values()) == 0
        assert [s.text for s in channel.sent] == ["hello"]  # once, though two schedulers run
        await first.stop()
        await asyncio.sleep(1.0)
        assert second.runs["outbox"] > 0  # took over
    finally:
        await first.stop()
        await second.stop()


async def test_console_channel_transcript() -> None:
    out = StringIO()
    channel = ConsoleChannel(Console(file=out, width=100, color_system=None), names={"101": "东区经理"})
    card = Card("审批请求 · 订单 TM1", (("金额", "¥8,000.00"),), "⏳ 待审批", (Button("批准", "t"),))
    ref = await channel.send(Outgoing(chat_id="101", card=card))
    await channel.update(ref, Card("审批请求 · 订单 TM1", (("金额", "¥8,000.00"),), "✅ 已批准"))
    await channel.answer("cb", "已批准")
    await channel.send(Outgoing(chat_id="7", text="您好", request_contact=True))
    text = out.getvalue()
    assert ref == ChatRef("console", "101", "1")
    for piece in ("东区经理", "审批请求 · 订单 TM1", "[ 批准 ]", "✅ 已批准", "💬 已批准", "您好", "分享手机号按钮"):
        assert piece in text


class SlowChannel(FakeChannel):
    """A send that takes a while, so the test can stop the scheduler in the middle of a pass."""

    def __init__(self) -> None:
        super().__init__()
        self.sending = asyncio.Event()

    async def send(self, message: Outgoing) -> ChatRef:
        self.sending.set()
        await asyncio.sleep(0.3)
        return await super().send(message)


async def test_stop_lets_a_pass_in_progress_record_what_it_sent(db: AsyncEngine, redis: aioredis.Redis) -> None:
    repo, clock, channel = SqlChatRepo(db), Clock(), SlowChannel()
    await _admin_on_telegram(db, clock)
    await repo.enqueue([NewOutbox("n1", "notice", clock.now(), {"text": "hello"}, recipient_role="admin")],
                       clock.now())
    jobs = ChatJobs(repo, clock, Notifier(repo, {"telegram": channel}, clock, token_key=b"k"), lambda: DEFAULT_LADDER)
    sched = await start_scheduler(redis, jobs, lease_key=f"test:{uuid.uuid4().hex}", lease_ttl_ms=600,
                                  stall_every_s=60, escalation_every_s=60, outbox_every_s=0.05, lease_every_s=0.05)
    await asyncio.wait_for(channel.sending.wait(), 10)
    await sched.stop()  # mid-send
    assert [s.text for s in channel.sent] == ["hello"]
    [row_id] = await repo.outbox_ids_for_keys(["n1"])
    item = await repo.outbox_item(row_id)
    assert item is not None and item.status == "sent"  # recorded: a restart will not send it again
