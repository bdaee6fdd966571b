"""Tracking apply benchmark: carrier events applied per second by `handlers.tracking.apply_events`, beside a raw
baseline measured in the same run on the same database.

Run: `.venv/bin/python bench/tracking.py [--db sqlite|postgres|both] [--waybills 100] [--each 90] [--profile]`

The workload is the crash test's: `waybills` shipped orders, `each` scans per waybill (pickup, transit, delivered),
10 % of the pushes redelivered, shuffled, applied in batches of 100 pushes (the tracking worker's batch). The
baseline is a raw `executemany` of the same rows, `INSERT … ON CONFLICT DO NOTHING`, one transaction per batch,
into a table of the same shape — the floor no event store can beat. Each run uses a fresh PostgreSQL database
(dropped afterwards) or a temporary SQLite file, and Redis db 8 (flushed) only to create the orders.
Nothing here asserts timings; it prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from bot.settings import BUNDLED_RULES, Settings
from bot.wiring.runtime import Runtime
from engine.carriers import TrackEvent, TrackStatus, event_key
from handlers.tracking import apply_events
from storage import migrate
from storage.db import make_engine
from tests.bot.carriers.shipping import shipped_orders
from tests.conftest import SECRETS

PG = os.environ.get("ORDERHUB_BENCH_PG", "postgresql://root@127.0.0.1:5432/test")
REDIS = os.environ.get("ORDERHUB_BENCH_REDIS", "redis://127.0.0.1:6379/8")
BATCH = 100
console = Console()


def workload(waybills: list[str], each: int) -> tuple[list[TrackEvent], int]:
    base = datetime(2026, 12, 1, tzinfo=UTC)
    distinct = []
    for n, wb in enumerate(waybills):
        for k in range(each):
            status = TrackStatus.PICKED_UP if k == 0 else TrackStatus.DELIVERED if k == each - 1 else \
                TrackStatus.IN_TRANSIT
            distinct.append(TrackEvent("sf", wb, base + timedelta(hours=k, minutes=n % 60), status, f"第 {k} 站",
                                       f"中转场 {k}", "31"))
    rng = random.Random(14)
    pushes = distinct + rng.sample(distinct, len(distinct) // 9)
    rng.shuffle(pushes)
    return pushes, len(distinct)


async def run(url: str, waybills: int, each: int, profile: bool) -> tuple[float, float, int]:
    engine = make_engine(Settings(database_url=url).async_database_url)
    await migrate.upgrade(engine)
    await engine.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        s = Settings(_env_file=None, database_url=url, redis_url=REDIS, data_dir=Path(tmp) / "data",
                     rules=BUNDLED_RULES, webhook_secrets=",".join(f"{k}={v}" for k, v in SECRETS.items()))
        rt = Runtime.build(s)
        await rt.redis.flushdb()
        await rt.start_rules(watch=False)
        try:
            pushes, distinct = workload(await shipped_orders(rt, waybills), each)
            deps, now = rt.tracking_deps(), datetime.now(UTC)
            prof = cProfile.Profile() if profile else None
            t0 = time.perf_counter()
            if prof:
                prof.enable()
            for i in range(0, len(pushes), BATCH):
                await apply_events(deps, "sf", pushes[i:i + BATCH], now)
            if prof:
                prof.disable()
            applied = time.perf_counter() - t0
            async with rt.db.connect() as conn:
                stored = (await conn.execute(text("SELECT count(*) FROM tracking_events"))).scalar_one()
            assert stored == distinct, (stored, distinct)
            raw = await baseline(rt, pushes, now)
            if prof:
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            return len(pushes) / applied, len(pushes) / raw, len(pushes)
        finally:
            await rt.redis.flushdb()
            await rt.close()


async def baseline(rt: Runtime, pushes: list[TrackEvent], now: datetime) -> float:
    async with rt.db.begin() as conn:
        await conn.execute(text("CREATE TABLE bench_events (id INTEGER PRIMARY KEY, shipment_id INTEGER, "
                                "event_key VARCHAR(32), at TIMESTAMP, status VARCHAR(20), code VARCHAR(16), "
                                "text TEXT, place VARCHAR(200), applied BOOLEAN, received_at TIMESTAMP, "
                                "UNIQUE (shipment_id, event_key))"))
    ids = {}
    rows = [{"s": ids.setdefault(ev.waybill, len(ids) + 1), "k": event_key(ev), "at": ev.at.replace(tzinfo=None),
             "st": ev.status.value, "c": ev.code, "t": ev.text, "p": ev.place, "r": now.replace(tzinfo=None)}
            for ev in pushes]
    if rt.db.dialect.name == "postgresql":
        await _serial(rt)
    stmt = text("INSERT INTO bench_events (shipment_id, event_key, at, status, code, text, place, applied, "
                "received_at) VALUES (:s, :k, :at, :st, :c, :t, :p, false, :r) ON CONFLICT DO NOTHING")
    t0 = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        async with rt.db.begin() as conn:
            await conn.execute(stmt, rows[i:i + BATCH])
    return time.perf_counter() - t0


async def _serial(rt: Runtime) -> None:
    async with rt.db.begin() as conn:
        await conn.execute(text("CREATE SEQUENCE bench_events_id"))
        await conn.execute(text("ALTER TABLE bench_events ALTER COLUMN id SET DEFAULT nextval('bench_events_id')"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--waybills", type=int, default=100)
    ap.add_argument("--each", type=int, default=90)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    table = Table(title=f"tracking apply: {a.waybills} waybills × {a.each} scans + 10 % redeliveries, "
                        f"batches of {BATCH}")
    for col in ("backend", "pushes", "apply_events pushes/s", "raw executemany rows/s", "ratio"):
        table.add_column(col, justify="right")
    for backend in (["sqlite", "postgres"] if a.db == "both" else [a.db]):
        if backend == "postgres":
            import psycopg

            name = f"orderhub_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            try:
                got = asyncio.run(run(PG.rsplit("/", 1)[0] + f"/{name}", a.waybills, a.each, a.profile))
            finally:
                with psycopg.connect(PG, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            with tempfile.TemporaryDirectory() as tmp:
                got = asyncio.run(run(f"sqlite:///{tmp}/bench.db", a.waybills, a.each, a.profile))
        ours, raw, n = got
        table.add_row(backend, str(n), f"{ours:,.0f}", f"{raw:,.0f}", f"{ours / raw:.0%}")
    console.print(table)


if __name__ == "__main__":
    main()
