"""The morning digest: one outbox row per recipient per local day, with the figures that replace the 17 e-mails.

The row's dedup key `digest:<local date>:<user id>` is the whole idempotency story: the cron run, a catch-up after
a late start, a second scheduler or a leader hand-over may all try; each person still gets one digest a day.
Recipients are admins and supply chain (everything) and managers (their regions), if their chat is linked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

from engine.digest import (
    CHART_DAYS,
    CategoryCount,
    ChartData,
    DigestData,
    PendingApproval,
    TrendLine,
    compose_digest,
    day_bounds,
    is_due,
    local_day,
)
from engine.kpi import KpiInputs, compute_kpis
from engine.stages import BOARD, END_STATES
from handlers.chat_ports import ChatRepo, NewOutbox, UserInfo
from handlers.ports import Clock

log = logging.getLogger(__name__)
KIND = "digest"
KPI_DAYS = 30
TOP_APPROVALS = 5
DIGEST_ROLES = ("admin", "supply_chain", "manager")


@dataclass(frozen=True, slots=True)
class DigestFigures:
    """What storage counts for one digest (category ids, not names: names come from the current rules)."""

    kpi_inputs: KpiInputs
    intake_yesterday: int
    stalled_by_stage: Mapping[str, int]
    pending_total: int
    pending_oldest: Sequence[PendingApproval]
    anomaly_counts: Sequence[tuple[str | None, int]]
    trends: Sequence[Mapping[str, Any]]  # payloads of the trend alerts queued in the last 24 h, one per hit
    dead_letters: int


class DigestSource(Protocol):
    async def digest_figures(self, now: datetime, *, yesterday: tuple[datetime, datetime], kpi_since: datetime,
                             regions: Sequence[str], top: int) -> DigestFigures: ...


@dataclass(frozen=True, slots=True)
class ChartFigures:
    """What storage counts for the digest chart: open orders per stage, stalls per given day, notes per category."""

    open_by_stage: Mapping[str, int]
    stalls_per_day: Sequence[int]  # one per day asked for, oldest first
    anomaly_counts: Sequence[tuple[str | None, int]]


class ChartSource(Protocol):
    async def chart_figures(self, now: datetime, *, days: Sequence[tuple[datetime, datetime]],
                            regions: Sequence[str]) -> ChartFigures: ...


async def build_chart(source: ChartSource, now: datetime, timezone: str, names: Mapping[str, tuple[str, str]],
                      regions: Sequence[str] = ()) -> ChartData:
    """The chart's figures for the local day `now` falls on: the funnel now, the last CHART_DAYS days up to today."""
    day = local_day(now, timezone)
    days = [day - timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]
    f = await source.chart_figures(now, days=[day_bounds(d, timezone) for d in days], regions=tuple(regions))
    funnel = [(s.value, int(f.open_by_stage.get(s.value, 0))) for s in BOARD if s not in END_STATES]
    anomalies = [CategoryCount(*(names.get(c, (c, c)) if c else (None, None)), n) for c, n in f.anomaly_counts]
    return ChartData(day=day, funnel=funnel, stalls_per_day=list(zip(days, f.stalls_per_day, strict=True)),
                     anomalies_week=anomalies, regions=tuple(regions))


def digest_key(day: date, user_id: int) -> str:
    return f"digest:{day.isoformat()}:{user_id}"


async def build_digest(source: DigestSource, now: datetime, timezone: str,
                       names: Mapping[str, tuple[str, str]], regions: Sequence[str] = ()) -> DigestData:
    """The digest's figures as of `now` for the local day `now` falls on (`regions`: a manager's share)."""
    day = local_day(now, timezone)
    yesterday = day_bounds(day - timedelta(days=1), timezone)
    f = await source.digest_figures(now, yesterday=yesterday, kpi_since=now - timedelta(days=KPI_DAYS),
                                    regions=tuple(regions), top=TOP_APPROVALS)
    anomalies = [CategoryCount(*(names.get(c, (c, c)) if c else (None, None)), n) for c, n in f.anomaly_counts]
    trends = [TrendLine(str(p.get("category_zh", "")), str(p.get("category_en", "")), int(p.get("count", 0)),
                        str(p.get("per", "all")), p.get("group"), p.get("window_s")) for p in f.trends]
    return DigestData(day=day, now=now, kpis=compute_kpis(f.kpi_inputs), kpi_days=KPI_DAYS,
                      intake_yesterday=f.intake_yesterday, stalled_by_stage=f.stalled_by_stage,
                      pending_total=f.pending_total, pending_oldest=f.pending_oldest, anomalies=anomalies,
                      trends=trends, dead_letters=f.dead_letters, regions=tuple(regions))


@dataclass(slots=True)
class DigestJob:
    """Queues today's digests; `run` is safe to call any number of times, from any number of processes."""

    source: DigestSource
    repo: ChatRepo
    clock: Clock
    names: Callable[[], Mapping[str, tuple[str, str]]]  # category id → (zh, en), from the rules as they are now
    at: time = time(8, 30)
    timezone: str = "Asia/Shanghai"
    language: str = "zh"
    chart_source: ChartSource | None = None  # set: each digest row also carries the chart's figures
    runs: int = field(default=0)

    async def recipients(self) -> list[tuple[UserInfo, tuple[str, ...]]]:
        """Users with a linked chat, with the regions their digest covers (() = everything)."""
        users: dict[int, UserInfo] = {}
        for role in DIGEST_ROLES:
            users.update((u.id, u) for u in await self.repo.users_with_role(role, None))
        linked = {i.user_id for i in await self.repo.identities_of(list(users)) if i.chat_id}
        # A manager without a region sees the whole business, like a general manager.
        return [(u, u.regions if u.role == "manager" else ()) for uid, u in users.items() if uid in linked]

    async def run(self) -> list[int]:
        """Queue the digest of today (local) for every recipient who has not got it yet; return new outbox ids."""
        now = self.clock.now()
        day = local_day(now, self.timezone)
        todo = await self.recipients()
        done = await self.repo.existing_keys([digest_key(day, u.id) for u, _ in todo])
        todo = [(u, r) for u, r in todo if digest_key(day, u.id) not in done]
        payloads: dict[tuple[str, ...], dict[str, Any]] = {}
        rows = []
        for user, regions in todo:
            if regions not in payloads:  # admins and supply chain share one text; each region set one more
                data = await build_digest(self.source, now, self.timezone, self.names(), regions)
                payloads[regions] = {"text": compose_digest(data, self.language), "day": day.isoformat()}
                chart = await self._chart(now, regions)
                if chart is not None:
                    payloads[regions]["chart"] = chart.as_payload()
            rows.append(NewOutbox(digest_key(day, user.id), KIND, now, payloads[regions], recipient_user_id=user.id))
        self.runs += 1
        return await self.repo.enqueue(rows, now) if rows else []

    async def _chart(self, now: datetime, regions: tuple[str, ...]) -> ChartData | None:
        """The chart's figures, or None: a failing chart query must not cost anyone their text digest."""
        if self.chart_source is None:
            return None
        try:
            return await build_chart(self.chart_source, now, self.timezone, self.names(), regions)
        except Exception:
            log.exception("digest chart figures failed; the digest goes out as text only")
            return None

    async def catch_up(self) -> list[int]:
        """On taking the lead: if today's digest time has passed, make sure today's digests are queued."""
        if not is_due(self.clock.now(), self.at, self.timezone):
            return []
        return await self.run()
