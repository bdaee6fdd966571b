"""`orderhub demo`: a simulated business day through the real path — HTTP → queue → worker → database — and then
the chat transcript of that day (bot/demo/chat.py)."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import orjson
import uvicorn
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from bot.processes.asgi import create_asgi_app
from bot.demo.chat import run_chat_demo
from bot.demo.samples import sample_order
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from engine.stages import label
from engine.text_cli import tc
from storage.models import ApprovalRow, OrderRow
from webhooks.signing import sign

DEMO_SECRET = "demo-secret"
DEMO_DIR = Path("orderhub-demo")


def demo_settings(settings: Settings, data_dir: Path) -> Settings:
    """The demo's own installation: its SQLite database and embedded Redis under `data_dir`, so 800 demo orders and
    7 demo users never land in the real database or queue. Language, time zone and rules stay the configured ones."""
    return settings.model_copy(update={"database_url": f"sqlite:///{(data_dir / 'orderhub.db').resolve()}",
                                       "redis_url": None, "data_dir": data_dir, "webhook_secrets": {}})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def local_midnight(now: datetime, timezone: str) -> datetime:
    """The start of today in the configured time zone (the merchant's day, not the UTC date), as UTC."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def build_deliveries(n: int, prefix: str, rng: random.Random, timezone: str = "Asia/Shanghai",
                     now: datetime | None = None) -> tuple[list[dict], list[list[dict]]]:
    """The day's orders, and how platforms deliver them: batches and single pushes, ~5 % delivered twice."""
    day = local_midnight(now or datetime.now(UTC), timezone)
    orders = [sample_order(i, prefix, day) for i in range(n)]
    deliveries: list[list[dict]] = []
    i = 0
    while i < n:
        size = rng.choice([1, 1, 1, 20, 50])
        deliveries.append(orders[i:i + size])
        i += size
    repeats = rng.sample(orders, k=max(1, n // 20))
    deliveries += [[o] for o in repeats]  # a platform retrying after a timeout
    rng.shuffle(deliveries)
    return orders, deliveries


async def post_all(url: str, secret: bytes, deliveries: list[list[dict]], concurrency: int = 8) -> Counter[int]:
    statuses: Counter[int] = Counter()
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        async def one(batch: list[dict]) -> None:
            body = orjson.dumps(batch[0] if len(batch) == 1 else {"orders": batch})
            headers = {"X-OrderHub-Signature": sign(secret, body, int(time.time())),
                       "Content-Type": "application/json"}
            async with sem:
                resp = await client.post("/webhooks/orders/generic", content=body, headers=headers)
            statuses[resp.status_code] += 1

        await asyncio.gather(*(one(b) for b in deliveries))
    return statuses


async def write_demo_chart(rt: Runtime, settings: Settings) -> Path:
    """This morning's digest chart of the demo's data, as `<data dir>/digest-chart.png` (what chat would show)."""
    from bot.adapters.digest_chart import write_chart
    from handlers.digest import build_chart
    from handlers.notes import category_names
    from storage.digest_repo import SqlDigestSource

    figures = await build_chart(SqlDigestSource(rt.db), rt.clock.now(), settings.timezone,
                                category_names(rt.current_rules()))
    return await asyncio.to_thread(write_chart, figures, Path(settings.data_dir) / "digest-chart.png",
                                   settings.language)


async def run_demo(settings: Settings, n_orders: int, console: Console) -> bool:
    lang = settings.language
    if "generic" not in settings.webhook_secrets:
        settings.webhook_secrets["generic"] = SecretStr(DEMO_SECRET)
    secret = settings.webhook_secrets["generic"].get_secret_value().encode()
    rt = Runtime.build(settings)
    await rt.upgrade_db()
    await rt.start_rules(watch=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_asgi_app(rt), host="127.0.0.1", port=port, log_level="warning"))
    stop = asyncio.Event()
    serving = asyncio.create_task(server.serve())
    worker = asyncio.create_task(rt.intake_worker().run(stop))
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        prefix = f"D{datetime.now(UTC):%m%d%H%M%S}-"
        orders, deliveries = build_deliveries(n_orders, prefix, random.Random(42), settings.timezone)
        console.rule(f"[bold]{tc('d.rule', lang, n=n_orders, url=f'http://127.0.0.1:{port}')}")
        started = time.perf_counter()
        statuses = await post_all(f"http://127.0.0.1:{port}", secret, deliveries)
        posted = time.perf_counter() - started
        stored = 0
        async with rt.db.connect() as conn:
            for _ in range(600):
                stored = (await conn.execute(select(func.count()).select_from(OrderRow).where(
                    OrderRow.external_id.like(f"{prefix}%")))).scalar_one()
                if stored >= n_orders:
                    break
                await asyncio.sleep(0.1)
            elapsed = time.perf_counter() - started
            stages = dict((await conn.execute(select(OrderRow.stage, func.count()).where(
                OrderRow.external_id.like(f"{prefix}%")).group_by(OrderRow.stage))).all())
            regions = dict((await conn.execute(select(OrderRow.region, func.count()).where(
                OrderRow.external_id.like(f"{prefix}%")).group_by(OrderRow.region))).all())
            approvals = (await conn.execute(select(func.count()).select_from(ApprovalRow).join(
                OrderRow, OrderRow.id == ApprovalRow.order_id).where(OrderRow.external_id.like(f"{prefix}%"),
                                                                     ApprovalRow.status == "pending"))).scalar_one()
        table = Table(title=tc("d.table", lang))
        table.add_column(tc("d.what", lang))
        table.add_column(tc("d.count", lang), justify="right")
        table.add_row(tc("d.sent", lang), str(n_orders))
        table.add_row(tc("d.deliveries", lang), str(len(deliveries)))
        table.add_row(tc("d.repeats", lang), str(sum(len(d) for d in deliveries) - n_orders))
        table.add_row(tc("d.answered", lang), str(statuses.get(202, 0)))
        table.add_row(f"[bold]{tc('d.stored', lang)}", f"[bold]{stored}")
        for stage, count in sorted(stages.items()):
            table.add_row(tc("d.stage", lang, stage=label(stage, lang)), str(count))
        for region, count in sorted(regions.items(), key=lambda kv: str(kv[0])):
            table.add_row(tc("d.region", lang, region=region or tc("d.no_region", lang)), str(count))
        table.add_row(tc("d.approvals", lang), str(approvals))
        table.add_row(tc("d.seconds", lang), f"{posted:.2f} / {elapsed:.2f}")
        console.print(table)
        ok = stored == n_orders and statuses.get(202, 0) == len(deliveries)
        console.print(f"[green]{tc('d.ok', lang)}[/]" if ok else f"[red]{tc('d.missing', lang)}[/]")
        chat_ok = await run_chat_demo(rt.db, rt.redis, rt.current_rules, rt.clock, console, prefix=prefix,
                                      language=settings.language, refunds=rt.refund_deps())
        chart = await write_demo_chart(rt, settings)
        console.print(tc("d.chart", lang, path=str(chart)), soft_wrap=True, markup=False, highlight=False)
        return ok and chat_ok
    finally:
        stop.set()
        server.should_exit = True
        await asyncio.gather(serving, worker, return_exceptions=True)
        await rt.close()
