"""Production-base helpers: distances, product types of SKUs, and the work-order number format."""

from __future__ import annotations

import math
from datetime import date


DEFAULT_WORK_ORDER_FORMAT = "{base}-{date}-{seq:04d}"


def work_order_no(base: str, day: date, seq: int, fmt: str = DEFAULT_WORK_ORDER_FORMAT) -> str:
    """The rules' `routing.work_order_format` filled in, by default `<base>-<yyyymmdd>-<seq>`; seq is the base's
    running number for that day (storage assigns it, unique)."""
    if seq < 1:
        raise ValueError("work-order sequence numbers start at 1")
    return fmt.format(base=base, date=f"{day:%Y%m%d}", seq=seq)


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance; good enough to pick the nearest factory, and needs no map service."""
    lat1, lon1 = map(math.radians, a)
    lat2, lon2 = map(math.radians, b)
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))
