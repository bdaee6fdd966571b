"""The chat scheduler: stall scan, approval escalation, the outbox sweep, the morning digest and the leader-only
jobs of other parts (carrier polling, nightly priority refresh, housekeeping), run only by the lease holder.

`orderhub serve` and `orderhub scheduler` start one (a plain `worker` does not); the Redis lease (storage.lease)
makes exactly one of them act, so N processes never queue an alert N times (the outbox's unique dedup keys make
that hold even across a leader change). Jobs are plain async functions over the chat core (arq's shape);
APScheduler v3 only times them. The outbox sweep runs on the leader only, so two sweeps never race for a row; a
decision's immediate delivery (its card edits, the next level's card, a refund's reply) runs in the process that
made the decision, outside the lease. Both claim a row in the database before sending it (`ChatRepo.claim_outbox`,
one atomic UPDATE), so a sweep on the leader at the same instant leaves that row to the process that claimed it; a
claim whose process died runs out (handlers/notifier.py `CLAIM_S`) and the row is taken over. The digest is a
cron job in the configured time zone; taking the lease also runs a catch-up, so a leader that starts (or takes
over) after the digest time still sends today's digest, and its dedup keys keep it to one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time

import redis.asyncio as aioredis
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from engine.alert_groups import GroupPolicy
from engine.stall import Rung
from handlers.alert_groups import advance_groups
from handlers.approvals import escalate_due
from handlers.chat_ports import ChatRepo
from handlers.digest import DigestJob
from handlers.notifier import Notifier
from handlers.ports import Clock
from handlers.stalls import PlanFor, scan_stalls
from storage.keys import SCHEDULER_LEASE
from storage.lease import RedisLease

log = logging.getLogger("orderhub.scheduler")


@dataclass(slots=True)
class ChatJobs:
    repo: ChatRepo
    clock: Clock
    notifier: Notifier
    ladder: Callable[[], Sequence[Rung]]  # read at every scan: the rules may have been reloaded
    digest: DigestJob | None = None  # None: no morning digest from this scheduler
    # further leader-only interval jobs: (name, every_s, job), e.g. the carrier poller and tracking stalls
    extra: Sequence[tuple[str, float, Callable[[], Awaitable[object]]]] = ()
    # leader-only daily jobs: (name, local time, time zone, job), e.g. the nightly priority refresh at 00:00
    daily: Sequence[tuple[str, time, str, Callable[[], Awaitable[object]]]] = ()
    # the rules' stall ladder of an order (warning, breach, rungs in business time) and their grouping policy;
    # None: the plain ladder of `ladder` and one card per alert
    plan_for: PlanFor | None = None
    policy: Callable[[], GroupPolicy] | None = None


class ChatScheduler:
    def __init__(self, lease: RedisLease, jobs: ChatJobs, *, stall_every_s: float = 60, escalation_every_s: float = 60,
                 outbox_every_s: float = 2, lease_every_s: float | None = None, groups_every_s: float = 5) -> None:
        self.lease = lease
        self.jobs = jobs
        self.runs: Counter[str] = Counter()
        self._running: set[asyncio.Task[object]] = set()  # job passes in progress: stop() lets them finish
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        every = {"lease": lease_every_s or lease.ttl_ms / 1000 / 3, "stall_scan": stall_every_s,
                 "escalation": escalation_every_s, "outbox": outbox_every_s, "alert_groups": groups_every_s}
        jobs_by_name: dict[str, Callable[[], Awaitable[object]]] = {
            "stall_scan": self._stall_scan, "escalation": self._escalation, "outbox": self._outbox,
            "alert_groups": self._groups,  # group_wait / group_interval are seconds to minutes: checked often
        }
        self.scheduler.add_job(self._tick_lease, "interval", seconds=every["lease"], id="lease", max_instances=1,
                               coalesce=True, next_run_time=datetime.now(UTC))
        for name, fn in jobs_by_name.items():
            self.scheduler.add_job(self._as_leader(name, fn), "interval", seconds=every[name], id=name,
                                   max_instances=1, coalesce=True, misfire_grace_time=None)
        for name, every_s, fn in jobs.extra:
            self.scheduler.add_job(self._as_leader(name, fn), "interval", seconds=every_s, id=name,
                                   max_instances=1, coalesce=True, misfire_grace_time=None)
        for name, at, tz, fn in jobs.daily:
            self.scheduler.add_job(self._as_leader(name, fn), CronTrigger(hour=at.hour, minute=at.minute, timezone=tz),
                                   id=name, max_instances=1, coalesce=True, misfire_grace_time=None)
        if jobs.digest is not None:
            d = jobs.digest
            self.scheduler.add_job(self._as_leader("digest", d.run), CronTrigger(
                hour=d.at.hour, minute=d.at.minute, timezone=d.timezone), id="digest", max_instances=1,
                coalesce=True, misfire_grace_time=None)

    async def _tick_lease(self) -> None:
        was = self.lease.held
        now = await self.lease.tick()
        if now != was:
            log.info("scheduler lease %s", "taken" if now else "lost")
        if now and not was and self.jobs.digest is not None:  # a new leader: send today's digest if it is missing
            self.scheduler.add_job(self._as_leader("digest_catchup", self.jobs.digest.catch_up), id="digest_catchup",
                                   replace_existing=True, misfire_grace_time=None)

    def _as_leader(self, name: str, fn: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            if not self.lease.held:
                return
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                await fn()
                self.runs[name] += 1
            except Exception:
                log.exception("scheduler job %s failed", name)
            finally:
                self._running.discard(task)  # type: ignore[arg-type]

        job.__name__ = name
        return job

    async def _stall_scan(self) -> None:
        policy = self.jobs.policy() if self.jobs.policy is not None else None
        await scan_stalls(self.jobs.repo, self.jobs.clock, self.jobs.ladder(), plan_for=self.jobs.plan_for,
                          policy=policy)
        if policy is not None:
            await advance_groups(self.jobs.repo, self.jobs.clock, policy)

    async def _groups(self) -> None:
        if self.jobs.policy is not None:
            await advance_groups(self.jobs.repo, self.jobs.clock, self.jobs.policy())

    async def _escalation(self) -> None:
        await escalate_due(self.jobs.repo, self.jobs.clock)

    async def _outbox(self) -> None:
        await self.jobs.notifier.run_once(limit=200)

    def start(self) -> None:
        """Needs a running event loop."""
        self.scheduler.start()

    async def stop(self, grace_s: float = 10.0) -> None:
        """Idempotent: stop the jobs, let a pass in progress finish (a message sent but not yet recorded as sent
        would go out again after a restart), then hand the lease on at once instead of waiting for it to expire."""
        if self.scheduler.running:
            self.scheduler.pause()  # no new passes; shutdown() would cancel the running ones, so wait first
            if self._running:
                await asyncio.wait(set(self._running), timeout=grace_s)
            self.scheduler.shutdown(wait=False)
        try:
            await self.lease.release()
        except aioredis.RedisError:
            log.warning("could not release the scheduler lease; it expires by itself")


async def start_scheduler(redis: aioredis.Redis, jobs: ChatJobs, *, lease_key: str = SCHEDULER_LEASE,
                          lease_ttl_ms: int = 15_000, **every: float) -> ChatScheduler:
    """Build and start the scheduler in this process; call `await sched.stop()` on shutdown."""
    sched = ChatScheduler(RedisLease(redis, lease_key, ttl_ms=lease_ttl_ms), jobs, **every)
    sched.start()
    return sched
