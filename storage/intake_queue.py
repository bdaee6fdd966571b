"""The intake queue on Redis streams: durable before 202, consumer groups to spread the work, retries with backoff,
a dead-letter stream, and reclaiming what a crashed worker left pending (the stream mechanics: `StreamQueue`,
storage/stream_queue.py, shared with the chat platforms' inbound queues).

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
from storage.stream_queue import RawEntry, StreamQueue, as_str

# Move due retries back into the stream atomically, so a crash can neither lose nor double one.
_PROMOTE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local e = cjson.decode(member)
  redis.call('XADD', KEYS[2], '*', 'c', e.c, 'b', e.b, 'a', tostring(e.a), 't', tostring(e.t), 'r', e.r or 'system')
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""

# Forget a consumer only while it owns no pending entry (checked and deleted in one step, so none is orphaned).
_DEL_IDLE_CONSUMER = """
local owned = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #owned > 0 then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""
# A worker asks for entries at least every block interval (1 s) plus one batch; longer silence means it is not running.
LIVE_IDLE_MS = 30_000
# A consumer silent this long, owning nothing (a live worker has claimed its entries), is a process that is gone.
GONE_IDLE_MS = 120_000


@dataclass(frozen=True, slots=True)
class ConsumerInfo:
    name: str
    idle_ms: int
    pending: int

    @property
    def live(self) -> bool:
        return self.idle_ms < LIVE_IDLE_MS


@dataclass(frozen=True, slots=True)
class QueueStatus:
    depth: int  # entries in the stream not yet acknowledged (waiting + in flight)
    waiting: int  # not yet delivered to any worker
    pending: int  # delivered, not yet acknowledged
    retrying: int
    dead: int
    consumers: int


