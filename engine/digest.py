"""The morning digest as text: the figures in, one chat message out (Chinese by default).

It replaces the 17 morning e-mails, so it must arrive whole: when the lists are too long for one message the
longest list is cut first and every cut says how many lines it hides ("…and 37 more"); nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from engine.display import order_words_from_key
from engine.kpi import Kpis
from engine.stages import BOARD, label
from engine.text import TEXT_BUDGET, fmt_duration, fmt_money, role_name, shorten, t

LINE_MAX = 200  # one list line; a longer one (a long city or order id list) is shortened with "…"


@dataclass(frozen=True, slots=True)
class PendingApproval:
    order_ref: str
    amount: Decimal
    city: str
    requested_at: datetime
    role: str
    region: str | None
    currency: str = "CNY"


@dataclass(frozen=True, slots=True)
class TrendLine:
    category_zh: str
    category_en: str
    count: int
    per: str = "all"
    group: str | None = None
    window_s: int | None = None  # None: "in a row"


@dataclass(frozen=True, slots=True)
class CategoryCount:
    category_zh: str | None  # None: notes no category matched
    category_en: str | None
    count: int


@dataclass(frozen=True, slots=True)
class DigestData:
    day: date  # the local date the digest is for
    now: datetime
    kpis: Kpis
    kpi_days: int
    intake_yesterday: int
    stalled_by_stage: Mapping[str, int]
    pending_total: int
    pending_oldest: Sequence[PendingApproval]  # oldest first; may be fewer than pending_total
    anomalies: Sequence[CategoryCount]  # the last 24 h, most frequent first
    trends: Sequence[TrendLine]  # trends that fired in the last 24 h
    dead_letters: int
    regions: tuple[str, ...] = field(default=())  # a manager's digest: only these regions' orders


def parse_at(value: str) -> time:
    """"08:30" → 08:30; the settings validate with this, so a typo fails at start-up, not at 08:30."""
    hh, sep, mm = value.strip().partition(":")
    if not (sep and hh.isdigit() and mm.isdigit() and 0 <= int(hh) < 24 and 0 <= int(mm) < 60):
        raise ValueError(f"expected a local time HH:MM such as 08:30, got {value!r}")
    return time(int(hh), int(mm))


def local_day(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def day_bounds(day: date, timezone: str) -> tuple[datetime, datetime]:
    """[00:00, next 00:00) of a local day, as aware datetimes (compare fine with UTC ones)."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(0), zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), zone)


