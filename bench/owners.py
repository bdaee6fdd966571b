"""Owner assignment at intake: what the rules' `owners:` rows cost a batch, beside the same batches without them.

Run: `.venv/bin/python bench/owners.py [--batches 6] [--size 500] [--rounds 3]`

Each variant gets a fresh temporary SQLite file (migrated), 20 managers of 华东 and 20 supply-chain users, and the
same orders (杭州, under the approval threshold, so every one is confirmed at once and enters 设计中 at intake), fed
through the real `IntakeProcessor` + `SqlIntakeStore` in batches. Printed: orders/s and ms per batch (median), and
how many orders got an owner. The variants run interleaved, `--rounds` times, and the median round is shown, so a
busy machine slows them alike. Nothing here asserts timings; it prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, insert, select

from bot.settings import BUNDLED_RULES
from engine.channels import default_adapters
from engine.rules import load_rules
from handlers.intake import IntakeProcessor
from handlers.ports import IntakeEntry
from storage.db import make_engine
from storage.intake_store import SqlIntakeStore
from storage.migrate import upgrade
from storage.models import OrderRow, UserRow
from tests.factories import order_json

VARIANTS = {
    "no owners: rows (baseline)": "",
    "round-robin pool": "\nowners:\n  - {id: d, stage: designing, region: 华东, pool: {role: manager}}\n",
    "least-loaded pool": "\nowners:\n  - {id: d, stage: designing, pool: {role: supply_chain, strategy: least_loaded}}\n",
    "named user": "\nowners:\n  - {id: d, stage: designing, user: m0}\n",
}


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def run(extra: str, batches: int, size: int) -> tuple[float, float, int]:
    rules = load_rules(BUNDLED_RULES.read_text(encoding="utf-8") + extra)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'b.db'}")
        await upgrade(engine)
        async with engine.begin() as conn:
            now = datetime.now(UTC)
            await conn.execute(insert(UserRow.__table__), [
                {"name": f"{p}{i}", "role": role, "regions": ["华东"], "created_at": now, "active": True}
                for p, role in (("m", "manager"), ("s", "supply_chain")) for i in range(20)])
        processor = IntakeProcessor(SqlIntakeStore(engine, Clock()), default_adapters(), lambda: rules)
        times = []
        for b in range(batches):
            entries = [IntakeEntry(f"{b}-{i}", "generic", orjson.dumps(order_json(
                b * size + i + 1, amount=Decimal("3000.00"), city="杭州"))) for i in range(size)]
            started = time.perf_counter()
            await processor.process(entries, datetime.now(UTC))
            times.append(time.perf_counter() - started)
        async with engine.connect() as conn:
            owned = (await conn.execute(select(func.count()).where(OrderRow.__table__.c.owner_user_id.is_not(None))
                                        )).scalar_one()
        await engine.dispose()
    per_batch = statistics.median(times[1:] if len(times) > 2 else times)
    return size / per_batch, per_batch * 1000, int(owned)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, extra in VARIANTS.items():
            results[name].append(await run(extra, args.batches, args.size))
    table = Table(title=f"intake with owner assignment: {args.batches} batches of {args.size} (SQLite), median batch, "
                        f"median of {args.rounds} interleaved rounds")
    for col in ("variant", "orders/s", "ms per batch", "vs baseline", "orders owned"):
        table.add_column(col)
    base = None
    for name, runs in results.items():
        ms = statistics.median(r[1] for r in runs)
        base = base or ms
        table.add_row(name, f"{args.size / ms * 1000:,.0f}", f"{ms:.1f}", f"{ms / base:.2f}×", f"{runs[0][2]:,}")
    Console().print(table)


if __name__ == "__main__":
    asyncio.run(main())