class RedisIntakeQueue(StreamQueue):
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        stream: str = keys.INTAKE_STREAM,
        group: str = keys.INTAKE_GROUP,
        retry_key: str = keys.INTAKE_RETRY_ZSET,
        dead_stream: str = keys.DEAD_LETTER_STREAM,
    ) -> None:
        super().__init__(redis, stream, group)
        self.retry_key, self.dead_stream = retry_key, dead_stream
        self._buffer: list[tuple[str, Sequence[bytes], int, asyncio.Future[None], str]] = []
        self._flushing = False
        self._promote = redis.register_script(_PROMOTE_DUE)
        self._del_consumer = redis.register_script(_DEL_IDLE_CONSUMER)

    # --- producer side --------------------------------------------------------------------------------------------

    async def enqueue(self, channel: str, bodies: Sequence[bytes], requested_by: str = "system") -> None:
        """Durable once this returns. Concurrent callers share one pipelined round trip (coalesced XADDs).

        `requested_by`: who caused these orders (`user:<id>` for an import by a staff user); their approval
        requests name them, so four-eyes holds them to it. A plain webhook is `system` (not stored: the default)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer.append((channel, bodies, int(time.time() * 1000), fut, requested_by))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        await fut

    async def _flush(self) -> None:
        try:
            while self._buffer:
                batch, self._buffer = self._buffer, []
                pipe = self.redis.pipeline(transaction=False)
                for channel, bodies, received_ms, _, by in batch:
                    fields: dict[str, Any] = {"c": channel, "b": b"", "t": received_ms}
                    if by != "system":
                        fields["r"] = by
                    for body in bodies:
                        pipe.xadd(self.stream, {**fields, "b": body})
                try:
                    await pipe.execute()
                except Exception as exc:  # every waiter learns it; they answer 503 and the sender retries
                    for *_, fut, _ in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                else:
                    for *_, fut, _ in batch:
                        if not fut.done():
                            fut.set_result(None)
        finally:
            self._flushing = False

    # --- consumer side --------------------------------------------------------------------------------------------

    async def read(self, consumer: str, count: int, block_ms: int | None) -> list[IntakeEntry]:
        """Up to `count` new entries; `block_ms=None` returns at once, a number waits that long for the first one."""
        return [_entry(e) for e in await self._read(consumer, count, block_ms)]

    async def read_own_pending(self, consumer: str, count: int) -> list[IntakeEntry]:
        """What this consumer was given and has not acknowledged (after an outage or a crashed loop): retried at
        once rather than after another consumer's XAUTOCLAIM delay."""
        return [_entry(e) for e in await self._read(consumer, count, None, own=True)]

    async def beat(self, consumer: str, now_unix: float) -> None:
        """This consumer's loop is turning (what /healthz reads)."""
        await self.redis.hset(keys.INTAKE_WORKERS, consumer, str(now_unix))

    async def forget(self, consumer: str) -> None:
        await self.redis.hdel(keys.INTAKE_WORKERS, consumer)

    async def worker_beats(self) -> dict[str, float]:
        raw = await self.redis.hgetall(keys.INTAKE_WORKERS)
        return {as_str(k): float(v) for k, v in raw.items()}

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[IntakeEntry]:
        """Take over entries another (crashed) worker left pending for longer than `min_idle_ms`."""
        return [_entry(e) for e in await self._reclaim(consumer, min_idle_ms, count)]

    async def retry_later(self, entry: IntakeEntry, due_unix: float) -> None:
        member = orjson.dumps(
            {"id": entry.id, "c": entry.channel, "b": entry.body.decode(), "a": entry.attempts + 1,
             "t": entry.received_ms, "r": entry.requested_by}
        )
        await self._settle(entry.id, lambda pipe: pipe.zadd(self.retry_key, {member: due_unix}))

    async def promote_due(self, now_unix: float, limit: int = 500) -> int:
        return int(await self._promote(keys=[self.retry_key, self.stream], args=[now_unix, limit]))

    async def dead_letter(self, entry: IntakeEntry, error: str) -> None:
        fields = {"c": entry.channel, "b": entry.body, "a": entry.attempts + 1, "e": error[:2000], "id": entry.id,
                  "r": entry.requested_by}
        await self._settle(entry.id, lambda pipe: pipe.xadd(self.dead_stream, fields))

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
        group = next((g for g in groups if as_str(g["name"]) == self.group), None)
        lag = group.get("lag") if group else None
        pending_n = int(pending["pending"])
        waiting = int(lag) if lag is not None else max(int(depth) - pending_n, 0)
        return QueueStatus(
            depth=int(depth), waiting=waiting, pending=pending_n, retrying=int(retrying), dead=int(dead),
            consumers=int(group["consumers"]) if group else 0,
        )

    async def consumers(self) -> list[ConsumerInfo]:
        """The group's consumers with their idle time (since they last asked for entries) and pending count."""
        await self.ensure_group()
        rows = await self.redis.xinfo_consumers(self.stream, self.group)
        return [ConsumerInfo(str(as_str(r["name"])), int(r["idle"]), int(r["pending"])) for r in rows]

    async def prune_consumers(self, gone_idle_ms: int = GONE_IDLE_MS) -> list[str]:
        """XGROUP DELCONSUMER for consumers silent longer than `gone_idle_ms` that own no pending entry (a live
        worker's reclaim moves a dead one's entries to itself first); a stopped worker stops being counted."""
        removed = []
        for c in await self.consumers():
            if c.idle_ms >= gone_idle_ms and c.pending == 0:
                if int(await self._del_consumer(keys=[self.stream], args=[self.group, c.name])) >= 0:
                    removed.append(c.name)
        return removed

    async def depth(self) -> int:
        return await self.stream_length() + int(await self.redis.zcard(self.retry_key))

    async def dead_count(self) -> int:
        return int(await self.redis.xlen(self.dead_stream))

    async def dead_entries(self, limit: int = 1000) -> list[dict[str, Any]]:
        rows = await self.redis.xrange(self.dead_stream, count=limit)
        return [{"dead_id": as_str(eid), **{as_str(k): as_str(v) for k, v in f.items()}} for eid, f in rows]

    async def replay_dead(self, limit: int = 10_000) -> int:
        """Put dead letters back at the end of the intake stream with a fresh attempt count."""
        moved = 0
        while moved < limit:
            rows = await self.redis.xrange(self.dead_stream, count=min(500, limit - moved))
            if not rows:
                break
            pipe = self.redis.pipeline(transaction=True)
            for eid, f in rows:
                pipe.xadd(self.stream, {"c": f[b"c"], "b": f[b"b"], "t": int(time.time() * 1000),
                                        "r": f.get(b"r", b"system")})
                pipe.xdel(self.dead_stream, eid)
            await pipe.execute()
            moved += len(rows)
        return moved


def _entry(raw: RawEntry) -> IntakeEntry:
    eid, fields = raw
    return IntakeEntry(
        id=eid,
        channel=fields[b"c"].decode(),
        body=fields[b"b"],
        attempts=int(fields.get(b"a", b"0")),
        received_ms=int(fields.get(b"t", b"0")),
        requested_by=fields[b"r"].decode() if b"r" in fields else "system",
    )
