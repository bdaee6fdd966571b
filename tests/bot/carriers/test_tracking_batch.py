"""Applying a batch of carrier events: a constant number of SQL statements per batch (not per waybill or event),
the shipments' state and the orders' tracking summary right for every waybill in it, and a crash between storing
and marking applied finished by the retry without doubling the move."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from bot.wiring.runtime import Runtime
from engine.carriers import TrackEvent, TrackStatus
from handlers.tracking import apply_events
from storage.models import OrderRow, ShipmentRow, StageTransitionRow, TrackingEventRow
from storage.orders_repo import SqlOrders
from storage.tracking_repo import SqlTracking
from tests.bot.carriers.shipping import shipped_orders
from tests.bot.test_intake_faults import count

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)


@pytest.fixture
async def rt(settings: Settings, db: AsyncEngine, redis: aioredis.Redis) -> AsyncIterator[Runtime]:
    runtime = Runtime.build(settings)
    await runtime.start_rules(watch=False)
    yield runtime
    await runtime.close()


def scans(waybill: str, statuses: list[TrackStatus]) -> list[TrackEvent]:
    return [TrackEvent("sf", waybill, T0 + timedelta(hours=k), st, f"第 {k} 站", f"中转场 {k}", "31")
            for k, st in enumerate(statuses)]


class Statements:
    """Counts the SQL statements the engine sends (each one a round trip)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.n = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._count)
        self.engine = engine

    def _count(self, *args: Any) -> None:
        self.n += 1

    def close(self) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._count)


async def test_statements_per_batch_do_not_grow_with_waybills(rt: Runtime) -> None:
    waybills = await shipped_orders(rt, 14)
    transit = [TrackStatus.PICKED_UP, TrackStatus.IN_TRANSIT, TrackStatus.IN_TRANSIT]
    deps, counted = rt.tracking_deps(), []
    for group in (waybills[:2], waybills[2:14]):
        batch = [ev for wb in group for ev in scans(wb, transit)]
        batch += batch[:3]  # a redelivery inside the batch
        stmts = Statements(rt.db)
        try:
            result = await apply_events(deps, "sf", batch, T0)
        finally:
            stmts.close()
        assert result.stored == 3 * len(group) and result.applied == 3 * len(group)
        counted.append(stmts.n)
    assert counted[0] == counted[1], counted  # 2 waybills or 12: the same statements
    again = Statements(rt.db)
    try:
        assert (await apply_events(deps, "sf", scans(waybills[5], transit), T0)).stored == 0
    finally:
        again.close()
    assert again.n <= counted[0]


async def test_batch_state_and_summary_per_waybill(rt: Runtime) -> None:
    a, b = await shipped_orders(rt, 2)
    evs = scans(a, [TrackStatus.PICKED_UP, TrackStatus.IN_TRANSIT, TrackStatus.OUT_FOR_DELIVERY,
                    TrackStatus.DELIVERED]) + scans(b, [TrackStatus.PICKED_UP, TrackStatus.EXCEPTION])
    evs.reverse()  # pushed out of order
    result = await apply_events(rt.tracking_deps(), "sf", evs, T0)
    assert result.stored == 6 and len(result.moved) == 1
    async with rt.db.connect() as conn:
        ships = {r.waybill: r for r in (await conn.execute(select(ShipmentRow.__table__))).all()}
        orders = {r.id: r.tracking for r in (await conn.execute(select(OrderRow.id, OrderRow.tracking))).all()}
    sa, sb = ships[a], ships[b]
    assert sa.status == "delivered" and sb.status == "exception"
    assert sa.picked_up_at.replace(tzinfo=UTC) == T0
    assert sa.delivered_at.replace(tzinfo=UTC) == T0 + timedelta(hours=3) and sb.delivered_at is None
    assert [e["text"] for e in orders[sa.order_id]["last_events"]] == ["第 3 站", "第 2 站", "第 1 站"]
    assert orders[sb.order_id]["status"] == "exception" and len(orders[sb.order_id]["last_events"]) == 2
    assert (await SqlOrders(rt.db).get(str(sa.order_id))).order.stage.value == "awaiting_install"


async def test_crash_before_marking_applied_is_finished_by_the_retry(rt: Runtime,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (wb,) = await shipped_orders(rt, 1)
    evs = scans(wb, [TrackStatus.PICKED_UP, TrackStatus.IN_TRANSIT, TrackStatus.DELIVERED])
    deps = rt.tracking_deps()

    async def crash(self: SqlTracking, ids: Any) -> None:
        raise ConnectionError("killed before marking applied")

    with monkeypatch.context() as m:
        m.setattr(SqlTracking, "mark_applied", crash)
        with pytest.raises(ConnectionError):
            await apply_events(deps, "sf", evs[:2], T0)
    assert await count(rt.db, TrackingEventRow, TrackingEventRow.applied.is_(False)) == 2
    retry = await apply_events(deps, "sf", evs, T0)  # the redelivered batch, now with the delivery
    assert retry.stored == 1 and retry.applied == 3 and len(retry.moved) == 1
    assert await count(rt.db, TrackingEventRow, TrackingEventRow.applied.is_(False)) == 0
    again = await apply_events(deps, "sf", evs, T0)
    assert again.stored == 0 and again.applied == 0 and again.moved == []
    assert await count(rt.db, StageTransitionRow, StageTransitionRow.to_stage == "awaiting_install") == 1
