"""The scheduler lease and the attempt limiter on a real Redis (db 15, random keys, cleaned up)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from storage.lease import RedisLease
from storage.rate_limit import RedisAttemptLimiter


async def test_only_one_holder(real_redis: tuple[aioredis.Redis, str]) -> None:
    redis, prefix = real_redis
    a = RedisLease(redis, prefix + "lease", ttl_ms=2000)
    b = RedisLease(redis, prefix + "lease", ttl_ms=2000)
    assert await a.acquire() and a.held
    assert not await b.acquire() and not b.held
    assert await a.tick() and not await b.tick()
    assert not await b.release()  # b cannot drop a's lease
    assert await redis.get(prefix + "lease") == a.owner.encode()
    assert await a.release() and not a.held
    assert await b.acquire()


async def test_expired_lease_moves_to_another_process(real_redis: tuple[aioredis.Redis, str]) -> None:
    redis, prefix = real_redis
    a = RedisLease(redis, prefix + "lease", ttl_ms=300)
    b = RedisLease(redis, prefix + "lease", ttl_ms=300)
    assert await a.acquire()
    await asyncio.sleep(0.4)  # a stopped renewing (crashed)
    assert not a.held
    assert await b.acquire()
    assert not await a.renew()  # a comes back: it must not steal or extend b's lease
    assert not a.held and b.held


async def test_held_turns_false_before_server_expiry() -> None:
    now = [100.0]

    class NoRedis:
        async def set(self, *a: object, **k: object) -> bool:
            return True

    lease = RedisLease(NoRedis(), "k", ttl_ms=10_000, monotonic=lambda: now[0])  # type: ignore[arg-type]
    assert await lease.acquire()
    now[0] += 7.9
    assert lease.held
    now[0] += 0.2
    assert not lease.held  # 80 % of the TTL: stop leading before anyone else could take over


async def test_attempt_limiter(real_redis: tuple[aioredis.Redis, str]) -> None:
    redis, prefix = real_redis
    limiter = RedisAttemptLimiter(redis, limit=5, window_s=3600, lock_s=1, prefix=prefix)
    assert await limiter.locked_for("verify:telegram:1") == 0
    counts = [await limiter.fail("verify:telegram:1") for _ in range(5)]
    assert counts == [1, 2, 3, 4, 5]
    assert 0 < await limiter.locked_for("verify:telegram:1") <= 1
    assert await limiter.locked_for("verify:telegram:2") == 0  # per identity
    assert await redis.pttl(f"{prefix}fail:verify:telegram:1") > 3_000_000  # the window is an hour
    await asyncio.sleep(1.1)
    assert await limiter.locked_for("verify:telegram:1") == 0
    await limiter.reset("verify:telegram:1")
    assert await limiter.fail("verify:telegram:1") == 1
