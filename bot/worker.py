"""The intake worker process loop: read a batch from the consumer group, store it, acknowledge after commit.

Failures are sorted by whose fault they are: an entry the adapter or database refuses is retried with backoff and
dead-lettered after `max_attempts`; a database outage fails nobody — the batch stays pending and is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from handlers.intake import BatchResult, IntakeProcessor
from handlers.ports import Clock, IntakeEntry, StoreUnavailable
from storage.dead_letters import SqlDeadLetters
from storage.intake_queue import RedisIntakeQueue
from webhooks import metrics

log = logging.getLogger("orderhub.worker")


@dataclass
class WorkerOptions:
    consumer: str
    batch_size: int = 500
    max_attempts: int = 3
    retry_backoff_s: float = 2.0
    claim_idle_s: float = 30.0
    block_ms: int = 1000


class IntakeWorker:
    def __init__(
        self, queue: RedisIntakeQueue, processor: IntakeProcessor, dead: SqlDeadLetters, clock: Clock,
        options: WorkerOptions,
    ) -> None:
        self.queue, self.processor, self.dead, self.clock, self.opt = queue, processor, dead, clock, options
        self.totals = BatchResult()
        self._last_claim = 0.0
        self._outage_backoff = 0.5

    async def run(self, stop: asyncio.Event | None = None, *, burst: bool = False) -> BatchResult:
        """Loop until `stop` is set; with `burst`, return once nothing is waiting, pending or due for retry."""
        stop = stop or asyncio.Event()
        await self.queue.ensure_group()
        while not stop.is_set():
            now = time.time()
            await self.queue.promote_due(now)
            entries: list[IntakeEntry] = []
            if now - self._last_claim >= min(1.0, self.opt.claim_idle_s):
                self._last_claim = now
                entries = await self.queue.reclaim(self.opt.consumer, int(self.opt.claim_idle_s * 1000),
                                                   self.opt.batch_size)
            if not entries:
                block = 50 if burst else self.opt.block_ms
                entries = await self.queue.read(self.opt.consumer, self.opt.batch_size, block)
            if entries:
                await self.handle(entries)
            elif burst and await self._drained():
                break
        return self.totals

    async def _drained(self) -> bool:
        status = await self.queue.status()
        return status.depth == 0 and status.retrying == 0

    async def handle(self, entries: list[IntakeEntry]) -> None:
        started = time.perf_counter()
        try:
            result = await self.processor.process(entries, self.clock.now())
        except StoreUnavailable as exc:
            # Nobody's fault but the database's: leave the batch pending; it is reclaimed after claim_idle_s.
            log.warning("database unavailable, batch of %d left pending: %s", len(entries), exc)
            await asyncio.sleep(self._outage_backoff)
            self._outage_backoff = min(self._outage_backoff * 2, 30.0)
            return
        self._outage_backoff = 0.5
        await self.queue.ack(result.done)
        for entry, error in result.failed:
            if entry.attempts + 1 >= self.opt.max_attempts:
                log.error("entry %s dead-lettered after %d tries: %s", entry.id, entry.attempts + 1, error)
                await self.dead.record(entry, error, self.clock.now())
                await self.queue.dead_letter(entry, error)
            else:
                delay = self.opt.retry_backoff_s * (2**entry.attempts)
                await self.queue.retry_later(entry, time.time() + delay)
        elapsed = time.perf_counter() - started
        metrics.BATCH_SECONDS.observe(elapsed)
        metrics.BATCH_SIZE.observe(len(entries))
        metrics.INTAKE_STORED.labels(outcome="inserted").inc(result.inserted)
        metrics.INTAKE_STORED.labels(outcome="updated").inc(result.updated)
        metrics.INTAKE_STORED.labels(outcome="duplicate").inc(result.duplicates)
        metrics.INTAKE_STORED.labels(outcome="failed").inc(len(result.failed))
        t = self.totals
        t.inserted += result.inserted
        t.updated += result.updated
        t.duplicates += result.duplicates
        t.failed += result.failed
