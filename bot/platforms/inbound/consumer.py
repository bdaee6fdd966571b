"""The consumer side of the inbound queues: queued platform payloads → neutral events → the chat core.

Several processes may consume the same queue (a Redis consumer group spreads the entries); entries a crashed
consumer left pending are reclaimed after `claim_idle_s`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from handlers.chat import InboundEvent
from storage.intake_unit import is_unavailable
from storage.redis_conn import consumer_name
from storage.stream_queue import QueuedUpdate, UpdateQueue

log = logging.getLogger(__name__)

EventHandler = Callable[[InboundEvent], Awaitable[Any]]
EventReader = Callable[[bytes], Awaitable[InboundEvent | None]]  # a queued raw payload → an event (None: ignore)


class InboundConsumer:
    """Pops queued updates, converts them (`read`: the platform's raw payload → a neutral event) and hands the
    events to the chat core, one at a time (chat order kept).

    A handler failure puts the update back with an attempt counted; after `max_attempts` it is dropped with an
    error log (a poison update must not block every chat behind it). A failure because the database or Redis is
    away is not the update's fault: it goes back uncounted, so a press made during an outage is handled once the
    outage ends instead of being dropped after three quick tries. `name` (the platform) labels the logs.
    """

    def __init__(
        self,
        queue: UpdateQueue,
        handle: EventHandler,
        *,
        consumer: str | None = None,
        max_attempts: int = 3,
        claim_idle_s: float = 60.0,
        failure_pause_s: float = 1.0,
        read: EventReader,
        name: str,
    ) -> None:
        self.queue, self.handle = queue, handle
        self.reader, self.name = read, name
        self.consumer = consumer or consumer_name()
        self.max_attempts, self.claim_idle_ms = max_attempts, int(claim_idle_s * 1000)
        self.failure_pause_s = failure_pause_s
        self._grouped = False

    async def _ready(self) -> None:
        if not self._grouped:
            await self.queue.ensure_group()
            self._grouped = True

    async def process(self, entry: QueuedUpdate) -> bool:
        """Handle one entry; True when it is done with (handled, ignored or dropped), False when requeued."""
        try:
            event = await self.reader(entry.raw)
        except Exception:
            log.exception("%s update %s could not be read; dropped", self.name, entry.id)
            await self.queue.ack([entry.id])
            return True
        if event is not None:
            try:
                await self.handle(event)
            except Exception as exc:
                if is_unavailable(exc) or isinstance(exc, aioredis.RedisError):
                    log.warning("%s update %s: the database or Redis is unavailable (%s); kept for a retry",
                                self.name, entry.id, type(exc).__name__)
                    await self.queue.retry(entry, counted=False)
                    return False
                if entry.attempts + 1 >= self.max_attempts:
                    log.exception("%s update %s failed %d times; dropped", self.name, entry.id, entry.attempts + 1)
                else:
                    log.exception("%s update %s failed; will retry", self.name, entry.id)
                    await self.queue.retry(entry)
                    return False
        await self.queue.ack([entry.id])
        return True

    async def drain(self) -> int:
        """Burst mode (tests, `orderhub worker --burst`): handle everything queued now, then return the count."""
        await self._ready()
        done = 0
        while entries := await self.queue.read(self.consumer, count=50, block_ms=None):
            for entry in entries:
                done += await self.process(entry)
        return done

    async def run(self, stop: asyncio.Event, block_ms: int = 1000) -> None:
        await self._ready()
        while not stop.is_set():
            try:
                entries = await self.queue.reclaim(self.consumer, self.claim_idle_ms)
                entries += await self.queue.read(self.consumer, count=50, block_ms=block_ms)
                for entry in entries:
                    if not await self.process(entry):
                        await asyncio.sleep(self.failure_pause_s)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis hiccup: wait and go on; nothing is lost, entries stay in the stream
                log.exception("%s consumer loop error", self.name)
                await asyncio.sleep(self.failure_pause_s)
