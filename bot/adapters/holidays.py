"""China's official public holidays and make-up workdays, from the `chinesecalendar` package (loaded here, at the
edge: the engine is given the data and reads no package files itself).

The package is updated each year once the State Council publishes the next year's schedule (usually in November or
December): `pip install -U chinesecalendar`. Until then `rules check` warns and the admins are told once.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata

from engine.rules.calendar import OfficialHolidays


@cache
def official_holidays() -> OfficialHolidays | None:
    """The official holidays (None when the package is missing: the rules' own lists still apply)."""
    try:
        from chinese_calendar.constants import holidays, workdays
    except ImportError:  # pragma: no cover - a declared dependency; tolerated for a trimmed install
        return None
    try:
        version = metadata.version("chinesecalendar")
    except metadata.PackageNotFoundError:  # pragma: no cover
        version = "?"
    # `workdays` lists only the make-up working days that fall on a weekend (调休), as `extra_workdays` does
    return OfficialHolidays(frozenset(holidays), frozenset(workdays), f"chinesecalendar {version}")
