"""Intake under faults: a worker SIGKILLed mid-stream loses and doubles nothing; a poisoned entry dies alone.

The crash test runs the real processes (`orderhub api`, `orderhub worker`) on PostgreSQL and a real Redis, because
what it proves — ack after commit, XAUTOCLAIM of a dead consumer's entries, idempotent upsert — only means something
across process boundaries. The poison and replay tests are fast and run on both backends.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import BUNDLED_RULES, Settings
from bot.wiring.runtime import Runtime
from engine.channels import ChannelAdapter
from engine.channels.generic import generic_to_order
from engine.order import OrderData
from storage import keys
from storage.models import DeadLetterRow, OrderRow, OutboxRow
from storage.redis_conn import connect
from tests.conftest import SECRETS, TEST_DATABASE_URL, TEST_REDIS_URL
from tests.factories import order_json, signed
from webhooks.app import create_app

ROOT = Path(__file__).resolve().parents[2]
ORDERHUB = [sys.executable, "-c", "from bot.cli.main import main; main()"]
TOTAL, DOUBLED, CONCURRENCY = 10_000, 1_000, 64
FAULT_REDIS_DB = 14


# --- helpers ------------------------------------------------------------------------------------------------------


async def count(db: AsyncEngine, model: Any, *where: Any) -> int:
    async with db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_db_url(base: str, db: int) -> str:
    """The same server as `base` on database number `db`, so the fault test never touches the suite's keys."""
    scheme, _, rest = base.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{db}"


class Proc:
    """An `orderhub` subprocess with its output in a log file (shown when the test fails)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("ab")
        self.p = subprocess.Popen([*ORDERHUB, *args], cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(10)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()


def plan_requests(rng: random.Random) -> tuple[list[list[dict[str, Any]]], set[str]]:
    """10,000 distinct orders plus 1,000 redeliveries, shuffled into single-order and batched requests."""
    orders = [order_json(i) for i in range(TOTAL)]
    deliveries = orders + rng.sample(orders, DOUBLED)
    rng.shuffle(deliveries)
    requests: list[list[dict[str, Any]]] = []
    i = 0
    while i < len(deliveries):
        size = 1 if rng.random() < 0.5 else rng.randint(2, 60)
        requests.append(deliveries[i : i + size])
        i += size
    return requests, {o["external_id"] for o in orders}


# --- the crash test -----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(240)
@pytest.mark.skipif(not (TEST_DATABASE_URL and TEST_REDIS_URL),
                    reason="needs ORDERHUB_TEST_DATABASE_URL (PostgreSQL) and ORDERHUB_TEST_REDIS_URL (real Redis)")
async def test_sigkilled_worker_loses_and_doubles_nothing(database_url: str, db: AsyncEngine, tmp_path: Path) -> None:
    assert TEST_REDIS_URL is not None
    redis_url = redis_db_url(TEST_REDIS_URL, FAULT_REDIS_DB)
    r = connect(redis_url)
    await r.flushdb()
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ORDERHUB_DATABASE_URL": database_url,
        "ORDERHUB_REDIS_URL": redis_url,
        "ORDERHUB_RULES": str(BUNDLED_RULES),
        "ORDERHUB_WEBHOOK_SECRETS": f"generic={SECRETS['generic']}",
        "ORDERHUB_DATA_DIR": str(tmp_path / "data"),
        "ORDERHUB_INTAKE_CLAIM_IDLE_S": "2",
        "ORDERHUB_INTAKE_RETRY_BACKOFF_S": "0.2",
    }
    api = Proc(["api", "--port", str(port)], env, tmp_path / "api.log")
    workers = [Proc(["worker"], env, tmp_path / "worker-0.log")]
    kills: list[int] = []
    orphaned: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                     limits=httpx.Limits(max_connections=CONCURRENCY)) as client:
            await _wait_healthy(client, api)
            requests, expected = plan_requests(random.Random(20251111))
            sem = asyncio.Semaphore(CONCURRENCY)

            async def send(batch: list[dict[str, Any]]) -> int:
                payload: Any = batch[0] if len(batch) == 1 else {"orders": batch}
                async with sem:
                    body, headers = signed(SECRETS["generic"], payload)
                    resp = await client.post("/webhooks/orders/generic", content=body, headers=headers)
                return resp.status_code

            async def saboteur() -> None:
                """SIGKILL the worker when about 1/3 and 2/3 of the orders are stored, then start a new one."""
                for threshold in (TOTAL // 3, 2 * TOTAL // 3):
                    while (stored := await count(db, OrderRow)) < threshold:
                        await asyncio.sleep(0.01)
                    workers[-1].kill()
                    kills.append(stored)
                    # what the dead worker had read but not acknowledged: the next one must reclaim it
                    orphaned.append(int((await r.xpending(keys.INTAKE_STREAM, keys.INTAKE_GROUP))["pending"]))
                    workers.append(Proc(["worker"], env, tmp_path / f"worker-{len(workers)}.log"))

            sabotage = asyncio.create_task(saboteur())
            statuses = await asyncio.gather(*(send(b) for b in requests))
            assert set(statuses) == {202}, {s: statuses.count(s) for s in set(statuses)}
            await asyncio.wait_for(sabotage, 60)
            await _wait_drained(db, r, api, workers[-1])

        assert len(kills) == 2 and all(0 < k < TOTAL for k in kills), f"kills must happen mid-stream: {kills}"
        print(f"SIGKILLed the worker at {kills} stored orders, leaving {orphaned} entries pending")
        async with db.connect() as conn:
            ids = (await conn.execute(select(OrderRow.external_id))).scalars().all()
            assert len(ids) == TOTAL, f"{len(ids)} rows"
            assert set(ids) == expected, "lost or foreign orders"
            distinct = (await conn.execute(text("SELECT count(DISTINCT (channel, external_id)) FROM orders"))).scalar()
            assert distinct == TOTAL
            await _assert_children_consistent(conn)
        assert await r.xlen(keys.DEAD_LETTER_STREAM) == 0
        assert await r.zcard(keys.INTAKE_RETRY_ZSET) == 0
        assert await count(db, DeadLetterRow) == 0
    except BaseException:
        for p in [api, *workers]:
            sys.stderr.write(f"--- {p.log.name}\n{p.log.read_text(errors='replace')[-3000:]}\n")
        raise
    finally:
        for p in [*workers, api]:
            p.stop()
        await r.flushdb()
        await r.aclose()


async def _wait_healthy(client: httpx.AsyncClient, api: Proc) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert api.p.poll() is None, "orderhub api exited"
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("orderhub api did not become healthy in 30 s")


async def _wait_drained(db: AsyncEngine, r: aioredis.Redis, api: Proc, worker: Proc) -> None:
    """Until every order is stored and nothing is left in the stream, pending, or waiting for a retry."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert worker.p.poll() is None, "the restarted worker exited"
        depth = await r.xlen(keys.INTAKE_STREAM) + await r.zcard(keys.INTAKE_RETRY_ZSET)
        if depth == 0 and await count(db, OrderRow) >= TOTAL:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"queue not drained: depth {depth}, stored {await count(db, OrderRow)}")


