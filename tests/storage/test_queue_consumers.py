"""`queue status` shows live consumers with idle time and removes the ones that are gone — but only once a live
worker has claimed what they owned (XGROUP DELCONSUMER would otherwise drop their pending entries)."""

from __future__ import annotations

import redis.asyncio as aioredis

from storage.intake_queue import RedisIntakeQueue


async def test_gone_consumers_are_removed_only_when_they_own_nothing(redis: aioredis.Redis) -> None:
    queue = RedisIntakeQueue(redis, stream="c:intake", group="c-group", retry_key="c:retry", dead_stream="c:dead")
    await queue.ensure_group()
    await queue.enqueue("generic", [b"{}"])
    await queue._flush()
    assert [e.channel for e in await queue.read("crashed-1", 10, None)] == ["generic"]  # owns one entry
    await redis.xgroup_createconsumer("c:intake", "c-group", "stopped-2")  # owns nothing
    consumers = {c.name: c for c in await queue.consumers()}
    assert set(consumers) == {"crashed-1", "stopped-2"} and consumers["crashed-1"].pending == 1
    assert all(c.live for c in consumers.values())  # they asked just now

    assert await queue.prune_consumers(gone_idle_ms=0) == ["stopped-2"]
    assert [c.name for c in await queue.consumers()] == ["crashed-1"]  # its entry is not lost

    claimed = await queue.reclaim("live-3", min_idle_ms=0, count=10)  # a live worker takes it over
    assert len(claimed) == 1
    assert await queue.prune_consumers(gone_idle_ms=0) == ["crashed-1"]
    assert [c.name for c in await queue.consumers()] == ["live-3"]
    assert (await queue.status()).pending == 1  # still pending, now with live-3
