"""A Redis lease so exactly one process leads (the scheduler): SET NX PX to take it, a Lua compare to renew or
release it, so a process can never extend or drop a lease another process holds.

`held` is conservative: it turns false a safety margin before the lease could have expired on the server, so a
leader that cannot reach Redis stops acting before anyone else can take over.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis

from storage.keys import SCHEDULER_LEASE

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLease:
    def __init__(self, redis: aioredis.Redis, key: str = SCHEDULER_LEASE, *, ttl_ms: int = 15_000,
                 owner: str | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = ttl_ms
        self.owner = owner or uuid.uuid4().hex
        self._now = monotonic
        self._valid_until = 0.0

    @property
    def held(self) -> bool:
        return self._now() < self._valid_until

    def _mark(self, started: float) -> None:
        # Counted from before the call: the server's expiry started no earlier than that; keep a 20 % margin.
        self._valid_until = started + self.ttl_ms / 1000 * 0.8

    async def acquire(self) -> bool:
        started = self._now()
        if await self.redis.set(self.key, self.owner, nx=True, px=self.ttl_ms):
            self._mark(started)
            return True
        return await self.renew()

    async def renew(self) -> bool:
        started = self._now()
        ok = bool(await self.redis.eval(_RENEW, 1, self.key, self.owner, self.ttl_ms))
        if ok:
            self._mark(started)
        else:
            self._valid_until = 0.0
        return ok

    async def release(self) -> bool:
        self._valid_until = 0.0
        return bool(await self.redis.eval(_RELEASE, 1, self.key, self.owner))

    async def tick(self) -> bool:
        """Keep the lease if held, else try to take it; returns whether this process leads now."""
        try:
            return await (self.renew() if self.held else self.acquire())
        except aioredis.RedisError:
            return self.held  # Redis unreachable: lead only until the margin runs out
