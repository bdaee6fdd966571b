"""Where a WeCom card's `response_code` waits until an edit needs it.

WeCom edits a sent template card only with a response_code (`message/update_template_card`), each usable once and
for 72 hours: `message/send` returns one, and every click on the card brings a fresh one in its callback. The
stored ChatRef of a card names its task_id, so per task_id we keep the newest unused code. The process that edits
(notifier, consumer) is often not the one that sent or received the click, hence Redis.
"""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as aioredis

from storage import keys

CODE_TTL_S = 72 * 3600


class ResponseCodes(Protocol):
    async def put(self, task_id: str, code: str) -> None: ...

    async def take(self, task_id: str) -> str | None:
        """The newest unused code, removed (a code works once); None when there is none."""
        ...


class RedisResponseCodes:
    def __init__(self, redis: aioredis.Redis, prefix: str = keys.WECOM_CARD_CODES) -> None:
        self.redis, self.prefix = redis, prefix

    async def put(self, task_id: str, code: str) -> None:
        await self.redis.set(self.prefix + task_id, code, ex=CODE_TTL_S)

    async def take(self, task_id: str) -> str | None:
        value = await self.redis.getdel(self.prefix + task_id)
        return value.decode() if isinstance(value, bytes) else value


class MemoryResponseCodes:
    """For one-process use (tests, the CLI)."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}

    async def put(self, task_id: str, code: str) -> None:
        self.codes[task_id] = code

    async def take(self, task_id: str) -> str | None:
        return self.codes.pop(task_id, None)
