"""`orderhub scheduler` (bot/processes/serve.run_scheduler) with Telegram in polling mode against the stand-in: it
registers the menu, polls, sends what the outbox holds, and hands the lease on when stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.processes.serve import run_scheduler
from bot.settings import Settings
from bot.platforms.telegram.service import telegram_updates
from handlers.chat_ports import NewOutbox
from storage.chat_repo import SqlChatRepo
from storage.keys import SCHEDULER_LEASE
from storage.models import OutboxRow
from storage.users_repo import SqlUsers
from tests.standins.telegram_api import TelegramStandIn


async def wait_for(what: str, check: Callable[[], Any], timeout: float = 15) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


async def test_scheduler_registers_polls_sends_and_releases_the_lease(
        settings: Settings, db: AsyncEngine, redis: Any, telegram_api: TelegramStandIn) -> None:
    s = settings.model_copy(update={"telegram_token": SecretStr(telegram_api.token),
                                    "telegram_api_url": telegram_api.url,
                                    "digest_at": None})  # the digest's own tests cover it; keep this time-free
    now = datetime.now(UTC)
    users = SqlUsers(db)
    await users.add("运营主管", "admin", [], None, None, now)
    await users.link("运营主管", "telegram", "900", now)
    await SqlChatRepo(db).enqueue([NewOutbox("notice:test", "admin_notice", now, {"text": "规则文件无效"},
                                             recipient_role="admin")], now)
    stop = asyncio.Event()
    task = asyncio.create_task(run_scheduler(s, stop))
    try:
        await wait_for("command menu registered", lambda: telegram_api.commands)
        telegram_api.push_update({"message": {"message_id": 1, "date": 1731290000, "text": "/help",
                                              "from": {"id": 900, "is_bot": False, "first_name": "a"},
                                              "chat": {"id": 900, "type": "private", "first_name": "a"}}})
        queue = telegram_updates(redis)
        depth = 0
        for _ in range(300):  # polled into the queue; a worker (not this process) consumes it
            if depth := await queue.depth():
                break
            await asyncio.sleep(0.05)
        assert depth == 1
        sent = await wait_for("outbox swept", lambda: telegram_api.ok_calls("sendMessage"))
        assert [(m["chat_id"], m["text"]) for m in sent] == [("900", "规则文件无效")]
        assert await redis.get(SCHEDULER_LEASE) is not None  # this process leads
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
    assert await redis.get(SCHEDULER_LEASE) is None  # handed on at once, not left to expire
    async with db.connect() as conn:
        assert (await conn.execute(select(OutboxRow.status))).scalars().all() == ["sent"]
