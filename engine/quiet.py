"""Quiet hours of one person: no chat alerts in a nightly window unless severe enough. Pure, time passed in.

A window is `HH:MM-HH:MM` in the installation's time zone; one that ends before it starts runs past midnight
(`22:00-08:00`). Held alerts are delivered when the window ends, so `quiet_until` says when.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_quiet(text: str) -> tuple[time, time]:
    """`22:00-08:00` → (22:00, 08:00); a clear ValueError otherwise (also for an empty window)."""
    m = _SPAN.match(text.strip())
    if not m:
        raise ValueError(f"quiet hours must look like 22:00-08:00, not {text!r}")
    start, end = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
    if start == end:
        raise ValueError("quiet hours must not start and end at the same time")
    return start, end


def quiet_until(spec: str | None, now: datetime, timezone: str) -> datetime | None:
    """The end of the quiet window `now` is in (aware, in `now`'s zone), or None when not quiet."""
    if not spec:
        return None
    start, end = parse_quiet(spec)
    local = now.astimezone(ZoneInfo(timezone))
    t = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= t < end
        end_day = local.date()
    else:  # past midnight
        inside = t >= start or t < end
        end_day = local.date() + timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    until = datetime.combine(end_day, end, tzinfo=ZoneInfo(timezone))
    return until.astimezone(now.tzinfo)


def may_ring(level: int, bypass_level: int | None) -> bool:
    """Whether an alert of this ladder level rings through quiet hours (None: nothing does)."""
    return bypass_level is not None and level >= bypass_level
