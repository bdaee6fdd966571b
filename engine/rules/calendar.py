"""Business time: add working hours to an instant, skipping nights, rest days and holidays (pure, no clock)."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_MAX_DAYS = 3660  # a limit that cannot be met within ten years is a configuration error, not a loop


def _hm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 3600 + int(m) * 60


@dataclass(frozen=True, slots=True)
class OfficialHolidays:
    """A country's official public holidays and make-up working days (调休), loaded at the edge (the engine reads
    no package data itself) and merged into every calendar that asks for them (`official: china`)."""

    holidays: frozenset[date]
    workdays: frozenset[date]  # make-up working days that fall on a rest day
    source: str  # where the data came from, for messages: e.g. "chinesecalendar 1.11.0"

    @property
    def last_year(self) -> int | None:
        return max((d.year for d in self.holidays), default=None)


def merge_holidays(own: list[date], own_workdays: list[date],
                   official: OfficialHolidays | None) -> tuple[frozenset[date], frozenset[date]]:
    """(holidays, extra working days): the official lists with the rules' own on top — the rules' file wins where
    they disagree (a holiday the merchant works, or a day off the merchant adds)."""
    holidays, workdays = set(own), set(own_workdays)
    if official is not None:
        holidays |= official.holidays - workdays
        workdays |= official.workdays - holidays
    return frozenset(holidays), frozenset(workdays)


def coverage_year(own: list[date], official: OfficialHolidays | None) -> int | None:
    """The last year the holiday data of a calendar covers (None: it keeps no holidays at all)."""
    years = [d.year for d in own]
    if official is not None and official.last_year is not None:
        years.append(official.last_year)
    return max(years, default=None)


def coverage_gap(last_year: int | None, today: date) -> bool:
    """True when today is past the last year the holiday data covers (its deadlines ignore this year's holidays)."""
    return last_year is not None and today.year > last_year


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    tz: ZoneInfo
    spans: tuple[tuple[int, int], ...]  # seconds since local midnight, sorted, non-overlapping
    workdays: frozenset[int]
    holidays: frozenset[date]
    extra_workdays: frozenset[date]
    _memo: dict[str, _Table] = field(default_factory=dict, compare=False, hash=False, repr=False)

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
        for (_, e1), (s2, _) in pairwise(spans):
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
        """Local date + seconds after midnight (wall clock) as aware UTC."""
        offset = self._table().fixed_offset
        if offset is not None:  # zones without DST (Asia/Shanghai): plain arithmetic, no tz lookup
            return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(seconds=secs) - offset
        base = datetime.combine(d, time(0), self.tz)
        return (base + timedelta(seconds=secs)).astimezone(UTC)

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The instant when `amount` of working time has elapsed after `start` (aware UTC).

        Work that ends exactly at a span's end is due then (18:00), not at the next opening. O(log days) through a
        table of cumulative working seconds per day, because evaluation computes several deadlines per order.
        """
        return self.add_many(start, (amount,))[0]

    def add_many(self, start: datetime, amounts: tuple[timedelta, ...] | list[timedelta]) -> list[datetime]:
        """`add` for several amounts from one start (deadline, warning, escalation rungs) in one pass."""
        table = self._table()
        local = start.astimezone(self.tz)
        i = local.toordinal() - table.first
        cum = table.cum
        last = len(cum) - 1
        base = cum[i] + self._worked_before(local) if 0 <= i < last else None
        out = []
        for amount in amounts:
            secs = amount.total_seconds()
            if secs <= 0:
                out.append(start.astimezone(UTC))
                continue
            if base is None:
                out.append(self._add_slow(local, secs))
                continue
            target = base + secs
            j = bisect_left(cum, target) - 1
            if j >= last:
                out.append(self._add_slow(local, secs))
                continue
            r = target - cum[j]
            d = date.fromordinal(table.first + j)
            for s, e in self.spans:
                if r <= e - s:
                    out.append(self._at(d, s + r))
                    break
                r -= e - s
            else:  # pragma: no cover - float rounding at the very end of a day
                out.append(self._at(d, self.spans[-1][1]))
        return out

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two instants (zero if end <= start)."""
        if end <= start:
            return timedelta(0)
        return timedelta(seconds=self._position(end) - self._position(start))

    def _position(self, t: datetime) -> float:
        """Working seconds from the table's first day to `t`."""
        table = self._table()
        local = t.astimezone(self.tz)
        i = local.toordinal() - table.first
        if not 0 <= i < len(table.cum) - 1:
            raise ValueError(f"{t.isoformat()} is outside the calendar's range {_FIRST_YEAR}-{_LAST_YEAR}")
        return table.cum[i] + self._worked_before(local)

    def _worked_before(self, local: datetime) -> float:
        """Working seconds on local's day before local's time of day."""
        if not self.is_workday(local.date()):
            return 0.0
        now_s = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        return float(sum(max(0.0, min(e, now_s) - s) for s, e in self.spans))

    def warm(self) -> None:
        self._table()

    def _table(self) -> _Table:
        t = self._memo.get("table")
        if t is None:
            first = date(_FIRST_YEAR, 1, 1).toordinal()
            last = date(_LAST_YEAR, 1, 1).toordinal()
            per_day = sum(e - s for s, e in self.spans)
            cum = [0]
            acc = 0
            for o in range(first, last):
                if self.is_workday(date.fromordinal(o)):
                    acc += per_day
                cum.append(acc)
            t = self._memo["table"] = _Table(first, cum, self._fixed_offset(first, last))
        return t

    def _fixed_offset(self, first: int, last: int) -> timedelta | None:
        """The UTC offset if it is the same on the 1st and 15th of every month in range (any DST period is longer)."""
        offsets = set()
        for o in range(first, last, 15):
            offsets.add(datetime.combine(date.fromordinal(o), time(12), self.tz).utcoffset())
            if len(offsets) > 1:
                return None
        return offsets.pop() if offsets else None

    def _add_slow(self, local: datetime, remaining: float) -> datetime:
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


@dataclass(frozen=True, slots=True)
class _Table:
    first: int  # ordinal of the first day
    cum: list[int]  # cum[i] = working seconds before day first + i
    fixed_offset: timedelta | None  # the zone's UTC offset if it never changes within the table's range


_FIRST_YEAR, _LAST_YEAR = 2000, 2100


def wall_clock_add_many(start: datetime, amounts: tuple[timedelta, ...] | list[timedelta]) -> list[datetime]:
    s = start.astimezone(UTC)
    return [s + a for a in amounts]