async def _assert_children_consistent(conn: Any) -> None:
    """Each order got exactly its own transitions and approvals: nothing written twice by a redelivered batch."""

    async def bad(sql: str) -> list[Any]:
        return list((await conn.execute(text(sql))).all())

    # exactly one initial transition (received) per order
    assert not await bad("""SELECT o.id FROM orders o LEFT JOIN stage_transitions t
                            ON t.order_id = o.id AND t.from_stage IS NULL
                            GROUP BY o.id HAVING count(t.id) <> 1""")
    # auto-confirmed orders: received + auto-confirmed and no approval; waiting orders: one transition, one approval
    assert not await bad("""SELECT o.id FROM orders o WHERE o.stage = 'designing' AND (
                              (SELECT count(*) FROM stage_transitions t WHERE t.order_id = o.id) <> 2
                              OR EXISTS (SELECT 1 FROM approvals a WHERE a.order_id = o.id))""")
    assert not await bad("""SELECT o.id FROM orders o WHERE o.stage = 'pending_confirm' AND (
                              (SELECT count(*) FROM stage_transitions t WHERE t.order_id = o.id) <> 1
                              OR (SELECT count(*) FROM approvals a WHERE a.order_id = o.id
                                  AND a.status = 'pending') < 1)""")
    assert not await bad("SELECT id FROM orders WHERE stage NOT IN ('designing', 'pending_confirm')")
    # every approval asked for exactly once, and announced by exactly one outbox row
    assert not await bad("""SELECT order_id, kind, level FROM approvals
                            GROUP BY order_id, kind, level, order_version HAVING count(*) > 1""")
    assert not await bad("""SELECT a.id FROM approvals a LEFT JOIN outbox x ON x.dedup_key = 'approval:' || a.id
                            GROUP BY a.id HAVING count(x.id) <> 1""")
    stages = dict((await conn.execute(text("SELECT stage, count(*) FROM orders GROUP BY stage"))).all())
    assert stages.get("designing", 0) > 0 and stages.get("pending_confirm", 0) > 0, stages


# --- poison and replay (both backends) ----------------------------------------------------------------------------


POISON_ID = "G00000007"


