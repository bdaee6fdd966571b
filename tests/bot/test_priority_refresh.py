"""Priority on history (issue 13.4): intake and the nightly refresh score a repeat customer's order with the weights
the rules give for that history; the refresh flags exactly ceil(top_fraction × open orders) and never moves one."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from bot.settings import BUNDLED_RULES, Settings
from bot.wiring.runtime import Runtime
from engine.rules import RuleSet
from handlers.priority import refresh_priorities
from storage import migrate
from storage.db import make_engine
from storage.models import ExceptionNoteRow, OrderRow
from storage.priority_repo import SqlPriorities
from tests.bot.test_intake_facts import _order
from tests.bot.test_intake_flow import post
from tests.webhooks.test_api import add_user


def points(rules: RuleSet, weight_id: str) -> int:
    """What the rules file gives for one weight (never a number copied into the test)."""
    return next(int(w.points) for w in rules.model.priority.weights if w.id == weight_id)


async def _rows(db: AsyncEngine) -> dict[str, Any]:
    async with db.connect() as conn:
        return {r.external_id: r for r in (await conn.execute(select(OrderRow))).all()}


def _plain(i: int, customer: str, created: datetime) -> dict[str, Any]:
    """An order no weight but history can move: normal tier, 3,000 yuan, no notes, created at noon in Shanghai."""
    return _order(i, customer, created, city="北京", amount=Decimal("3000.00"), tier="normal")


async def test_repeat_customer_scores_history_weights_at_intake_and_after_refresh(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    rules = runtime.current_rules()
    base, repeat, complaints = rules.priority_base, points(rules, "repeat-customer"), points(rules, "complaints")
    now = datetime.now(UTC)
    start = (now - timedelta(days=2)).replace(hour=4, minute=0)  # noon in Shanghai: no night-order weight
    assert (await post(client, {"orders": [_plain(i, "REPEAT", start + timedelta(minutes=i)) for i in range(4)]
                                 + [_plain(9, "ONCE", start)]})).status_code == 202
    await runtime.intake_worker().run(burst=True)
    rows = await _rows(db)
    assert [rows[f"F{i:05d}"].priority for i in range(3)] == [base] * 3  # 0, 1, 2 earlier orders: not yet repeat
    assert rows["F00003"].priority == base + repeat  # three earlier orders of the customer: the rules' weight
    assert rows["F00009"].priority == base

    # the history grows after intake: two complaints this week about the customer's first order
    async with db.begin() as conn:
        await conn.execute(insert(ExceptionNoteRow), [
            {"order_id": rows["F00000"].id, "at": now - timedelta(hours=h), "author": "客服", "text": "投诉",
             "kind": "complaint"} for h in (1, 2)])
    stages = {k: r.stage for k, r in rows.items()}
    res = await refresh_priorities(SqlPriorities(db), rules, now)
    after = await _rows(db)
    assert after["F00003"].priority == base + repeat + complaints
    assert [after[f"F{i:05d}"].priority for i in range(3)] == [base + complaints] * 3
    assert after["F00009"].priority == base
    assert {k: r.stage for k, r in after.items()} == stages  # the refresh never moves an order
    assert res.open_orders == 5 and res.flagged == math.ceil(5 * rules.top_fraction)
    assert after["F00009"].flagged and sum(r.flagged for r in after.values()) == res.flagged


async def _open_orders(client: httpx.AsyncClient, runtime: Runtime, n: int, vip: set[int]) -> None:
    start = (datetime.now(UTC) - timedelta(days=1)).replace(hour=4, minute=0)
    orders = [_order(i, f"C{i}", start + timedelta(minutes=i), city="北京", amount=Decimal("3000.00"),
                     tier="vip" if i in vip else "normal") for i in range(n)]
    assert (await post(client, {"orders": orders})).status_code == 202
    await runtime.intake_worker().run(burst=True)


async def test_exactly_ceil_top_fraction_flagged_and_ties_go_to_older_orders(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    rules = runtime.current_rules()
    assert rules.top_fraction == pytest.approx(0.10)
    await _open_orders(client, runtime, 24, vip={7, 15})
    rows = await _rows(db)
    async with db.begin() as conn:  # one order closed, flagged by an earlier refresh: no longer among the open
        await conn.execute(update(OrderRow).where(OrderRow.external_id == "F00023")
                           .values(stage="cancelled", flagged=True))
    res = await refresh_priorities(SqlPriorities(db), rules, datetime.now(UTC))
    after = await _rows(db)
    flagged = {k for k, r in after.items() if r.flagged}
    assert res.open_orders == 23 and len(flagged) == res.flagged == 3 == math.ceil(23 * 0.10)
    # the two VIP orders score highest; the third place is a 22-way tie, given to the oldest (lowest id)
    oldest_plain = min((r for k, r in rows.items() if k not in ("F00007", "F00015", "F00023")), key=lambda r: r.id)
    assert flagged == {"F00007", "F00015", oldest_plain.external_id}
    assert after["F00023"].stage == "cancelled"
    again = await refresh_priorities(SqlPriorities(db), rules, datetime.now(UTC))
    assert again.flagged_ids == res.flagged_ids and again.changed == 0  # deterministic, nothing left to write


async def test_api_filters_flagged_orders(client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine) -> None:
    await _open_orders(client, runtime, 12, vip={3})
    await refresh_priorities(SqlPriorities(db), runtime.current_rules(), datetime.now(UTC))
    admin = {"Authorization": f"Bearer {await add_user(runtime, 'ops', 'admin')}"}
    flagged = (await client.get("/api/orders", params={"flagged": "true"}, headers=admin)).json()
    assert flagged["total"] == 2 == math.ceil(12 * 0.10)
    assert {o["external_id"] for o in flagged["items"]} >= {"F00003"} and all(o["flagged"] for o in flagged["items"])
    rest = (await client.get("/api/orders", params={"flagged": "false", "limit": 500}, headers=admin)).json()
    assert rest["total"] == 10 and not any(o["flagged"] for o in rest["items"])
    assert (await client.get("/api/orders", headers=admin)).json()["total"] == 12
    bad = await client.get("/api/orders", params={"flagged": "maybe\x00"}, headers=admin)
    assert bad.status_code == 422


async def test_refresh_reads_history_in_a_fixed_number_of_queries(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    """One batched pass: the statements do not grow with the number of open orders."""
    from sqlalchemy import event

    async def statements_for_refresh() -> int:
        seen: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            seen.append(statement)

        event.listen(db.sync_engine, "before_cursor_execute", count)
        try:
            await refresh_priorities(SqlPriorities(db), runtime.current_rules(), datetime.now(UTC))
        finally:
            event.remove(db.sync_engine, "before_cursor_execute", count)
        return len([s for s in seen if s.lstrip().upper().startswith("SELECT")])

    await _open_orders(client, runtime, 5, vip=set())
    few = await statements_for_refresh()
    start = (datetime.now(UTC) - timedelta(days=1)).replace(hour=4, minute=0)
    more = [_plain(100 + i, "MANY", start + timedelta(minutes=i)) for i in range(60)]
    assert (await post(client, {"orders": more})).status_code == 202
    await runtime.intake_worker().run(burst=True)
    assert await statements_for_refresh() == few


def test_cli_priority_refresh(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli.main import app

    url = f"sqlite:///{tmp_path / 'orderhub.db'}"
    now = datetime.now(UTC)

    async def seed() -> None:
        engine = make_engine(Settings(_env_file=None, database_url=url).async_database_url)
        await migrate.upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(insert(OrderRow), [dict(
                channel="generic", external_id=f"K{i}", created_at=now - timedelta(days=1), received_at=now,
                updated_at=now, customer_id=f"C{i}", customer_name="王女士", customer_phone="13800138000",
                customer_city="北京", customer_tier="vip" if i == 4 else "normal", region=None,
                amount=Decimal("3000.00"), currency="CNY", items=[], custom_fields={}, notes="", payload_hash="h",
                stage="designing", stage_entered_at=now, stage_deadline=None, priority=0, flagged=False,
                manual_intervention=False) for i in range(11)])
        await engine.dispose()

    async def stored() -> list[tuple[str, int, bool, str]]:
        engine = make_engine(Settings(_env_file=None, database_url=url).async_database_url)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(OrderRow.external_id, OrderRow.priority, OrderRow.flagged,
                                              OrderRow.stage).order_by(OrderRow.id))).all()
        await engine.dispose()
        return [tuple(r) for r in rows]

    asyncio.run(seed())
    for var, value in {"ORDERHUB_DATABASE_URL": url, "ORDERHUB_REDIS_URL": redis_url, "ORDERHUB_RULES":
                       str(BUNDLED_RULES), "ORDERHUB_DATA_DIR": str(tmp_path / "data")}.items():
        monkeypatch.setenv(var, value)
    result = CliRunner().invoke(app, ["priority", "refresh"])
    assert result.exit_code == 0, result.output
    assert "11 open orders re-scored, 2 flagged" in result.output
    rows = asyncio.run(stored())
    assert [r[0] for r in rows if r[2]] == ["K0", "K4"]  # the VIP, then the oldest of the ties
    assert all(r[1] > 0 for r in rows) and {r[3] for r in rows} == {"designing"}


def test_nightly_job_is_a_leader_only_midnight_cron_in_the_configured_zone() -> None:
    from apscheduler.triggers.cron import CronTrigger

    from bot.workers.scheduler import ChatJobs, ChatScheduler

    class Lease:
        ttl_ms, held = 15_000, False

    async def job() -> None:
        ran.append(1)

    ran: list[int] = []
    daily = [("priority_refresh", time(0, 0), "Asia/Shanghai", job)]
    jobs = ChatJobs(None, None, None, lambda: [], daily=daily)  # type: ignore[arg-type]
    sched = ChatScheduler(Lease(), jobs)  # type: ignore[arg-type]
    trig = sched.scheduler.get_job("priority_refresh").trigger
    assert isinstance(trig, CronTrigger) and str(trig.timezone) == "Asia/Shanghai"
    fire = trig.get_next_fire_time(None, datetime(2025, 11, 11, 12, tzinfo=UTC))
    assert fire.astimezone(UTC) == datetime(2025, 11, 11, 16, tzinfo=UTC)  # 00:00 in Shanghai
    run = sched.scheduler.get_job("priority_refresh").func
    asyncio.run(run())
    assert ran == []  # not the leader: nothing runs
    Lease.held = True
    asyncio.run(run())
    assert ran == [1]


async def test_nightly_refresh_survives_the_database_vanishing_for_a_few_seconds(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    from sqlalchemy.exc import OperationalError

    from handlers.priority import refresh_with_retry

    await _open_orders(client, runtime, 10, vip={2})

    class Vanishing(SqlPriorities):
        """The database is away for the first `down` passes (as during a 3 s failover)."""

        down = 2

        async def open_orders(self, now: datetime) -> list[Any]:
            if self.down:
                self.down -= 1
                raise OperationalError("SELECT", {}, ConnectionRefusedError("db away"))
            return await super().open_orders(now)

    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    res = await refresh_with_retry(Vanishing(db), runtime.current_rules, lambda: datetime.now(UTC), sleep)
    assert res.flagged == 1 and slept == [2.0, 4.0]
    assert {k for k, r in (await _rows(db)).items() if r.flagged} == {"F00002"}
    gone = Vanishing(db)
    gone.down = 99
    with pytest.raises(OperationalError):
        await refresh_with_retry(gone, runtime.current_rules, lambda: datetime.now(UTC), sleep, attempts=3)
