"""Issue 9 item 6 for the chat loops: the chat consumer, the notifier and the scheduler's jobs go on by themselves
after the database or Redis was away, and a chat update that arrived during an outage is handled afterwards, not
dropped after three quick tries (a poison update still is)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError

from storage.stream_queue import UpdateQueue
from bot.workers.scheduler import ChatJobs, ChatScheduler
from bot.platforms.telegram.runner import UpdateConsumer
from handlers.chat import InboundEvent
from handlers.notifier import Notifier
from tests.bot.telegram.conftest import queue  # noqa: F401 - the fixture: the Telegram update queue
from tests.chatfake import FakeChannel


def update(update_id: int) -> bytes:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1731290000, "text": "/help", "chat": {"id": 111, "type": "private"},
        "from": {"id": 111, "is_bot": False, "first_name": "丽"}}}).encode()


class FlakyHandler:
    """Fails `times` times with `error`, then handles."""

    def __init__(self, times: int, error: BaseException) -> None:
        self.times, self.error = times, error
        self.events: list[InboundEvent] = []

    async def __call__(self, event: InboundEvent) -> None:
        if self.times:
            self.times -= 1
            raise self.error
        self.events.append(event)


@pytest.mark.parametrize("error", [
    OperationalError("SELECT 1", {}, ConnectionRefusedError("database restarting")),
    ConnectionRefusedError("connection refused"),
    RedisConnectionError("redis away"),
], ids=["database", "socket", "redis"])
async def test_an_update_during_an_outage_is_handled_afterwards_not_dropped(queue: UpdateQueue,
                                                                            error: Exception) -> None:
    await queue.push(1, update(1))
    handle = FlakyHandler(times=6, error=error)  # twice max_attempts
    await UpdateConsumer(queue, handle, consumer="c1", max_attempts=3).drain()
    assert len(handle.events) == 1 and handle.times == 0 and await queue.depth() == 0


async def test_a_failure_of_the_update_itself_is_still_dropped_after_max_attempts(queue: UpdateQueue) -> None:
    await queue.push(1, update(1))
    handle = FlakyHandler(times=10, error=ValueError("a bug this update triggers"))
    await UpdateConsumer(queue, handle, consumer="c1", max_attempts=3).drain()
    assert handle.events == [] and handle.times == 7 and await queue.depth() == 0


async def test_the_consumer_loop_outlives_a_redis_error(queue: UpdateQueue) -> None:
    await queue.push(1, update(1))
    handle = FlakyHandler(times=0, error=RuntimeError())
    consumer = UpdateConsumer(queue, handle, consumer="c1", failure_pause_s=0.01)
    real_reclaim, calls = queue.reclaim, []

    async def reclaim(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) <= 2:
            raise RedisConnectionError("redis away")
        return await real_reclaim(*args, **kw)

    queue.reclaim = reclaim  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop, block_ms=50))
    for _ in range(200):
        if handle.events:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(calls) >= 3 and len(handle.events) == 1


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class AwayThenBackRepo:
    """A chat repository whose first `away` reads fail as a database outage would."""

    def __init__(self, away: int) -> None:
        self.away, self.calls = away, 0

    async def due_outbox(self, now: datetime, limit: int = 100) -> list[Any]:
        self.calls += 1
        if self.calls <= self.away:
            raise OperationalError("SELECT", {}, ConnectionRefusedError("database away"))
        return []


async def test_the_notifier_loop_outlives_a_database_outage() -> None:
    repo = AwayThenBackRepo(away=3)
    notifier = Notifier(repo, {"telegram": FakeChannel("telegram")}, Clock(), token_key=b"k")  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop, poll_s=0.01))
    for _ in range(200):
        if repo.calls > 4:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert repo.calls > 4  # passes went on after the outage


class HeldLease:
    ttl_ms, held = 15_000, True


async def test_a_scheduler_job_that_fails_in_an_outage_runs_again_next_time() -> None:
    calls: list[str] = []

    async def job() -> None:
        calls.append("run")
        if len(calls) == 1:
            raise OperationalError("SELECT", {}, ConnectionRefusedError("database away"))

    jobs = ChatJobs(None, Clock(), None, lambda: (), extra=[("probe", 60.0, job)])  # type: ignore[arg-type]
    sched = ChatScheduler(HeldLease(), jobs)  # type: ignore[arg-type]
    wrapped = sched._as_leader("probe", job)
    await wrapped()  # the outage: logged, not raised into APScheduler
    await wrapped()
    assert calls == ["run", "run"] and sched.runs["probe"] == 1


async def test_after_a_database_outage_the_workers_own_pending_entries_are_retried_at_once(
        runtime: Any, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not after the reclaim interval (here 300 s: the orders would never arrive within the test's wait)."""
    import time

    from sqlalchemy import func, select

    from handlers.intake import IntakeProcessor
    from handlers.ports import StoreUnavailable
    from storage.models import OrderRow
    from tests.factories import order_json

    runtime.settings.intake_claim_idle_s = 300.0
    await runtime.queue.enqueue("generic", [json.dumps(order_json(i)).encode() for i in range(5)])
    worker = runtime.intake_worker()
    real_commit, failures = IntakeProcessor.commit, []

    async def commit(self: IntakeProcessor, prepared: Any) -> Any:
        if len(failures) < 2:
            failures.append(1)
            raise StoreUnavailable("database restarting")
        return await real_commit(self, prepared)

    monkeypatch.setattr(IntakeProcessor, "commit", commit)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    deadline, stored = time.monotonic() + 30, 0
    while time.monotonic() < deadline and stored < 5:
        async with db.connect() as conn:
            stored = (await conn.execute(select(func.count()).select_from(OrderRow))).scalar_one()
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert len(failures) == 2 and stored == 5
    assert (await runtime.queue.status()).pending == 0
