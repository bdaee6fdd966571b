"""Business time: working hours, rest days, holidays and make-up days (调休), in Asia/Shanghai."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.rules.calendar import BusinessCalendar, OfficialHolidays, coverage_gap, merge_holidays
from tests.engine.rules_support import EXAMPLE

SH = ZoneInfo("Asia/Shanghai")
CAL = EXAMPLE.calendar  # 09:00-18:00 Mon-Sat with the 2025/2026 holidays of the example


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        # an ordinary week: Wed 10:00 + 48 h of 9-hour days -> next Tue 13:00
        (sh(2025, 11, 12, 10, 0), 48, sh(2025, 11, 18, 13, 0)),
        # Saturday 17:30 before National Day: 30 min on Sat, the make-up Sunday 28th works, Oct 1-8 off
        (sh(2025, 9, 27, 17, 30), 48, sh(2025, 10, 11, 11, 30)),
        # Saturday 17:30 before the Spring Festival holidays (Feb 15-23 2026): resumes Tue 24th
        (sh(2026, 2, 14, 17, 30), 48, sh(2026, 3, 2, 11, 30)),
        # entering at night counts from the next opening
        (sh(2025, 11, 12, 20, 0), 1, sh(2025, 11, 13, 10, 0)),
        # entering on Sunday counts from Monday
        (sh(2025, 11, 16, 12, 0), 1, sh(2025, 11, 17, 10, 0)),
        # work ending exactly at closing time is due at closing, not next morning
        (sh(2025, 11, 12, 17, 0), 1, sh(2025, 11, 12, 18, 0)),
        (sh(2025, 11, 12, 7, 0), 9, sh(2025, 11, 12, 18, 0)),
        # Saturday is a working day in this business
        (sh(2025, 11, 15, 9, 0), 9, sh(2025, 11, 15, 18, 0)),
        # New Year's Day 2026 (Thu) to Jan 3 are holidays; Sunday Jan 4 is a make-up working day
        (sh(2025, 12, 31, 17, 0), 2, sh(2026, 1, 4, 10, 0)),
        (sh(2025, 11, 12, 10, 0), 0, sh(2025, 11, 12, 10, 0)),
    ],
)
def test_business_deadlines(start: datetime, hours: int, due: datetime) -> None:
    got = CAL.add(start, timedelta(hours=hours))
    assert got == due
    assert got.tzinfo is UTC


LUNCH = BusinessCalendar.build("Asia/Shanghai", ["13:00-18:00", "09:00-12:00"], ["mon", "tue", "wed", "thu", "fri"], [], [])


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        (sh(2025, 11, 12, 11, 0), 120, sh(2025, 11, 12, 14, 0)),  # skips the lunch hour
        (sh(2025, 11, 12, 12, 30), 30, sh(2025, 11, 12, 13, 30)),  # starts in the lunch hour
        (sh(2025, 11, 14, 17, 0), 120, sh(2025, 11, 17, 10, 0)),  # Friday -> Monday, no Saturday here
        (sh(2025, 11, 12, 9, 0), 180, sh(2025, 11, 12, 12, 0)),  # exactly the morning span
    ],
)
def test_split_working_hours(start: datetime, minutes: int, due: datetime) -> None:
    assert LUNCH.add(start, timedelta(minutes=minutes)) == due


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (sh(2025, 11, 12, 10, 0), sh(2025, 11, 18, 13, 0), 48),
        (sh(2025, 11, 16, 10, 0), sh(2025, 11, 16, 17, 0), 0),  # all on a Sunday
        (sh(2025, 11, 12, 19, 0), sh(2025, 11, 12, 8, 0), 0),  # end before start
        (sh(2025, 9, 30, 9, 0), sh(2025, 10, 9, 9, 0), 9),  # across the holiday week
    ],
)
def test_elapsed_working_time(start: datetime, end: datetime, hours: int) -> None:
    assert CAL.elapsed(start, end) == timedelta(hours=hours)


def test_fast_path_matches_day_by_day_walk() -> None:
    """The O(log n) table lookup gives exactly what walking day by day gives, and elapsed inverts add."""
    rng = random.Random(42)
    for cal in (CAL, LUNCH):
        for _ in range(2000):
            start = datetime(2025, 9, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 60 * 24 * 200))
            amount = timedelta(minutes=rng.randint(1, 60 * 200))
            fast = cal.add(start, amount)
            assert fast == cal._add_slow(start.astimezone(cal.tz), amount.total_seconds())
            assert cal.elapsed(start, fast) == amount


def test_add_many_is_add_for_each_amount() -> None:
    start = sh(2025, 9, 27, 17, 30)
    amounts = [timedelta(hours=h) for h in (1, 4, 48, 52)]
    assert CAL.add_many(start, amounts) == [CAL.add(start, a) for a in amounts]


def test_dates_outside_the_table_still_work() -> None:
    assert CAL.add(sh(2150, 1, 1, 10, 0), timedelta(hours=1)) == sh(2150, 1, 1, 11, 0)  # a Thursday, past the precomputed table


def test_calendar_without_working_time_is_an_error() -> None:
    nobody = BusinessCalendar.build("UTC", ["09:00-10:00"], ["mon"], [], [])
    holidays = BusinessCalendar(nobody.tz, nobody.spans, frozenset(), frozenset(), frozenset())
    with pytest.raises(ValueError, match="no working time"):
        holidays.add(datetime(2025, 1, 1, tzinfo=UTC), timedelta(hours=1))


@pytest.mark.parametrize(
    ("d", "working"),
    [(date(2025, 10, 1), False), (date(2025, 9, 28), True), (date(2025, 11, 16), False), (date(2025, 11, 15), True)],
)
def test_workdays(d: date, working: bool) -> None:
    assert CAL.is_workday(d) is working


BERLIN = BusinessCalendar.build(
    "Europe/Berlin", ["08:00-12:00", "13:00-17:00"], ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], [], []
)


@pytest.mark.parametrize(
    ("start", "hours", "due_utc"),
    [
        # across the spring-forward night (30 March 2025): 16:00 CET Sat + 2 h -> 09:00 CEST Sun = 07:00 UTC
        (datetime(2025, 3, 29, 15, 0, tzinfo=UTC), 2, datetime(2025, 3, 30, 7, 0, tzinfo=UTC)),
        # across the fall-back night (26 October 2025): 16:00 CEST Sat + 2 h -> 09:00 CET Sun = 08:00 UTC
        (datetime(2025, 10, 25, 14, 0, tzinfo=UTC), 2, datetime(2025, 10, 26, 8, 0, tzinfo=UTC)),
    ],
)
def test_zones_with_daylight_saving(start: datetime, hours: int, due_utc: datetime) -> None:
    assert BERLIN._table().fixed_offset is None
    assert BERLIN.add(start, timedelta(hours=hours)) == due_utc


def test_fixed_offset_zone_is_detected() -> None:
    assert CAL._table().fixed_offset == timedelta(hours=8)


def test_dst_zone_fast_path_matches_walk() -> None:
    rng = random.Random(7)
    for _ in range(1000):
        start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 60 * 24 * 365))
        amount = timedelta(minutes=rng.randint(1, 60 * 50))
        assert BERLIN.add(start, amount) == BERLIN._add_slow(start.astimezone(BERLIN.tz), amount.total_seconds())


# --- official holidays merged with the file's own (issue 8.11) --------------------------------------------------

def _official(*holidays: date, workdays: tuple[date, ...] = ()) -> OfficialHolidays:
    return OfficialHolidays(frozenset(holidays), frozenset(workdays), "test data")


def test_official_holidays_are_merged_and_the_file_wins_where_they_disagree() -> None:
    official = _official(date(2027, 2, 8), date(2027, 2, 9), workdays=(date(2027, 2, 7),))
    holidays, extra = merge_holidays([date(2027, 3, 1)], [date(2027, 2, 9)], official)
    assert holidays == {date(2027, 2, 8), date(2027, 3, 1)}  # 2027-02-09: the merchant works that day
    assert extra == {date(2027, 2, 9), date(2027, 2, 7)}
    assert merge_holidays([date(2027, 3, 1)], [], None) == (frozenset({date(2027, 3, 1)}), frozenset())


def test_a_deadline_skips_an_official_holiday_the_file_does_not_list() -> None:
    from engine.rules import load_rules
    from tests.engine.rules_support import EXAMPLE_TEXT

    official = _official(date(2027, 1, 5))  # a Tuesday; the example's own list ends in 2026
    with_official = load_rules(EXAMPLE_TEXT, official=official)
    start = sh(2027, 1, 4, 17)  # Monday 17:00; 2 working hours
    assert EXAMPLE.calendar.add(start, timedelta(hours=2)) == sh(2027, 1, 5, 10)
    assert with_official.calendar.add(start, timedelta(hours=2)) == sh(2027, 1, 6, 10)
    none = load_rules(EXAMPLE_TEXT.replace("    hours: [\"09:00-18:00\"]", "    official: none\n    hours: [\"09:00-18:00\"]", 1),
                      official=official)
    assert none.calendar.add(start, timedelta(hours=2)) == sh(2027, 1, 5, 10)


def test_coverage_runs_out_when_today_is_past_the_last_year() -> None:
    from engine.rules import load_rules
    from tests.engine.rules_support import EXAMPLE_TEXT

    rules = load_rules(EXAMPLE_TEXT, official=_official(date(2026, 10, 1)))
    assert rules.holiday_coverage == {"default": 2026} and rules.holiday_source == "test data"
    assert rules.holiday_gaps(date(2026, 12, 31)) == []
    assert rules.holiday_gaps(date(2027, 1, 1)) == [("default", 2026)]
    newer = load_rules(EXAMPLE_TEXT, official=_official(date(2027, 10, 1)))
    assert newer.holiday_gaps(date(2027, 1, 1)) == []
    assert coverage_gap(None, date(2026, 12, 1)) is False  # a calendar with no holidays at all: nothing runs out


def test_the_bundled_official_data_is_china_s() -> None:
    from bot.adapters.holidays import official_holidays

    data = official_holidays()
    assert data is not None and data.source.startswith("chinesecalendar ")
    assert date(2026, 10, 1) in data.holidays and date(2026, 9, 20) in data.workdays  # 国庆, and its 调休 Sunday
    assert data.last_year is not None and data.last_year >= 2026
