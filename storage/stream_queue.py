"""Every Redis-stream queue OrderHub has, on one implementation: `StreamQueue` holds the mechanics (a consumer
group, reading new entries, reclaiming what a crashed consumer left pending, acknowledging, settling an entry
atomically), and two kinds of queue build on it:

- `UpdateQueue` (here): a chat platform's inbound updates (`keys.TELEGRAM_UPDATES`, `keys.WECOM_EVENTS`). The webhook
  route (or Telegram's poller) only pushes the raw payload and returns; a consumer (bot/platforms/inbound/consumer.py)
  handles it. Platforms redeliver what they got no answer for, so pushes are deduplicated by the platform's id for the
  update (a marker key with a TTL, set in the same Lua call as the XADD). A failed update goes back at the end of the
  stream with its attempt counted.
- `RedisIntakeQueue` (storage/intake_queue.py): orders, carrier and refund pushes, with a backoff retry set and a
  dead-letter stream.

Why a stream with a consumer group rather than a list: an entry popped by a consumer that then crashes stays pending
and is reclaimed, instead of being lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from storage.redis_conn import create_group

SEEN_TTL_S = 24 * 3600  # Telegram keeps undelivered updates for 24 h, WeCom retries for seconds
MAXLEN = 100_000

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

# KEYS[1] stream, KEYS[2] seen marker; ARGV[1] raw update, ARGV[2] ttl, ARGV[3] maxlen
_PUSH_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[2])) then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[3]), '*', 'u', ARGV[1], 'a', '0')
  return 1
end
return 0
"""

RawEntry = tuple[str, dict[bytes, bytes]]


def as_str(value: Any) -> Any:
    """A reply field as str (clients may be set to answer bytes)."""
    return value.decode() if isinstance(value, bytes) else value


class StreamQueue:
    """One stream and its consumer group. Subclasses turn raw entries into their entry type."""

    def __init__(self, redis: aioredis.Redis, stream: str, group: str) -> None:
        self.redis, self.stream, self.group = redis, stream, group
        self._ack_delete = redis.register_script(_ACK_DELETE)
        self._claim_cursor = "0-0"

    async def ensure_group(self) -> None:
        await create_group(self.redis, self.stream, self.group)

    async def _read(self, consumer: str, count: int, block_ms: int | None, *, own: bool = False) -> list[RawEntry]:
        """Up to `count` new entries (`block_ms=None` returns at once, a number waits that long for the first one);
        with `own`, what this consumer was given and has not acknowledged instead."""
        resp = await self.redis.xreadgroup(self.group, consumer, {self.stream: "0" if own else ">"}, count=count,
                                           block=None if own else block_ms)
        return await self._live(resp[0][1]) if resp else []

    async def _reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[RawEntry]:
        """Take over entries another (crashed) consumer left pending for longer than `min_idle_ms`."""
        resp = await self.redis.xautoclaim(self.stream, self.group, consumer, min_idle_time=min_idle_ms,
                                           start_id=self._claim_cursor, count=count)
        self._claim_cursor = as_str(resp[0])
        return await self._live(resp[1])

    async def _live(self, rows: Sequence[tuple[Any, dict[bytes, bytes] | None]]) -> list[RawEntry]:
        """The rows that still hold an entry; one trimmed while pending has nothing left to process: acknowledged."""
        live, gone = [], []
        for eid, fields in rows:
            (live.append((as_str(eid), fields)) if fields else gone.append(eid))
        if gone:
            await self.redis.xack(self.stream, self.group, *gone)
        return live

    async def ack(self, ids: Sequence[str]) -> None:
        """Done with these entries: acknowledged and deleted."""
        if ids:
            await self._ack_delete(keys=[self.stream], args=[self.group, *ids])

    async def _settle(self, entry_id: str, then: Callable[[Any], object]) -> None:
        """Replace entry `entry_id` atomically: `then` queues, on the transaction, where it goes instead (back at
        the end, a retry set, the dead letters); it is acknowledged and deleted in the same transaction."""
        pipe = self.redis.pipeline(transaction=True)
        then(pipe)
        pipe.xack(self.stream, self.group, entry_id)
        pipe.xdel(self.stream, entry_id)
        await pipe.execute()

    async def stream_length(self) -> int:
        return int(await self.redis.xlen(self.stream))


@dataclass(frozen=True, slots=True)
class QueuedUpdate:
    id: str
    raw: bytes
    attempts: int  # failed handling attempts so far


def _update(entry: RawEntry) -> QueuedUpdate:
    eid, fields = entry
    return QueuedUpdate(id=eid, raw=fields[b"u"], attempts=int(fields.get(b"a", b"0")))


class UpdateQueue(StreamQueue):
    """A chat platform's inbound updates, deduplicated by the platform's update id."""

    def __init__(self, redis: aioredis.Redis, key: str, group: str) -> None:
        super().__init__(redis, key, group)
        self._push_once = redis.register_script(_PUSH_ONCE)

    def _seen_key(self, update_id: int | str) -> str:
        return f"{self.stream}:seen:{update_id}"

    async def push(self, update_id: int | str, raw: bytes) -> bool:
        """Durable once this returns; False when this update_id was already queued (a redelivery). WeCom, which
        reuses this queue under its own key, passes a string id (MsgId, or a hash of the event's fields)."""
        added = await self._push_once(keys=[self.stream, self._seen_key(update_id)], args=[raw, SEEN_TTL_S, MAXLEN])
        return bool(added)

    async def read(self, consumer: str, count: int = 50, block_ms: int | None = None) -> list[QueuedUpdate]:
        return [_update(e) for e in await self._read(consumer, count, block_ms)]

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int = 50) -> list[QueuedUpdate]:
        return [_update(e) for e in await self._reclaim(consumer, min_idle_ms, count)]

    async def retry(self, entry: QueuedUpdate, *, counted: bool = True) -> None:
        """Put a failed entry back at the end, atomically with its ack: with one more attempt counted, or (an
        outage, not the entry's fault) with its count as it was."""
        attempts = entry.attempts + (1 if counted else 0)
        await self._settle(entry.id, lambda pipe: pipe.xadd(self.stream, {"u": entry.raw, "a": attempts},
                                                            maxlen=MAXLEN, approximate=True))

    async def depth(self) -> int:
        return await self.stream_length()
