"""Business time: add working hours to an instant, skipping nights, rest days and holidays (pure, no clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_MAX_DAYS = 3660  # a limit that cannot be met within ten years is a configuration error, not a loop


def _hm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 3600 + int(m) * 60


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    tz: ZoneInfo
    spans: tuple[tuple[int, int], ...]  # seconds since local midnight, sorted, non-overlapping
    workdays: frozenset[int]
    holidays: frozenset[date]
    extra_workdays: frozenset[date]

    @classmethod
    def build(
        cls, timezone: str, hours: list[str], workdays: list[str], holidays: list[date], extra_workdays: list[date]
    ) -> BusinessCalendar:
        """Raise ValueError with a plain message for overlapping or empty spans."""
        spans = []
        for h in hours:
            a, b = h.split("-")
            s, e = _hm(a), _hm(b)
            if not (0 <= s < e <= 86400):
                raise ValueError(f"working hours {h!r}: the end must be after the start, within one day")
            spans.append((s, e))
        spans.sort()
        for (_, e1), (s2, _) in zip(spans, spans[1:]):
            if s2 < e1:
                raise ValueError("working hours overlap")
        return cls(
            ZoneInfo(timezone),
            tuple(spans),
            frozenset(_WEEKDAYS[d] for d in workdays),
            frozenset(holidays),
            frozenset(extra_workdays),
        )

    def is_workday(self, d: date) -> bool:
        if d in self.extra_workdays:
            return True
        return d.weekday() in self.workdays and d not in self.holidays

    def _at(self, d: date, secs: float) -> datetime:
        base = datetime.combine(d, time(0), self.tz)
        return (base + timedelta(seconds=secs)).astimezone(UTC)

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The instant when `amount` of working time has elapsed after `start` (aware UTC).

        Work that ends exactly at a span's end is due then (18:00), not at the next opening.
        """
        local = start.astimezone(self.tz)
        remaining = amount.total_seconds()
        d = local.date()
        now_s = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        for _ in range(_MAX_DAYS):
            if self.is_workday(d):
                for s, e in self.spans:
                    begin = max(s, now_s)
                    if begin >= e:
                        continue
                    avail = e - begin
                    if remaining <= avail:
                        return self._at(d, begin + remaining)
                    remaining -= avail
            d += timedelta(days=1)
            now_s = 0
        raise ValueError("no working time found within ten years: check the calendar")

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two instants (zero if end <= start)."""
        if end <= start:
            return timedelta(0)
        a = start.astimezone(self.tz)
        b = end.astimezone(self.tz)
        total = 0.0
        d = a.date()
        for _ in range(_MAX_DAYS):
            if d > b.date():
                break
            if self.is_workday(d):
                lo = (a.hour * 3600 + a.minute * 60 + a.second) if d == a.date() else 0
                hi = (b.hour * 3600 + b.minute * 60 + b.second) if d == b.date() else 86400
                for s, e in self.spans:
                    total += max(0, min(e, hi) - max(s, lo))
            d += timedelta(days=1)
        return timedelta(seconds=total)


def wall_clock_add(start: datetime, amount: timedelta) -> datetime:
    return (start + amount).astimezone(UTC)
