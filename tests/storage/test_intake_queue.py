"""The intake stream's acknowledgement: one script acknowledges and deletes a batch, in chunks when it is large."""

from __future__ import annotations

import redis.asyncio as aioredis

from storage.intake_queue import RedisIntakeQueue


async def test_ack_acknowledges_and_deletes_every_entry_of_a_large_batch(redis: aioredis.Redis) -> None:
    queue = RedisIntakeQueue(redis, stream="t:intake", group="t-group", retry_key="t:retry", dead_stream="t:dead")
    await queue.ensure_group()
    await queue.enqueue("generic", [b'{"n": %d}' % i for i in range(2500)])  # more than one chunk of 1,000 ids
    taken = await queue.read("w", 2500, None)
    assert len(taken) == 2500
    await queue.ack([e.id for e in taken[:2499]])
    status = await queue.status()
    assert (status.depth, status.pending) == (1, 1)  # the one left out is neither acknowledged nor deleted
    await queue.ack([taken[-1].id])
    status = await queue.status()
    assert (status.depth, status.pending) == (0, 0)
