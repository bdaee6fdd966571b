"""The availability KPI counts whole minutes the same way for beats and window: never over 100 % (issue 11 saw
"100.0 % · 5/4 minutes")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from engine.kpi import compute_kpis
from storage.reports_repo import SqlReports


async def test_availability_window_and_beats_count_the_same_minutes(db: AsyncEngine) -> None:
    reports = SqlReports(db)
    t0 = datetime(2030, 1, 1, 12, 0, 40, tzinfo=UTC)
    for k in range(0, 9):  # a beat every 30 s from 12:00:40 to 12:04:40
        await reports.heartbeat("api", t0 + timedelta(seconds=30 * k))
    until = datetime(2030, 1, 1, 12, 4, 50, tzinfo=UTC)
    inputs = await reports.kpi_inputs(until - timedelta(days=30), until)
    assert (inputs.heartbeat_minutes, inputs.window_minutes) == (4, 4)  # 12:00-12:03 complete; 12:04 in progress
    assert compute_kpis(inputs).availability == 1.0

    later = datetime(2030, 1, 1, 12, 10, 5, tzinfo=UTC)  # down since 12:05
    inputs = await reports.kpi_inputs(later - timedelta(days=30), later)
    assert (inputs.heartbeat_minutes, inputs.window_minutes) == (5, 10)
