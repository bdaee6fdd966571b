"""Per-chat flood control for outgoing messages: ~1 message/s per chat and 20/min per group (Telegram's limits).
Which chats are groups each platform declares (`Capabilities.group_prefixes`).

Time and sleep are injected, so tests run on a fake clock and can see every wait. A 429's `retry_after` blocks
the chat for exactly that long (`block`), so the next send to it waits it out.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

PER_CHAT_INTERVAL_S = 1.0
GROUP_PER_MINUTE = 20


class ChatRateLimiter:
    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        interval_s: float = PER_CHAT_INTERVAL_S,
        group_per_minute: int = GROUP_PER_MINUTE,
    ) -> None:
        self._now = monotonic
        self._sleep = sleep
        self._interval = interval_s
        self._group_per_minute = group_per_minute
        self._next_at: dict[str, float] = {}
        self._group_sends: dict[str, deque[float]] = {}

    def block(self, chat_key: str, seconds: float) -> None:
        """Nothing goes to this chat for `seconds` (the platform said so)."""
        self._next_at[chat_key] = max(self._next_at.get(chat_key, 0.0), self._now() + seconds)

    def wait_needed(self, chat_key: str, group: bool) -> float:
        now = self._now()
        wait = max(self._next_at.get(chat_key, 0.0) - now, 0.0)
        sends = self._group_sends.get(chat_key)
        if group and sends is not None:
            while sends and sends[0] <= now - 60.0:
                sends.popleft()
            if len(sends) >= self._group_per_minute:
                wait = max(wait, sends[0] + 60.0 - now)
        return wait

    async def acquire(self, chat_key: str, group: bool = False) -> None:
        """Wait until a message may go to this chat, then count it as sent."""
        while (wait := self.wait_needed(chat_key, group)) > 0:
            await self._sleep(wait)
        now = self._now()
        self._next_at[chat_key] = now + self._interval
        if group:
            self._group_sends.setdefault(chat_key, deque()).append(now)
