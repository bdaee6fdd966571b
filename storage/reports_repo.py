"""Aggregations for the API and the terminal report: approvals listing, KPI inputs, heartbeats."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.kpi import KpiInputs
from engine.refunds import RefundTiming
from storage.models import ApprovalRow, ExceptionNoteRow, HeartbeatRow, OrderRow, RefundRow

REFUNDS = RefundRow.__table__

ORDERS, APPROVALS, NOTES, BEATS = (OrderRow.__table__, ApprovalRow.__table__, ExceptionNoteRow.__table__,
                                   HeartbeatRow.__table__)


class SqlReports:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def approvals(self, status: str, limit: int) -> list[dict[str, Any]]:
        stmt = (
            select(APPROVALS, ORDERS.c.channel, ORDERS.c.external_id, ORDERS.c.customer_city)
            .join(ORDERS, ORDERS.c.id == APPROVALS.c.order_id)
            .where(APPROVALS.c.status == status)
            .order_by(APPROVALS.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            {"id": r.id, "order_id": r.order_id, "order_key": f"{r.channel}:{r.external_id}", "kind": r.kind,
             "level": r.level, "required_role": r.required_role, "region": r.region, "amount": f"{r.amount:.2f}",
             "city": r.customer_city, "status": r.status, "requested_at": r.requested_at,
             "escalate_at": r.escalate_at, "decided_by": r.decided_by, "decided_at": r.decided_at,
             "reason": r.reason, "rule_id": r.rule_id}
            for r in rows
        ]

    async def kpi_inputs(self, since: datetime, until: datetime, regions: Sequence[str] = ()) -> KpiInputs:
        """`regions`: only those regions' orders (a manager's digest); availability is the service's, always."""
        created = and_(ORDERS.c.created_at >= since, ORDERS.c.created_at < until)
        done = and_(ORDERS.c.stage == "completed", ORDERS.c.completed_at >= since, ORDERS.c.completed_at < until)
        if regions:
            mine = ORDERS.c.region.in_(list(regions))
            created, done = and_(created, mine), and_(done, mine)
        troubled = or_(exists().where(NOTES.c.order_id == ORDERS.c.id),  # exception, refund or complaint notes
                       exists().where(REFUNDS.c.order_id == ORDERS.c.id,  # a refund (a refused request is none)
                                      REFUNDS.c.state != "rejected"))
        async with self.engine.connect() as conn:
            orders, manual = (await conn.execute(select(
                func.count(), func.count().filter(ORDERS.c.manual_intervention.is_(True))).where(created))).one()
            rows = (await conn.execute(select(ORDERS.c.created_at, ORDERS.c.completed_at, troubled.label("troubled"))
                                       .where(done))).all()
            first_beat = (await conn.execute(select(func.min(BEATS.c.minute)))).scalar_one()
            # Availability counts whole minutes, the way beats are stored (one row per minute, floored): from the
            # first heartbeat ever (minutes before installation are not downtime) to the start of the current
            # minute (still in progress, its beat may be due). Beats and window count the same slots: ≤ 100 %.
            end = _minute(until)
            start = max(_minute(since), first_beat) if first_beat else end
            beats = (await conn.execute(select(func.count(func.distinct(BEATS.c.minute))).where(
                BEATS.c.minute >= start, BEATS.c.minute < end))).scalar_one() if start < end else 0
        cycle = sum((r.completed_at - r.created_at).total_seconds() / 86400 for r in rows)
        window = max(int((end - start).total_seconds() // 60), 0)
        asked = and_(REFUNDS.c.requested_at >= since, REFUNDS.c.requested_at < until)
        if regions:
            asked = and_(asked, REFUNDS.c.order_id.in_(select(ORDERS.c.id).where(ORDERS.c.region.in_(list(regions)))))
        async with self.engine.connect() as conn:
            refunds = (await conn.execute(select(REFUNDS.c.requested_at, REFUNDS.c.decided_at, REFUNDS.c.automatic)
                                          .where(asked))).all()
        return KpiInputs(orders=orders, manual_orders=manual, completed=len(rows),
                         completed_clean=sum(1 for r in rows if not r.troubled), cycle_days_sum=cycle,
                         window_minutes=window, heartbeat_minutes=beats,
                         refunds=tuple(RefundTiming(r.requested_at, r.decided_at, bool(r.automatic))
                                       for r in refunds))

    async def heartbeat(self, component: str, now: datetime) -> None:
        minute = now.replace(second=0, microsecond=0)
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        async with self.engine.begin() as conn:
            await conn.execute(insert(BEATS).values(component=component, minute=minute)
                               .on_conflict_do_nothing(index_elements=["component", "minute"]))


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)
