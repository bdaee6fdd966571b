"""The intake queue on Redis streams: durable before 202, consumer groups to spread the work, retries with backoff,
a dead-letter stream, and reclaiming what a crashed worker left pending.

An entry is one order. A failed entry is moved atomically to a retry sorted set (score = when it may run again) and
comes back as a new stream entry carrying its attempt count; after `max_attempts` it goes to the dead-letter stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from handlers.ports import IntakeEntry
from storage import keys
from storage.redis_conn import create_group

# Move due retries back into the stream atomically, so a crash can neither lose nor double one.
_PROMOTE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local e = cjson.decode(member)
  redis.call('XADD', KEYS[2], '*', 'c', e.c, 'b', e.b, 'a', tostring(e.a), 't', tostring(e.t))
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""

# Acknowledge and delete a batch's entries atomically, the ids sent once (not once per command).
_ACK_DELETE = """
local n = #ARGV
for i = 2, n, 1000 do
  local j = math.min(i + 999, n)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, i, j))
  redis.call('XDEL', KEYS[1], unpack(ARGV, i, j))
end
return n - 1
"""


@dataclass(frozen=True, slots=True)
class QueueStatus:
    depth: int  # entries in the stream not yet acknowledged (waiting + in flight)
    waiting: int  # not yet delivered to any worker
    pending: int  # delivered, not yet acknowledged
    retrying: int
    dead: int
    consumers: int


class RedisIntakeQueue:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        stream: str = keys.INTAKE_STREAM,
        group: str = keys.INTAKE_GROUP,
        retry_key: str = keys.INTAKE_RETRY_ZSET,
        dead_stream: str = keys.DEAD_LETTER_STREAM,
    ) -> None:
        self.redis = redis
        self.stream, self.group, self.retry_key, self.dead_stream = stream, group, retry_key, dead_stream
        self._buffer: list[tuple[str, Sequence[bytes], int, asyncio.Future[None]]] = []
        self._flushing = False
        self._promote = redis.register_script(_PROMOTE_DUE)
        self._ack_delete = redis.register_script(_ACK_DELETE)
        self._claim_cursor = "0-0"

    # --- producer side --------------------------------------------------------------------------------------------

    async def enqueue(self, channel: str, bodies: Sequence[bytes]) -> None:
        """Durable once this returns. Concurrent callers share one pipelined round trip (coalesced XADDs)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer.append((channel, bodies, int(time.time() * 1000), fut))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        await fut

    async def _flush(self) -> None:
        try:
            while self._buffer:
                batch, self._buffer = self._buffer, []
                pipe = self.redis.pipeline(transaction=False)
                for channel, bodies, received_ms, _ in batch:
                    for body in bodies:
                        pipe.xadd(self.stream, {"c": channel, "b": body, "t": received_ms})
                try:
                    await pipe.execute()
                except Exception as exc:  # every waiter learns it; they answer 503 and the sender retries
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                else:
                    for *_, fut in batch:
                        if not fut.done():
                            fut.set_result(None)
        finally:
            self._flushing = False

    # --- consumer side --------------------------------------------------------------------------------------------

    async def ensure_group(self) -> None:
        await create_group(self.redis, self.stream, self.group)

    async def read(self, consumer: str, count: int, block_ms: int | None) -> list[IntakeEntry]:
        """Up to `count` new entries; `block_ms=None` returns at once, a number waits that long for the first one."""
        resp = await self.redis.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count, block=block_ms)
        if not resp:
            return []
        return [_entry(eid, fields) for eid, fields in resp[0][1] if fields]

    async def read_own_pending(self, consumer: str, count: int) -> list[IntakeEntry]:
        """What this consumer was given and has not acknowledged (after an outage or a crashed loop): retried at
        once rather than after another consumer's XAUTOCLAIM delay."""
        resp = await self.redis.xreadgroup(self.group, consumer, {self.stream: "0"}, count=count)
        if not resp:
            return []
        entries, deleted = [], []
        for eid, fields in resp[0][1]:
            (entries.append(_entry(eid, fields)) if fields else deleted.append(eid))
        if deleted:
            await self.redis.xack(self.stream, self.group, *deleted)
        return entries

    async def beat(self, consumer: str, now_unix: float) -> None:
        """This consumer's loop is turning (what /healthz reads)."""
        await self.redis.hset(keys.INTAKE_WORKERS, consumer, str(now_unix))

    async def forget(self, consumer: str) -> None:
        await self.redis.hdel(keys.INTAKE_WORKERS, consumer)

    async def worker_beats(self) -> dict[str, float]:
        raw = await self.redis.hgetall(keys.INTAKE_WORKERS)
        return {_s(k): float(v) for k, v in raw.items()}

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[IntakeEntry]:
        """Take over entries another (crashed) worker left pending for longer than `min_idle_ms`."""
        resp = await self.redis.xautoclaim(
            self.stream, self.group, consumer, min_idle_time=min_idle_ms, start_id=self._claim_cursor, count=count
        )
        next_cursor, claimed = resp[0], resp[1]
        self._claim_cursor = next_cursor.decode() if isinstance(next_cursor, bytes) else next_cursor
        entries, deleted = [], []
        for eid, fields in claimed:
            if fields:
                entries.append(_entry(eid, fields))
            else:  # trimmed while pending: nothing left to process
                deleted.append(eid)
        if deleted:
            await self.redis.xack(self.stream, self.group, *deleted)
        return entries

    async def ack(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        await self._ack_delete(keys=[self.stream], args=[self.group, *ids])

    async def retry_later(self, entry: IntakeEntry, due_unix: float) -> None:
        member = orjson.dumps(
            {"id": entry.id, "c": entry.channel, "b": entry.body.decode(), "a": entry.attempts + 1,
             "t": entry.received_ms}
        )
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(self.retry_key, {member: due_unix})
        pipe.xack(self.stream, self.group, entry.id)
        pipe.xdel(self.stream, entry.id)
        await pipe.execute()

    async def promote_due(self, now_unix: float, limit: int = 500) -> int:
        return int(await self._promote(keys=[self.retry_key, self.stream], args=[now_unix, limit]))

    async def dead_letter(self, entry: IntakeEntry, error: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(
            self.dead_stream,
            {"c": entry.channel, "b": entry.body, "a": entry.attempts + 1, "e": error[:2000], "id": entry.id},
        )
        pipe.xack(self.stream, self.group, entry.id)
        pipe.xdel(self.stream, entry.id)
        await pipe.execute()

    # --- operators ------------------------------------------------------------------------------------------------

    async def status(self) -> QueueStatus:
        await self.ensure_group()
        pipe = self.redis.pipeline(transaction=False)
        pipe.xlen(self.stream)
        pipe.xpending(self.stream, self.group)
        pipe.zcard(self.retry_key)
        pipe.xlen(self.dead_stream)
        pipe.xinfo_groups(self.stream)
        depth, pending, retrying, dead, groups = await pipe.execute()
        group = next((g for g in groups if _s(g["name"]) == self.group), None)
        lag = group.get("lag") if group else None
        pending_n = int(pending["pending"])
        waiting = int(lag) if lag is not None else max(int(depth) - pending_n, 0)
        return QueueStatus(
            depth=int(depth), waiting=waiting, pending=pending_n, retrying=int(retrying), dead=int(dead),
            consumers=int(group["consumers"]) if group else 0,
        )

    async def depth(self) -> int:
        return int(await self.redis.xlen(self.stream)) + int(await self.redis.zcard(self.retry_key))

    async def dead_count(self) -> int:
        return int(await self.redis.xlen(self.dead_stream))

    async def dead_entries(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = await self.redis.xrange(self.dead_stream, count=limit)
        return [{"dead_id": _s(eid), **{_s(k): _s(v) for k, v in f.items()}} for eid, f in rows]

    async def replay_dead(self, limit: int = 10_000) -> int:
        """Put dead letters back at the end of the intake stream with a fresh attempt count."""
        moved = 0
        while moved < limit:
            rows = await self.redis.xrange(self.dead_stream, count=min(500, limit - moved))
            if not rows:
                break
            pipe = self.redis.pipeline(transaction=True)
            for eid, f in rows:
                pipe.xadd(self.stream, {"c": f[b"c"], "b": f[b"b"], "t": int(time.time() * 1000)})
                pipe.xdel(self.dead_stream, eid)
            await pipe.execute()
            moved += len(rows)
        return moved


def _s(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _entry(eid: Any, fields: dict[bytes, bytes]) -> IntakeEntry:
    return IntakeEntry(
        id=_s(eid),
        channel=fields[b"c"].decode(),
        body=fields[b"b"],
        attempts=int(fields.get(b"a", b"0")),
        received_ms=int(fields.get(b"t", b"0")),
    )
