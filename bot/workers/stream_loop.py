"""The loop the refund and tracking workers share: read or reclaim a batch from a RedisIntakeQueue, hand it over,
retry with backoff or dead-letter what failed, and restart the loop when it breaks; and `StreamWorker`, their shared
entry points and per-entry error handling. The intake worker pipelines its batches and keeps its own loop."""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

from handlers.ports import Clock, IntakeEntry
from storage.dead_letters import SqlDeadLetters
from storage.intake_queue import RedisIntakeQueue


class FailureCounts(Protocol):
    retried: int
    dead: int


# What a worker makes of an entry's exception: (error, permanent) to fail the entry with, or None for an unexpected
# one (logged with its traceback and retried); to stop the batch instead, the verdict raises.
Verdict = Callable[[Exception], "tuple[str, bool] | None"]


@dataclass
class StreamOptions:
    """How a worker reads its stream: its consumer name in the group, entries per read, tries before the dead-letter
    queue, the pause before a retry, how long an entry may sit with a silent consumer before another takes it, and
    how long one read blocks."""

    consumer: str
    batch_size: int = 500
    max_attempts: int = 3
    retry_backoff_s: float = 2.0
    claim_idle_s: float = 30.0
    block_ms: int = 1000


def describe(exc: BaseException) -> str:
    """An exception as a failed entry records it: its type and message."""
    return f"{type(exc).__name__}: {exc}"


@dataclass
class StreamLoop:
    """One worker's queue and how it reads and fails entries; `name` prefixes logs and dead-letter ids."""

    name: str
    queue: RedisIntakeQueue
    dead: SqlDeadLetters
    clock: Clock
    log: logging.Logger
    consumer: str
    batch_size: int
    max_attempts: int
    retry_backoff_s: float
    claim_idle_s: float
    block_ms: int = 1000
    claim_every_s: float = 0.0  # 0: try reclaiming before every read

    async def failed(self, totals: FailureCounts, entry: IntakeEntry, error: str, *, permanent: bool = False) -> None:
        """Dead-letter the entry when it cannot get better or has used its tries; else retry it with backoff."""
        if permanent or entry.attempts + 1 >= self.max_attempts:
            self.log.error("%s entry %s dead-lettered after %d tries: %s", self.name, entry.id, entry.attempts + 1,
                           error)
            await self.dead.record(replace(entry, id=f"{self.name}:{entry.id}"), error, self.clock.now())
            await self.queue.dead_letter(entry, error)
            totals.dead += 1
        else:
            await self.queue.retry_later(entry, time.time() + self.retry_backoff_s * (2**entry.attempts))
            totals.retried += 1

    async def run(self, handle: Callable[[list[IntakeEntry]], Awaitable[None]], stop: asyncio.Event | None = None,
                  *, burst: bool = False) -> None:
        """Loop until `stop` is set; with `burst`, return once nothing is waiting, pending or due for retry."""
        stop = stop or asyncio.Event()
        await self.queue.ensure_group()
        last_claim = 0.0
        while not stop.is_set():
            await self.queue.promote_due(time.time())
            entries: list[IntakeEntry] = []
            if time.monotonic() - last_claim >= min(self.claim_every_s, self.claim_idle_s):
                last_claim = time.monotonic()
                entries = await self.queue.reclaim(self.consumer, int(self.claim_idle_s * 1000), self.batch_size)
            if not entries:
                entries = await self.queue.read(self.consumer, self.batch_size, None if burst else self.block_ms)
            if entries:
                await handle(entries)
            elif burst:
                status = await self.queue.status()
                if status.depth == 0 and status.retrying == 0:
                    break
                await asyncio.sleep(0.05)

    async def run_forever(self, run: Callable[[asyncio.Event], Awaitable[object]], stop: asyncio.Event) -> None:
        """`run` as a background task of a long-running process: a failure is logged and the loop restarts (an
        exception in a task nobody awaits would otherwise end the worker silently)."""
        while not stop.is_set():
            try:
                await run(stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("%s worker loop failed; restarting in 1 s", self.name)
                await asyncio.sleep(1.0)

    async def each(self, totals: FailureCounts, entries: list[IntakeEntry],
                   process: Callable[[IntakeEntry], Awaitable[None]], verdict: Verdict, done: list[str]) -> None:
        """`process` the entries one by one, acknowledging those that went through (their ids are added to `done`)
        and failing the others as `verdict` says; what it raises ends the batch, after the acknowledgement."""
        try:
            for entry in entries:
                try:
                    await process(entry)
                except Exception as exc:
                    failure = verdict(exc)
                    if failure is None:
                        self.log.exception("%s entry %s failed", self.name, entry.id)
                        failure = describe(exc), False
                    await self.failed(totals, entry, failure[0][:2000], permanent=failure[1])
                    continue
                done.append(entry.id)
        finally:
            await self.queue.ack(done)


TotalsT = TypeVar("TotalsT", bound=FailureCounts)


class StreamWorker(ABC, Generic[TotalsT]):
    """The entry points of a worker on a StreamLoop: it sets `loop` and `totals` and handles a batch in `handle`."""

    loop: StreamLoop
    totals: TotalsT

    @abstractmethod
    async def handle(self, entries: list[IntakeEntry]) -> None:
        """One batch read from the stream: apply it, acknowledge what went through, fail the rest."""

    async def _failed(self, entry: IntakeEntry, error: str, *, permanent: bool = False) -> None:
        await self.loop.failed(self.totals, entry, error, permanent=permanent)

    async def run(self, stop: asyncio.Event | None = None, *, burst: bool = False) -> TotalsT:
        """Loop until `stop` is set; with `burst`, return once nothing is waiting, pending or due for retry."""
        await self.loop.run(self.handle, stop, burst=burst)
        return self.totals

    async def run_forever(self, stop: asyncio.Event) -> None:
        """`run` as a background task of a long-running process: a failure is logged and the loop restarts."""
        await self.loop.run_forever(self.run, stop)
