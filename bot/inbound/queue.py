"""The queue between receiving a chat platform's update and handling it: one Redis stream per platform
(`keys.TELEGRAM_UPDATES`, `keys.WECOM_EVENTS`).

The webhook/callback route (and Telegram's poller) only push the raw payload here and return; a consumer handles
them. Why a stream with a consumer group rather than a list: an update popped by a consumer that then crashes stays
pending and is reclaimed, instead of being lost. Platforms redeliver what they got no answer for, so pushes are
deduplicated by the platform's id for the update (a marker key with a TTL, set in the same Lua call as the XADD).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from storage.redis_conn import create_group

SEEN_TTL_S = 24 * 3600  # Telegram keeps undelivered updates for 24 h, WeCom retries for seconds
MAXLEN = 100_000

# KEYS[1] stream, KEYS[2] seen marker; ARGV[1] raw update, ARGV[2] ttl, ARGV[3] maxlen
_PUSH_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[2])) then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[3]), '*', 'u', ARGV[1], 'a', '0')
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class QueuedUpdate:
    id: str
    raw: bytes
    attempts: int  # failed handling attempts so far


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class UpdateQueue:
    def __init__(self, redis: aioredis.Redis, key: str, group: str) -> None:
        self.redis, self.key, self.group = redis, key, group
        self._push_once = redis.register_script(_PUSH_ONCE)
        self._claim_cursor = "0-0"

    def _seen_key(self, update_id: int | str) -> str:
        return f"{self.key}:seen:{update_id}"

    async def push(self, update_id: int | str, raw: bytes) -> bool:
        """Durable once this returns; False when this update_id was already queued (a redelivery). WeCom, which
        reuses this queue under its own key, passes a string id (MsgId, or a hash of the event's fields)."""
        added = await self._push_once(keys=[self.key, self._seen_key(update_id)], args=[raw, SEEN_TTL_S, MAXLEN])
        return bool(added)

    async def ensure_group(self) -> None:
        await create_group(self.redis, self.key, self.group)

    async def read(self, consumer: str, count: int = 50, block_ms: int | None = None) -> list[QueuedUpdate]:
        resp = await self.redis.xreadgroup(self.group, consumer, {self.key: ">"}, count=count, block=block_ms)
        return [_entry(eid, f) for eid, f in resp[0][1] if f] if resp else []

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int = 50) -> list[QueuedUpdate]:
        """Entries a crashed consumer left pending for longer than `min_idle_ms`."""
        cursor, claimed, *_ = await self.redis.xautoclaim(
            self.key, self.group, consumer, min_idle_time=min_idle_ms, start_id=self._claim_cursor, count=count
        )
        self._claim_cursor = _s(cursor)
        return [_entry(eid, f) for eid, f in claimed if f]

    async def ack(self, entry_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.key, self.group, entry_id)
        pipe.xdel(self.key, entry_id)
        await pipe.execute()

    async def retry(self, entry: QueuedUpdate, *, counted: bool = True) -> None:
        """Put a failed entry back at the end, atomically with its ack: with one more attempt counted, or (an
        outage, not the entry's fault) with its count as it was."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(self.key, {"u": entry.raw, "a": entry.attempts + (1 if counted else 0)}, maxlen=MAXLEN,
                  approximate=True)
        pipe.xack(self.key, self.group, entry.id)
        pipe.xdel(self.key, entry.id)
        await pipe.execute()

    async def depth(self) -> int:
        return int(await self.redis.xlen(self.key))


def _entry(eid: bytes | str, fields: dict[bytes, bytes]) -> QueuedUpdate:
    return QueuedUpdate(id=_s(eid), raw=fields[b"u"], attempts=int(fields.get(b"a", b"0")))
