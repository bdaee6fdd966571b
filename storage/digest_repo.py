"""The morning digest's figures: a handful of aggregate queries (implements `handlers.digest.DigestSource`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.digest import PendingApproval
from engine.stages import END_STATES, Stage
from handlers.digest import ChartFigures, DigestFigures
from storage.models import ApprovalRow, DeadLetterRow, ExceptionNoteRow, OrderRow, OutboxRow
from storage.reports_repo import SqlReports

ORDERS, APPROVALS, NOTES, OUTBOX, DEAD = (OrderRow.__table__, ApprovalRow.__table__, ExceptionNoteRow.__table__,
                                         OutboxRow.__table__, DeadLetterRow.__table__)
_OPEN = [s.value for s in Stage if s not in END_STATES]
ANOMALY_WINDOW = timedelta(hours=24)


class SqlDigestSource:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def digest_figures(self, now: datetime, *, yesterday: tuple[datetime, datetime], kpi_since: datetime,
                             regions: Sequence[str], top: int) -> DigestFigures:
        mine: list[Any] = [ORDERS.c.region.in_(list(regions))] if regions else []
        since = now - ANOMALY_WINDOW
        async with self.engine.connect() as conn:
            intake = (await conn.execute(select(func.count()).select_from(ORDERS).where(
                ORDERS.c.received_at >= yesterday[0], ORDERS.c.received_at < yesterday[1], *mine))).scalar_one()
            stalled = (await conn.execute(select(ORDERS.c.stage, func.count()).where(
                ORDERS.c.stage.in_(_OPEN), ORDERS.c.stage_deadline.is_not(None), ORDERS.c.stage_deadline < now,
                *mine).group_by(ORDERS.c.stage))).all()
            pending_q = select(APPROVALS.c.requested_at, APPROVALS.c.required_role, APPROVALS.c.region,
                               APPROVALS.c.amount, ORDERS.c.channel, ORDERS.c.external_id, ORDERS.c.customer_city,
                               ORDERS.c.currency).join(ORDERS, ORDERS.c.id == APPROVALS.c.order_id).where(
                APPROVALS.c.status == "pending", *mine)
            pending_total = (await conn.execute(select(func.count()).select_from(pending_q.subquery()))).scalar_one()
            oldest = (await conn.execute(pending_q.order_by(APPROVALS.c.requested_at, APPROVALS.c.id)
                                         .limit(top))).all()
            anomalies = (await conn.execute(select(NOTES.c.category, func.count().label("n")).join(
                ORDERS, ORDERS.c.id == NOTES.c.order_id).where(NOTES.c.kind == "exception", NOTES.c.at >= since,
                                                                *mine)
                .group_by(NOTES.c.category).order_by(func.count().desc(), NOTES.c.category))).all()
            alerts = (await conn.execute(select(OUTBOX.c.payload).where(
                OUTBOX.c.kind == "trend_alert", OUTBOX.c.created_at >= since).order_by(OUTBOX.c.id))).all()
            dead = (await conn.execute(select(func.count()).select_from(DEAD).where(
                DEAD.c.replayed_at.is_(None)))).scalar_one()
        trends: dict[str, dict[str, Any]] = {}
        for (payload,) in alerts:  # one row per recipient: one line per hit
            trends.setdefault(str(payload.get("hit")), payload)
        return DigestFigures(
            kpi_inputs=await SqlReports(self.engine).kpi_inputs(kpi_since, now, regions),
            intake_yesterday=intake,
            stalled_by_stage={r.stage: r[1] for r in stalled},
            pending_total=pending_total,
            pending_oldest=[PendingApproval(f"{r.channel}:{r.external_id}", r.amount, r.customer_city or "",
                                            r.requested_at, r.required_role, r.region, r.currency) for r in oldest],
            anomaly_counts=[(r.category, r.n) for r in anomalies],
            trends=list(trends.values()),
            dead_letters=dead,
        )

    async def chart_figures(self, now: datetime, *, days: Sequence[tuple[datetime, datetime]],
                            regions: Sequence[str]) -> ChartFigures:
        """Open orders per stage, first stall alerts per local day in `days`, exception notes per category since
        the first day's start (the digest chart's three panels)."""
        mine: list[Any] = [ORDERS.c.region.in_(list(regions))] if regions else []
        since, until = days[0][0], days[-1][1]
        async with self.engine.connect() as conn:
            funnel = (await conn.execute(select(ORDERS.c.stage, func.count()).where(
                ORDERS.c.stage.in_(_OPEN), *mine).group_by(ORDERS.c.stage))).all()
            stalls = (await conn.execute(select(OUTBOX.c.created_at, OUTBOX.c.payload).where(
                OUTBOX.c.kind == "stall_alert", OUTBOX.c.created_at >= since, OUTBOX.c.created_at < until))).all()
            stalls = [(at, p) for at, p in stalls if int(p.get("level", 0)) == 0 and str(p.get("order_id")).isdigit()]
            if regions:  # a manager's chart: only stalls of their regions' orders
                ids = sorted({int(p["order_id"]) for _, p in stalls})
                theirs: set[int] = set()
                for i in range(0, len(ids), 1000):
                    theirs.update((await conn.execute(select(ORDERS.c.id).where(
                        ORDERS.c.id.in_(ids[i:i + 1000]), *mine))).scalars())
                stalls = [(at, p) for at, p in stalls if int(p["order_id"]) in theirs]
            notes = (await conn.execute(select(NOTES.c.category, func.count().label("n")).join(
                ORDERS, ORDERS.c.id == NOTES.c.order_id).where(NOTES.c.kind == "exception", NOTES.c.at >= since,
                                                                *mine)
                .group_by(NOTES.c.category).order_by(func.count().desc(), NOTES.c.category))).all()
        per_day = [0] * len(days)
        seen: set[tuple[str, str]] = set()
        for created_at, payload in stalls:  # one row per recipient: count an order's first alert once
            at = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
            for i, (start, end) in enumerate(days):
                key = (str(payload.get("order_id")), str(payload.get("stage")))
                if start <= at < end and key not in seen:
                    seen.add(key)
                    per_day[i] += 1
        return ChartFigures(open_by_stage={r.stage: r[1] for r in funnel}, stalls_per_day=per_day,
                            anomaly_counts=[(r.category, r.n) for r in notes])
