"""The chat core as the composition root builds it: real repo, Redis limiter, live rules deadlines."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import redis.asyncio as aioredis
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.wiring.chat import build_chat_core, chat_token_key
from bot.settings import BUNDLED_RULES
from engine.rules import load_rules
from handlers.chat import CommandReceived, Sender
from tests.chatfake import FakeChannel


def test_token_key_is_created_once_and_kept(tmp_path: Path) -> None:
    settings = SimpleNamespace(data_dir=tmp_path / "d")
    key = chat_token_key(settings)
    assert len(key) == 32 and chat_token_key(settings) == key
    assert (tmp_path / "d" / "token.key").stat().st_mode & 0o777 == 0o600
    assert chat_token_key(SimpleNamespace(data_dir=tmp_path, token_key=SecretStr("configured"))) == b"configured"


async def test_core_handles_events(db: AsyncEngine, redis: aioredis.Redis) -> None:
    rules = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
    channel = FakeChannel()

    class Clock:
        def now(self):
            from datetime import UTC, datetime

            return datetime(2025, 11, 11, tzinfo=UTC)

    core = build_chat_core(db, redis, {"telegram": channel}, Clock(), lambda: rules, token_key=b"k")
    await core.handle(CommandReceived(Sender("telegram", "1", "1"), "start"))
    assert channel.sent[-1].message.request_contact
    for i in range(5):  # the Redis limiter is wired: the fifth bad code locks
        await core.handle(CommandReceived(Sender("telegram", "1", "1"), "link", (f"BAD{i}",)))
    assert "尝试次数过多" in channel.sent[-1].text
    await core.close()
