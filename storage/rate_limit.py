"""Failed-attempt limits in Redis (customer verification, link codes): N failures per window, then a lock.

Implements `handlers.chat_ports.AttemptLimiter`; shared by every process, so switching workers does not reset it.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from storage.keys import RATE_LIMIT

_FAIL = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n >= tonumber(ARGV[2]) then redis.call('SET', KEYS[2], '1', 'PX', ARGV[3]) end
return n
"""


class RedisAttemptLimiter:
    def __init__(self, redis: aioredis.Redis, *, limit: int = 5, window_s: int = 3600, lock_s: int = 3600,
                 prefix: str = RATE_LIMIT) -> None:
        self.redis, self.limit, self.window_ms, self.lock_ms = redis, limit, window_s * 1000, lock_s * 1000
        self.prefix = prefix

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}fail:{key}", f"{self.prefix}lock:{key}"

    async def locked_for(self, key: str) -> float:
        ttl = await self.redis.pttl(self._keys(key)[1])
        return max(ttl, 0) / 1000

    async def fail(self, key: str, *, limit: int | None = None) -> int:
        fails, lock = self._keys(key)
        return int(await self.redis.eval(_FAIL, 2, fails, lock, self.window_ms, limit or self.limit, self.lock_ms))

    async def reset(self, key: str) -> None:
        await self.redis.delete(*self._keys(key))
