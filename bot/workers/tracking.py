"""The tracking worker: verified carrier pushes from the tracking stream → handlers.tracking.apply_events.

The stream is a RedisIntakeQueue on its own keys (storage.keys.TRACKING_*), so pushes get exactly the intake's
guarantees: durable before the carrier is answered, acknowledged only after the database commit, reclaimed from a
crashed worker (XAUTOCLAIM), retried with backoff, dead-lettered (and an admin told) after `max_attempts`.
Applying is idempotent (handlers.tracking), so at-least-once delivery is exactly-once in effect.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import orjson
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.workers.stream_loop import StreamLoop, StreamOptions, StreamWorker, describe
from engine.carriers import TrackEvent
from engine.carriers.parsing import PushFormatError, parse_push
from handlers.ports import Clock, IntakeEntry
from handlers.tracking import TrackingDeps, apply_events
from storage.dead_letters import SqlDeadLetters
from storage.intake_queue import RedisIntakeQueue

log = logging.getLogger("orderhub.tracking")


@dataclass
class TrackingWorkerOptions(StreamOptions):
    batch_size: int = 100  # carrier pushes: smaller batches than orders


@dataclass
class TrackingTotals:
    pushes: int = 0
    stored: int = 0
    unknown: int = 0
    retried: int = 0
    dead: int = 0


class TrackingWorker(StreamWorker[TrackingTotals]):
    def __init__(self, queue: RedisIntakeQueue, deps: TrackingDeps, dead: SqlDeadLetters, clock: Clock,
                 options: TrackingWorkerOptions) -> None:
        self.queue, self.deps, self.clock, self.opt = queue, deps, clock, options
        self.loop = StreamLoop("tracking", queue, dead, clock, log, consumer=options.consumer,
                               batch_size=options.batch_size, max_attempts=options.max_attempts,
                               retry_backoff_s=options.retry_backoff_s, claim_idle_s=options.claim_idle_s,
                               block_ms=options.block_ms, claim_every_s=1.0)
        self.totals = TrackingTotals()
        self._outage_s = 0.5

    async def process(self, entry: IntakeEntry) -> None:
        """One push: parse (it was verified and parsed once already, at the edge) and apply."""
        fields = orjson.loads(entry.body)
        events = parse_push(entry.channel, fields)
        result = await apply_events(self.deps, entry.channel, events, self.clock.now())
        self.totals.stored += result.stored
        if result.unknown:
            self.totals.unknown += len(result.unknown)
            log.warning("%s push for unknown waybill(s) %s ignored", entry.channel, ", ".join(result.unknown[:5]))

    async def handle(self, entries: list[IntakeEntry]) -> None:
        """A batch: its events applied together (one store call per carrier, not per push or waybill); when that fails for
        any reason but an outage, entry by entry, so a poisoned push dies alone."""
        try:
            events, readable = [], []
            for entry in entries:
                try:
                    evs = parse_push(entry.channel, orjson.loads(entry.body))
                except (PushFormatError, ValueError, KeyError) as exc:
                    await self._failed(entry, describe(exc)[:2000], permanent=True)
                    continue
                events.append((entry.channel, evs))
                readable.append(entry)
            by_carrier: dict[str, list[TrackEvent]] = {}
            for carrier, evs in events:
                by_carrier.setdefault(carrier, []).extend(evs)
            for carrier, evs in by_carrier.items():
                result = await apply_events(self.deps, carrier, evs, self.clock.now())
                self.totals.stored += result.stored
                self.totals.unknown += len(result.unknown)
        except (OperationalError, OSError, ConnectionError) as exc:
            await self._outage(len(entries), exc)
            return
        except Exception:
            log.exception("tracking batch of %d failed; applying entry by entry", len(entries))
            await self._one_by_one(readable)
            return
        self._outage_s = 0.5
        self.totals.pushes += len(readable)
        await self.queue.ack([e.id for e in readable])

    async def _one_by_one(self, entries: list[IntakeEntry]) -> None:
        done: list[str] = []
        try:
            await self.loop.each(self.totals, entries, self.process, _verdict, done)
            self._outage_s = 0.5
        except _Outage as exc:  # the database is away: nobody's fault; what is not acked is reclaimed later
            await self._outage(len(entries) - len(done), exc)
        finally:
            self.totals.pushes += len(done)

    async def _outage(self, pending: int, exc: Exception) -> None:
        """The database is away: leave the entries pending and wait, a little longer after each outage in a row."""
        log.warning("database unavailable; %d tracking entries left pending: %s", pending, exc)
        await asyncio.sleep(self._outage_s)
        self._outage_s = min(self._outage_s * 2, 30.0)


def _verdict(exc: Exception) -> tuple[str, bool] | None:
    if isinstance(exc, (OperationalError, OSError, ConnectionError)):
        raise _Outage(exc) from exc
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            raise _Outage(exc) from exc
        return describe(exc), False
    if isinstance(exc, (PushFormatError, ValueError, KeyError)):  # cannot get better by retrying
        return describe(exc), True
    return None


class _Outage(Exception):
    pass