def is_due(now: datetime, at: time, timezone: str) -> bool:
    """Today's digest time has passed (local): a leader starting later still sends today's digest."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.time().replace(tzinfo=None) >= at


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.1%}"


def trend_phrase(count: int, window_s: int | None, per: str, group: str | None, language: str) -> str:
    """"连续 5 条 · 基地 HZ" / "8 within 1d · carrier SF": shared by the alert and the digest."""
    what = (t("trend.run", language, n=count) if window_s is None
            else t("trend.window", language, n=count, window=fmt_duration(timedelta(seconds=window_s), language)))
    if per in ("base", "carrier") and group:
        what += " · " + t(f"trend.scope_{per}", language, group=group)
    return what


def _refund_line(k: Kpis, lang: str) -> list[str]:
    """Refund handling time, only when a refund was decided in the window (no line for "nothing to measure")."""
    r = k.refunds
    if not r.decided or r.p50_minutes is None:
        return []
    if lang == "en":
        return [f"· Refund handling: p50 {r.p50_minutes:.0f} min, p90 {r.p90_minutes:.0f} min, "
                f"{_pct(r.automatic_share)} automatic ({r.decided})"]
    return [f"· 退款处理时长：p50 {r.p50_minutes:.0f} 分钟，p90 {r.p90_minutes:.0f} 分钟，自动处理 {_pct(r.automatic_share)}"
            f"（{r.decided} 笔）"]


def _sections(d: DigestData, lang: str) -> list[tuple[list[str], list[str], int]]:
    """(fixed lines, list lines, hidden beyond the list) per section, in message order."""
    k = d.kpis
    cycle = "—" if k.average_cycle_days is None else t("digest.cycle_days", lang, d=f"{k.average_cycle_days:.1f}")
    scope = t("digest.scope", lang, regions="、".join(d.regions)) if d.regions else ""
    head = [t("digest.title", lang, date=d.day.isoformat(), scope=scope), t("digest.kpis", lang, days=d.kpi_days),
            "· " + t("digest.accuracy", lang, v=_pct(k.order_accuracy)), "· " + t("digest.cycle", lang, v=cycle),
            "· " + t("digest.manual", lang, v=_pct(k.manual_intervention_rate)),
            "· " + t("digest.availability", lang, v=_pct(k.availability)),
            *_refund_line(k, lang),
            t("digest.intake", lang, n=d.intake_yesterday)]
    stages = [s.value for s in BOARD if d.stalled_by_stage.get(s.value)]
    stages += [s for s in d.stalled_by_stage if s not in stages and d.stalled_by_stage[s]]
    stalled = [f"· {label(s, lang) if s in {b.value for b in BOARD} else s}：{d.stalled_by_stage[s]}"
               for s in stages]
    approvals = [
        "· " + t("digest.approval_line", lang, order=order_words_from_key(a.order_ref, lang),
                 amount=fmt_money(a.amount, a.currency),
                 city=a.city or "—", waited=fmt_duration(d.now - a.requested_at, lang),
                 who=role_name(a.role, lang) + (f" {a.region}" if a.region else ""))
        for a in d.pending_oldest
    ]
    anomalies = [
        f"· {(c.category_en if lang == 'en' else c.category_zh) or t('digest.uncategorised', lang)}：{c.count}"
        for c in d.anomalies
    ]
    trends = [
        t("digest.trend_line", lang, category=tr.category_en if lang == "en" else tr.category_zh,
          what=trend_phrase(tr.count, tr.window_s, tr.per, tr.group, lang))
        for tr in d.trends
    ]
    return [
        (head, [], 0),
        ([t("digest.stalled", lang, n=sum(d.stalled_by_stage.values()))], stalled, 0),
        ([t("digest.approvals", lang, n=d.pending_total)], approvals, max(d.pending_total - len(approvals), 0)),
        ([t("digest.anomalies", lang, n=sum(c.count for c in d.anomalies))], anomalies + trends, 0),
        ([t("digest.dead", lang, n=d.dead_letters)], [], 0),
    ]


def compose_digest(data: DigestData, language: str = "zh", limit: int = TEXT_BUDGET) -> str:
    """The digest in at most `limit` characters; lists are cut longest-first, each cut announced with a count."""
    sections = [(fixed, [shorten(line, LINE_MAX) for line in items], hidden)
                for fixed, items, hidden in _sections(data, language)]
    shown = [len(items) for _, items, _ in sections]

    def render() -> str:
        lines: list[str] = []
        for (fixed, items, hidden), n in zip(sections, shown, strict=True):
            lines += fixed + items[:n]
            more = hidden + len(items) - n
            if more:
                lines.append(t("items.more_plain", language, n=more))
        return "\n".join(lines)

    text = render()
    while len(text) > limit and any(shown):
        longest = max(range(len(shown)), key=lambda i: shown[i])
        excess = len(text) - limit
        # drop about as many lines as the excess needs (at least one), then measure again
        avg = max(sum(map(len, sections[longest][1][:shown[longest]])) // max(shown[longest], 1), 1)
        shown[longest] = max(shown[longest] - max(excess // (avg + 1), 1), 0)
        text = render()
    return shorten(text, limit)  # only the fixed lines are left: cannot happen at sane limits


CHART_DAYS = 7  # stalls per day and anomaly categories cover the last week


@dataclass(frozen=True, slots=True)
class ChartData:
    """The figures the digest chart draws (pure data: `bot/adapters/digest_chart.py` renders it, the outbox stores
    it)."""

    day: date
    funnel: Sequence[tuple[str, int]]  # (stage value, open orders in it), board order
    stalls_per_day: Sequence[tuple[date, int]]  # oldest first, CHART_DAYS entries (0 included)
    anomalies_week: Sequence[CategoryCount]  # most frequent first
    regions: tuple[str, ...] = ()

    def as_payload(self) -> dict[str, object]:
        """JSON-safe (for the outbox row); `chart_from_payload` reads it back."""
        return {"day": self.day.isoformat(), "funnel": [[s, n] for s, n in self.funnel],
                "stalls": [[d.isoformat(), n] for d, n in self.stalls_per_day],
                "anomalies": [[c.category_zh, c.category_en, c.count] for c in self.anomalies_week],
                "regions": list(self.regions)}


def chart_from_payload(p: Mapping[str, object]) -> ChartData:
    """The inverse of `ChartData.as_payload`; a malformed payload raises ValueError/TypeError/KeyError."""
    def rows(key: str) -> list[list[object]]:
        value = p[key]
        if not isinstance(value, list):
            raise TypeError(f"chart payload {key!r} is not a list")
        return value

    return ChartData(day=date.fromisoformat(str(p["day"])),
                     funnel=[(str(s), int(n)) for s, n in rows("funnel")],  # type: ignore[call-overload]
                     stalls_per_day=[(date.fromisoformat(str(d)), int(n))  # type: ignore[call-overload]
                                     for d, n in rows("stalls")],
                     anomalies_week=[CategoryCount(None if zh is None else str(zh), None if en is None else str(en),
                                                   int(n)) for zh, en, n in rows("anomalies")],  # type: ignore[call-overload]
                     regions=tuple(str(r) for r in p.get("regions") or ()))  # type: ignore[union-attr]


def chart_summary(c: ChartData, language: str = "zh") -> str:
    """The chart's numbers as text (the photo's caption, and what a platform without photos gets)."""
    sep = "、" if language != "en" else ", "
    funnel = sep.join(f"{label(s, language) if s in {b.value for b in BOARD} else s} {n}" for s, n in c.funnel)
    stalls = sep.join(f"{d.strftime('%m-%d')} {n}" for d, n in c.stalls_per_day)
    anomalies = sep.join(f"{(x.category_en if language == 'en' else x.category_zh) or t('digest.uncategorised', language)}"
                         f" {x.count}" for x in c.anomalies_week) or "—"
    colon = ": " if language == "en" else "："
    return "\n".join([t("chart.title", language, date=c.day.isoformat()),
                      t("chart.funnel", language) + colon + (funnel or "—"),
                      t("chart.stalls", language) + colon + (stalls or "—"),
                      t("chart.anomalies", language) + colon + anomalies])
