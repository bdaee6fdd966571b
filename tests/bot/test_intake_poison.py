"""Issue 9 items 1–2: one entry can never stop intake, and what the route accepts the worker stores.

The poison order (`custom_fields` with an integer beyond 64 bits) used to be accepted with 202 and then kill every
worker that took it in `hashed()`: intake stopped with no log while /healthz said ok.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.wiring.runtime import Runtime
from handlers import intake
from storage import keys
from storage.models import DeadLetterRow, OrderRow, OutboxRow
from tests.conftest import SECRETS
from tests.factories import order_json, signed

BIG = 123456789012345678901234567890


def poison(i: int, where: str = "custom_fields") -> dict[str, Any]:
    order = order_json(i)
    if where == "custom_fields":
        order["custom_fields"] = {"n": BIG}
    elif where == "negative":
        order["custom_fields"] = {"n": -(2**63) - 1}
    else:
        order["items"][0]["attributes"] = {"n": BIG}
    return order


async def count(db: AsyncEngine, *where: Any) -> int:
    async with db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(OrderRow).where(*where))).scalar_one()


async def post(client: httpx.AsyncClient, payload: Any, channel: str = "generic") -> httpx.Response:
    body, headers = signed(SECRETS[channel], json.dumps(payload, ensure_ascii=False).encode())  # big ints as sent
    return await client.post(f"/webhooks/orders/{channel}", content=body, headers=headers)


@pytest.mark.parametrize("where", ["custom_fields", "negative", "attributes"])
async def test_route_refuses_the_poison_order_with_422(client: httpx.AsyncClient, runtime: Runtime, where: str) -> None:
    for payload in (poison(1, where), {"orders": [order_json(2), poison(1, where)]}):
        resp = await post(client, payload)
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"] == "invalid_order"
    assert (await runtime.queue.status()).depth == 0


async def test_poison_entry_already_queued_then_20_orders_all_stored(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    """An entry queued before this fix (or by any path around the route): it dies alone, the 20 after it are
    stored, an admin is told, and the worker is still running."""
    await runtime.queue.enqueue("generic", [json.dumps(poison(999), ensure_ascii=False).encode()])
    for i in range(20):
        assert (await post(client, order_json(i))).status_code == 202
    worker = runtime.intake_worker()
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (await runtime.queue.status()).dead == 0:
        assert not task.done(), "the worker loop ended"
        await asyncio.sleep(0.05)
    while time.monotonic() < deadline and await count(db) < 20:
        await asyncio.sleep(0.05)
    assert not task.done(), "the worker loop ended"
    stop.set()
    await asyncio.wait_for(task, 10)

    assert await count(db) == 20
    assert await count(db, OrderRow.external_id == "G00000999") == 0
    (dead,) = await runtime.queue.dead_entries()
    assert str(BIG) in dead["b"]
    async with db.connect() as conn:
        (row,) = (await conn.execute(select(DeadLetterRow))).all()
        (alert,) = (await conn.execute(select(OutboxRow).where(OutboxRow.kind == "dead_letter"))).all()
    assert alert.recipient_role == "admin" and alert.dedup_key == f"dead_letter:{row.entry_id}"
    assert "custom_fields" in row.error and "13800000999" not in row.error


async def test_a_crash_while_hashing_fails_only_that_entry(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any exception of one entry (here the hash, where the poison used to crash) fails that entry only."""
    real = intake.hashed

    def flaky(data: Any) -> Any:
        if data.external_id == "G00000003":
            raise TypeError("Integer exceeds 64-bit range")
        return real(data)

    monkeypatch.setattr(intake, "hashed", flaky)
    assert (await post(client, {"orders": [order_json(i) for i in range(10)]})).status_code == 202
    worker = runtime.intake_worker()
    await worker.run(burst=True)
    assert await count(db) == 9
    assert (await runtime.queue.status()).dead == 1


async def test_worker_loop_restarts_after_a_crash_and_healthz_reports_a_stalled_worker(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine, redis: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker = runtime.intake_worker()
    real_read = worker.queue.read
    crashes = []

    async def read_once_broken(*args: Any, **kwargs: Any) -> Any:
        if not crashes:
            crashes.append(1)
            raise RuntimeError("a bug in the loop")
        return await real_read(*args, **kwargs)

    monkeypatch.setattr(worker.queue, "read", read_once_broken)
    assert (await post(client, order_json(1))).status_code == 202
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and await count(db) < 1:
        await asyncio.sleep(0.05)
    assert await count(db) == 1 and worker.restarts == 1 and crashes
    health = (await client.get("/healthz")).json()
    assert health["status"] == "ok" and health["workers"]["consuming"] >= 1
    stop.set()
    await asyncio.wait_for(task, 10)

    # a worker whose loop stopped turning (hung, or alive doing nothing) is reported
    await redis.hset(keys.INTAKE_WORKERS, "stuck-worker", str(time.time() - 120))
    resp = await client.get("/healthz")
    assert resp.status_code == 503 and resp.json()["workers"]["stalled"] == ["stuck-worker"]
    assert 'orderhub_intake_workers{state="stalled"} 1.0' in (await client.get("/metrics")).text


async def test_a_burst_run_leaves_no_beat_behind(client: httpx.AsyncClient, runtime: Runtime) -> None:
    """`worker --burst` (and the demo) finish on purpose: /healthz must not later call them stalled."""
    assert (await post(client, order_json(1))).status_code == 202
    worker = runtime.intake_worker()
    await worker.run(burst=True)
    assert worker.opt.consumer not in await runtime.queue.worker_beats()
