"""Issue 9 item 6: Redis SIGKILLed and restarted under load → the workers carry on by themselves, and every order
answered 202 is stored exactly once.

A redis-server of this test's own (free port, `--appendonly yes --appendfsync always`: an acknowledged XADD is on
disk, so a SIGKILL loses nothing that was answered 202), `orderhub api` and two `orderhub worker` processes on the
session's database. Before the fix a 3-second outage killed every worker (`ConnectionError` from `queue.ack`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import BUNDLED_RULES
from storage.models import DeadLetterRow, OrderRow
from tests.bot.test_intake_faults import ROOT, Proc, free_port
from tests.conftest import SECRETS
from tests.factories import order_json, signed

TOTAL, CONCURRENCY = 1500, 16


class RedisServer:
    def __init__(self, port: int, data: Path) -> None:
        self.port, self.data = port, data
        data.mkdir(parents=True, exist_ok=True)
        self.p: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.p = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.data)],
            stdout=(self.data / "redis.log").open("ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import socket

                with socket.create_connection(("127.0.0.1", self.port), 0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        assert self.p is not None
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(10)


async def stored(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(OrderRow))).scalar_one()


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_redis_killed_and_restarted_under_load(database_url: str, db: AsyncEngine, tmp_path: Path) -> None:
    redis = RedisServer(free_port(), tmp_path / "redis")
    redis.start()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ORDERHUB_DATABASE_URL": database_url,
           "ORDERHUB_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0", "ORDERHUB_RULES": str(BUNDLED_RULES),
           "ORDERHUB_WEBHOOK_SECRETS": f"generic={SECRETS['generic']}", "ORDERHUB_DATA_DIR": str(tmp_path / "data"),
           "ORDERHUB_DIGEST_AT": "off", "ORDERHUB_INTAKE_BATCH_SIZE": "50"}
    for var in ("ORDERHUB_TELEGRAM_TOKEN", "ORDERHUB_WECOM_CORP_ID", "ORDERHUB_PUBLIC_URL"):
        env.pop(var, None)
    api = Proc(["api", "--port", str(port)], env, tmp_path / "api.log")
    workers = [Proc(["worker"], env, tmp_path / f"worker-{i}.log") for i in range(2)]
    accepted: set[str] = set()
    refused = 0
    outage: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and api.p.poll() is None, "api did not start"
                await asyncio.sleep(0.1)
            sem = asyncio.Semaphore(CONCURRENCY)

            async def send(i: int) -> None:
                """A sender that retries until it gets its 202 (a 503 during the outage promised nothing)."""
                nonlocal refused
                order = order_json(i)
                async with sem:
                    while True:
                        body, headers = signed(SECRETS["generic"], order)
                        try:
                            resp = await client.post("/webhooks/orders/generic", content=body, headers=headers)
                        except httpx.TransportError:
                            resp = None
                        if resp is not None and resp.status_code == 202:
                            accepted.add(order["external_id"])
                            return
                        assert resp is None or resp.status_code == 503, resp.text
                        refused += 1
                        await asyncio.sleep(0.2)

            async def saboteur() -> None:
                while await stored(db) < TOTAL // 3:
                    await asyncio.sleep(0.02)
                outage["stored_at_kill"] = await stored(db)
                redis.kill()
                await asyncio.sleep(3)
                redis.start()
                outage["restarted"] = True

            sabotage = asyncio.create_task(saboteur())
            await asyncio.gather(*(send(i) for i in range(TOTAL)))
            await asyncio.wait_for(sabotage, 120)
            deadline = time.monotonic() + 120
            while await stored(db) < len(accepted) and time.monotonic() < deadline:
                assert all(w.p.poll() is None for w in workers), "a worker exited"
                await asyncio.sleep(0.2)
        print(f"redis SIGKILLed at {outage['stored_at_kill']} stored; {refused} requests answered 503 meanwhile")
        assert outage.get("restarted") and 0 < outage["stored_at_kill"] < TOTAL
        assert all(w.p.poll() is None for w in workers), "a worker exited"
        async with db.connect() as conn:
            ids = (await conn.execute(select(OrderRow.external_id))).scalars().all()
            dead = (await conn.execute(select(func.count()).select_from(DeadLetterRow))).scalar_one()
        assert len(ids) == len(set(ids)) == len(accepted) == TOTAL, (len(ids), len(set(ids)), len(accepted))
        assert set(ids) == accepted and dead == 0
    except BaseException:
        for p in [api, *workers]:
            print(f"--- {p.log.name}\n{p.log.read_text(errors='replace')[-3000:]}")
        raise
    finally:
        for p in [*workers, api]:
            p.stop()
        if redis.p is not None and redis.p.poll() is None:
            redis.kill()
