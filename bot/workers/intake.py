"""The intake worker process loop: read a batch from the consumer group, store it, acknowledge after commit.

Failures are sorted by whose fault they are: an entry the adapter or database refuses is retried with backoff and
dead-lettered after `max_attempts`; a database outage fails nobody — the batch stays pending and is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from bot.workers import intake_metrics as metrics
from bot.workers.stream_loop import StreamOptions
from handlers.intake import BatchResult, IntakeProcessor, PreparedBatch, describe_error
from handlers.ports import Clock, IntakeEntry, StoreUnavailable
from storage.dead_letters import SqlDeadLetters
from storage.intake_queue import RedisIntakeQueue

log = logging.getLogger("orderhub.worker")


@dataclass
class WorkerOptions(StreamOptions):
    prepare_ahead: int = 2  # batches read and planned while one commits
    # Start a batch's transaction while the previous one's COMMIT is in flight. PostgreSQL only: SQLite has one
    # writer, and a second transaction there would only queue behind the first.
    overlap_commits: bool = False


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
        self._settling: list[asyncio.Task[None]] = []
        self._recover = True  # read this consumer's own unacknowledged entries first (a restart, an outage)
        self._last_beat = 0.0
        self.restarts = 0

    async def run_forever(self, stop: asyncio.Event) -> BatchResult:
        """`run` until `stop`, restarted with backoff whenever it ends by an error (Redis or the database away, a
        bug): a worker never stays alive doing nothing. Each restart first retries its own pending entries."""
        backoff = 0.5
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self.run(stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any crash: log it, wait, start again
                self.restarts += 1
                metrics.WORKER_RESTARTS.labels(loop="intake").inc()
                if time.monotonic() - started > 60:
                    backoff = 0.5  # it had been running fine: this is a new outage
                log.error("intake worker loop failed (%s), restarting in %.1f s", describe_error(exc), backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 10.0)
                self._recover = True
        with contextlib.suppress(Exception):
            await self.queue.forget(self.opt.consumer)
        return self.totals

    async def _beat(self) -> None:
        now = time.time()
        if now - self._last_beat >= 1.0:
            self._last_beat = now
            await self.queue.beat(self.opt.consumer, now)

    async def run(self, stop: asyncio.Event | None = None, *, burst: bool = False) -> BatchResult:
        """Loop until `stop` is set; with `burst`, return once nothing is waiting, pending or due for retry.

        Reading and planning (the rules, mostly CPU) overlap the database: while a batch's transaction is in the
        database, further batches are read and planned: up to `prepare_ahead` while full batches are waiting, one
        when the queue is quiet (small batches are latency-bound, not CPU-bound). With `overlap_commits`, a batch's
        transaction starts once the one before has written its rows (only its COMMIT left), so at most two are open:
        the newer one's writes wait on any key the older holds, which keeps the order of effects. Each batch is
        acknowledged only after its own commit, so a crash at any point leaves every unacknowledged entry pending
        for XAUTOCLAIM.
        """
        stop = stop or asyncio.Event()
        await self.queue.ensure_group()
        commits: deque[tuple[asyncio.Task[None], PreparedBatch]] = deque()  # oldest first, at most two
        ready: deque[tuple[list[IntakeEntry], PreparedBatch, float]] = deque()
        read_ahead: asyncio.Task[list[IntakeEntry]] | None = None  # the next batch, read while this one is planned
        backlog = False  # the last read was a full batch: more is waiting
        try:
            while not stop.is_set():
                await self._beat()
                await self._reap()
                while commits and commits[0][0].done():
                    commits.popleft()[0].result()
                if ready and (not commits or (self.opt.overlap_commits and len(commits) == 1
                                              and commits[0][1].written.is_set())):
                    entries, prepared, started = ready.popleft()
                    commits.append((asyncio.create_task(self._commit(entries, prepared, started)), prepared))
                    continue
                # A quiet queue plans one batch ahead; planning more would only split what arrives into more,
                # smaller commits, each waiting behind the one before.
                if commits and len(ready) >= (self.opt.prepare_ahead if backlog else 1):
                    await _progress(commits)
                    continue
                if read_ahead is not None:
                    entries, read_ahead = await read_ahead, None
                else:
                    # a burst never blocks on an empty stream: below, it finishes or waits for a due retry
                    entries = await self._next_entries(busy=burst or bool(commits) or bool(ready),
                                                       idle=not commits and not ready)
                backlog = len(entries) >= self.opt.batch_size
                if entries:
                    started = time.perf_counter()
                    if backlog:  # fetch the next batch while this one is planned (one such read at a time)
                        read_ahead = asyncio.create_task(self._next_entries(busy=True))
                    prepared = await self.processor.prepare(entries, self.clock.now(), yield_every=25)
                    ready.append((entries, prepared, started))
                elif commits:
                    await _progress(commits)
                elif not ready and burst:
                    await self._reap(wait=True)
                    if await self._drained():
                        break
                    await asyncio.sleep(0.05)  # entries waiting for their retry time, or another worker's
        finally:
            # Finish what is in hand. During an outage any of this may fail too: what is not acknowledged stays
            # pending for this consumer (read again at once on restart) or for XAUTOCLAIM.
            try:
                for task, _ in commits:
                    await task
                if read_ahead is not None and (entries := await read_ahead):
                    ready.append((entries, await self.processor.prepare(entries, self.clock.now()),
                                  time.perf_counter()))
                while ready:  # planned but not stored: store them rather than leave them to XAUTOCLAIM's delay
                    await self._commit(*ready.popleft())
            finally:
                for task, _ in commits:
                    if not task.done():
                        task.cancel()
                if read_ahead is not None and not read_ahead.done():
                    read_ahead.cancel()
                await self._reap(wait=True)
        if burst:  # done on purpose: not a worker that stopped consuming
            with contextlib.suppress(Exception):
                await self.queue.forget(self.opt.consumer)
        return self.totals

    async def _next_entries(self, busy: bool, *, idle: bool = False) -> list[IntakeEntry]:
        """`idle`: nothing of this worker's is in flight, so its own pending entries may be read again."""
        if self._recover and idle:
            entries = await self.queue.read_own_pending(self.opt.consumer, self.opt.batch_size)
            if entries:
                return entries
            self._recover = False
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
        block = None if busy else self.opt.block_ms
        return await self.queue.read(self.opt.consumer, self.opt.batch_size, block)

    async def _drained(self) -> bool:
        status = await self.queue.status()
        return status.depth == 0 and status.retrying == 0

    async def handle(self, entries: list[IntakeEntry]) -> None:
        """One batch, start to finish (no overlap)."""
        started = time.perf_counter()
        await self._commit(entries, await self.processor.prepare(entries, self.clock.now()), started)
        await self._reap(wait=True)

    async def _reap(self, *, wait: bool = False) -> None:
        """Collect finished settle tasks (waiting for all with `wait`); their errors surface here."""
        if wait and self._settling:
            await asyncio.wait(self._settling)
        done = [t for t in self._settling if t.done()]
        self._settling = [t for t in self._settling if not t.done()]
        for t in done:
            t.result()

    async def _commit(self, entries: list[IntakeEntry], prepared: PreparedBatch, started: float) -> None:
        try:
            result = await self.processor.commit(prepared)
        except StoreUnavailable as exc:
            # Nobody's fault but the database's: leave the batch pending; it is reclaimed after claim_idle_s.
            log.warning("database unavailable, batch of %d left pending, retried in %.1f s: %s", len(entries),
                        self._outage_backoff, describe_error(exc))
            await asyncio.sleep(self._outage_backoff)
            self._outage_backoff = min(self._outage_backoff * 2, 30.0)
            self._recover = True  # this consumer's pending entries are read again at once, not after claim_idle_s
            return
        self._outage_backoff = 0.5
        # Acknowledging is not on the path of the next commit, which may start now.
        self._settling.append(asyncio.create_task(self._settle(entries, result, started)))

    async def _settle(self, entries: list[IntakeEntry], result: BatchResult, started: float) -> None:
        """After a batch's commit: acknowledge it, schedule retries or dead-letter the failures, count."""
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


async def _progress(commits: deque[tuple[asyncio.Task[None], PreparedBatch]]) -> None:
    """Wait until a commit finishes or the newest one has written its rows (the next may start then)."""
    waiters: set[asyncio.Future[Any]] = {task for task, _ in commits}
    newest = commits[-1][1].written
    written = None if newest.is_set() else asyncio.ensure_future(newest.wait())
    if written is not None:
        waiters.add(written)
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if written is not None:
            written.cancel()
