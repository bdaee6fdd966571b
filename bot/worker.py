"""The intake worker process loop: read a batch from the consumer group, store it, acknowledge after commit.

Failures are sorted by whose fault they are: an entry the adapter or database refuses is retried with backoff and
dead-lettered after `max_attempts`; a database outage fails nobody — the batch stays pending and is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from handlers.intake import BatchResult, IntakeProcessor, PreparedBatch
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
        self._last_promote = 0.0
        self._outage_backoff = 0.5

    async def run(self, stop: asyncio.Event | None = None, *, burst: bool = False) -> BatchResult:
        """Loop until `stop` is set; with `burst`, return once nothing is waiting, pending or due for retry.

        Two batches overlap: while batch N's transaction is in the database, batch N+1 is read and planned (the
        rules, mostly CPU). Commits stay one at a time and in order, and each batch is acknowledged only after
        its own commit, so a crash at any point leaves every unacknowledged entry pending for XAUTOCLAIM.
        """
        stop = stop or asyncio.Event()
        await self.queue.ensure_group()
        inflight: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                entries = await self._next_entries(burst, busy=inflight is not None)
                if entries:
                    started = time.perf_counter()
                    prepared = await self.processor.prepare(entries, self.clock.now(), yield_every=25)
                    if inflight is not None:
                        await inflight
                    inflight = asyncio.create_task(self._commit(entries, prepared, started))
                elif inflight is not None:
                    await inflight
                    inflight = None
                elif burst and await self._drained():
                    break
        finally:
            if inflight is not None:
                await inflight
        return self.totals

    async def _next_entries(self, burst: bool, busy: bool) -> list[IntakeEntry]:
        now = time.time()
        if now - self._last_promote >= 0.05:  # due retries come back within 50 ms; not a round trip per batch
            self._last_promote = now
            await self.queue.promote_due(now)
        if now - self._last_claim >= min(1.0, self.opt.claim_idle_s):
            self._last_claim = now
            entries = await self.queue.reclaim(self.opt.consumer, int(self.opt.claim_idle_s * 1000),
                                               self.opt.batch_size)
            if entries:
                return entries
        # With a commit in flight, only take what is already there: its acknowledgement must not wait on a block.
        block = None if busy else (50 if burst else self.opt.block_ms)
        return await self.queue.read(self.opt.consumer, self.opt.batch_size, block)

    async def _drained(self) -> bool:
        status = await self.queue.status()
        return status.depth == 0 and status.retrying == 0

    async def handle(self, entries: list[IntakeEntry]) -> None:
        """One batch, start to finish (no overlap)."""
        started = time.perf_counter()
        await self._commit(entries, await self.processor.prepare(entries, self.clock.now()), started)

    async def _commit(self, entries: list[IntakeEntry], prepared: PreparedBatch, started: float) -> None:
        try:
            result = await self.processor.commit(prepared)
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
