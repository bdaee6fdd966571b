"""10,000 tracking pushes (10 % of them redeliveries) while the `orderhub worker` consuming them is SIGKILLed
once: every event is stored exactly once, and every delivered order moved exactly once.

Real processes, because what it proves — ack after commit, XAUTOCLAIM of a dead consumer's entries, idempotent
event insert — only means something across process boundaries.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import BUNDLED_RULES, Settings
from bot.wiring.runtime import Runtime
from storage import keys
from storage.models import StageTransitionRow, TrackingEventRow
from tests.bot.carriers.shipping import shipped_orders
from tests.bot.test_intake_faults import ROOT, Proc, count
from tests.standins import carriers as c
from webhooks.app import create_app

WAYBILLS, EVENTS_EACH, DUPLICATES = 100, 90, 1_000  # 9,000 distinct events + 1,000 redeliveries = 10,000 pushes


@pytest.mark.slow
@pytest.mark.timeout(1500)
async def test_sigkilled_tracking_worker_stores_every_event_once(settings: Settings, database_url: str,
                                                                 redis_url: str, db: AsyncEngine,
                                                                 tmp_path: Path) -> None:
    s = settings.model_copy(update={"sf_partner_id": c.SF_PARTNER, "sf_checkword": SecretStr(c.SF_CHECKWORD)})
    rt = Runtime.build(s)
    await rt.redis.flushdb()
    await rt.start_rules(watch=False)
    app = create_app(rt.app_services())
    worker_env = {**os.environ, "PYTHONPATH": str(ROOT), "ORDERHUB_DATABASE_URL": database_url,
                  "ORDERHUB_REDIS_URL": redis_url, "ORDERHUB_RULES": str(BUNDLED_RULES),
                  "ORDERHUB_DATA_DIR": str(tmp_path / "data"), "ORDERHUB_INTAKE_CLAIM_IDLE_S": "2",
                  "ORDERHUB_INTAKE_RETRY_BACKOFF_S": "0.2"}
    workers: list[Proc] = []
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            waybills = await shipped_orders(rt, WAYBILLS)
            forms = []
            for n, wb in enumerate(waybills):
                for k in range(EVENTS_EACH):
                    op = "50" if k == 0 else "80" if k == EVENTS_EACH - 1 else "31"
                    at = f"2026-12-{1 + k // 24:02d} {k % 24:02d}:{n % 60:02d}:00"
                    forms.append(c.push_form_sf([c.sf_route(wb, at, op, f"第 {k} 站", f"中转场 {k}")]))
            rng = random.Random(14)
            pushes = forms + rng.sample(forms, DUPLICATES)
            rng.shuffle(pushes)
            assert len(pushes) == 10_000

            workers.append(Proc(["worker"], worker_env, tmp_path / "worker-0.log"))
            kills: list[int] = []

            async def saboteur() -> None:
                while (stored := await count(db, TrackingEventRow)) < len(forms) // 3:
                    await asyncio.sleep(0.02)
                workers[-1].kill()
                kills.append(stored)
                workers.append(Proc(["worker"], worker_env, tmp_path / "worker-1.log"))

            sabotage = asyncio.create_task(saboteur())
            sem = asyncio.Semaphore(32)

            async def send(form: dict[str, str]) -> int:
                async with sem:
                    return (await client.post("/webhooks/logistics/sf", data=form)).status_code

            statuses = await asyncio.gather(*(send(f) for f in pushes))
            assert set(statuses) == {200}
            await asyncio.wait_for(sabotage, 600)
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                assert workers[-1].p.poll() is None, "the restarted worker exited"
                depth = await rt.redis.xlen(keys.TRACKING_STREAM) + await rt.redis.zcard(keys.TRACKING_RETRY_ZSET)
                if depth == 0 and await count(db, TrackingEventRow) >= len(forms):
                    break
                await asyncio.sleep(0.2)
        assert len(kills) == 1 and 0 < kills[0] < len(forms), kills
        print(f"SIGKILLed the tracking worker at {kills[0]} stored events")
        assert await count(db, TrackingEventRow) == len(forms)
        async with db.connect() as conn:
            distinct = (await conn.execute(text("SELECT count(DISTINCT event_key) FROM tracking_events"))).scalar()
            assert distinct == len(forms)
            unapplied = (await conn.execute(select(func.count()).select_from(TrackingEventRow).where(
                TrackingEventRow.applied.is_(False)))).scalar()
            assert unapplied == 0
        assert await count(db, StageTransitionRow, StageTransitionRow.to_stage == "awaiting_install") == WAYBILLS
        assert await rt.redis.xlen(keys.TRACKING_DEAD_STREAM) == 0
    finally:
        for w in workers:
            w.stop()
        await rt.close()