@pytest.fixture
async def runtime(settings: Settings, db: AsyncEngine, redis: aioredis.Redis) -> AsyncIterator[Runtime]:
    rt = Runtime.build(settings)
    await rt.start_rules(watch=False)
    await rt.queue.ensure_group()
    yield rt
    await rt.close()


async def _queue_batch_then_poison(runtime: Runtime, n: int = 20) -> list[str]:
    """Queue `n` valid orders in one signed request, then make the worker's adapter choke on one of them.

    The webhook validated the order when it arrived; the adapter breaking afterwards (a deploy with a bug) is the
    realistic way a signed, valid entry becomes poison.
    """
    app = create_app(runtime.app_services())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        body, headers = signed(SECRETS["generic"], {"orders": [order_json(i) for i in range(n)]})
        assert (await client.post("/webhooks/orders/generic", content=body, headers=headers)).status_code == 202
    calls: list[str] = []

    def poisoned(raw: dict[str, Any]) -> OrderData:
        calls.append(raw["external_id"])
        if raw["external_id"] == POISON_ID:
            raise RuntimeError("adapter bug: cannot map this order")
        return generic_to_order(raw)

    runtime.adapters["generic"] = ChannelAdapter("generic", poisoned)
    return calls


async def test_poisoned_entry_dies_alone_after_exactly_three_tries(runtime: Runtime, db: AsyncEngine) -> None:
    calls = await _queue_batch_then_poison(runtime)
    worker = runtime.intake_worker()
    await worker.run(burst=True)

    assert calls.count(POISON_ID) == 3
    assert all(calls.count(f"G{i:08d}") == 1 for i in range(20) if f"G{i:08d}" != POISON_ID), \
        "its batch neighbours were stored on the first try"
    assert worker.totals.inserted == 19
    assert await count(db, OrderRow) == 19
    assert await count(db, OrderRow, OrderRow.external_id == POISON_ID) == 0

    status = await runtime.queue.status()
    assert (status.depth, status.pending, status.retrying, status.dead) == (0, 0, 0, 1)
    (dead,) = await runtime.queue.dead_entries()
    assert orjson.loads(dead["b"])["external_id"] == POISON_ID
    assert dead["a"] == "3" and "adapter bug" in dead["e"]

    async with db.connect() as conn:
        (row,) = (await conn.execute(select(DeadLetterRow))).all()
        (alert,) = (await conn.execute(select(OutboxRow).where(OutboxRow.kind == "dead_letter"))).all()
    assert (row.attempts, row.channel, row.replayed_at) == (3, "generic", None)
    assert orjson.loads(row.body)["external_id"] == POISON_ID
    assert (alert.recipient_role, alert.status, alert.dedup_key) == ("admin", "pending", f"dead_letter:{row.entry_id}")


async def test_cli_replay_dead_puts_the_entry_back(runtime: Runtime, db: AsyncEngine, settings: Settings) -> None:
    await _queue_batch_then_poison(runtime)
    await runtime.intake_worker().run(burst=True)
    assert (await runtime.queue.status()).dead == 1

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ORDERHUB_DATABASE_URL": settings.database_url,
        "ORDERHUB_REDIS_URL": str(settings.redis_url),
        "ORDERHUB_RULES": str(BUNDLED_RULES),
        "ORDERHUB_DATA_DIR": str(settings.data_dir),
    }
    env.pop("ORDERHUB_LANGUAGE", None)  # the default, Chinese
    shown = await asyncio.create_subprocess_exec(*ORDERHUB, "queue", "status", cwd=ROOT, env=env,
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    listed = (await asyncio.wait_for(shown.communicate(), 60))[0].decode()
    assert "渠道 接口" in listed and "渠道 generic" not in listed, listed  # the channel as people call it
    proc = await asyncio.create_subprocess_exec(*ORDERHUB, "queue", "replay-dead", cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode()
    assert "已将 1 个处理失败的订单放回接单队列" in out.decode() and "dead letter" not in out.decode()

    status = await runtime.queue.status()
    assert (status.depth, status.dead) == (1, 0)
    async with db.connect() as conn:
        (row,) = (await conn.execute(select(DeadLetterRow))).all()
    assert row.replayed_at is not None

    runtime.adapters["generic"] = ChannelAdapter("generic", generic_to_order)  # the bug is fixed
    await runtime.intake_worker().run(burst=True)
    assert await count(db, OrderRow, OrderRow.external_id == POISON_ID) == 1
    assert await count(db, OrderRow) == 20
    assert (await runtime.queue.status()).depth == 0


def test_redis_db_url_keeps_the_server() -> None:
    assert redis_db_url("redis://127.0.0.1:6379/15", 14) == "redis://127.0.0.1:6379/14"
    assert redis_db_url("redis://h:1", 14) == "redis://h:1/14"

