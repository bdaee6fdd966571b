"""Carrier performance, pure: transit time (pickup → delivery) per carrier × region, the last 7 days against the
30 days before them, and which pairs degraded past the rules' threshold.

The baseline is the 30 days *before* the recent window, so a degradation does not dilute its own baseline.
Percentiles are linear between closest ranks (numpy's default), in hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.carriers.rules import Degradation

RECENT, BASELINE = timedelta(days=7), timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Transit:
    carrier: str
    region: str | None
    picked_up_at: datetime
    delivered_at: datetime

    @property
    def hours(self) -> float:
        return (self.delivered_at - self.picked_up_at).total_seconds() / 3600


@dataclass(frozen=True, slots=True)
class Figures:
    carrier: str
    region: str
    recent_n: int
    recent_p50_h: float
    recent_p90_h: float
    base_n: int
    base_p50_h: float
    base_p90_h: float

    @property
    def p50_ratio(self) -> float:
        return self.recent_p50_h / self.base_p50_h if self.base_p50_h > 0 else 0.0

    @property
    def p90_ratio(self) -> float:
        return self.recent_p90_h / self.base_p90_h if self.base_p90_h > 0 else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def figures(transits: Iterable[Transit], now: datetime) -> list[Figures]:
    """Per carrier × region (by delivery time): recent = the last 7 days, baseline = the 30 days before."""
    recent_from, base_from = now - RECENT, now - RECENT - BASELINE
    groups: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for t in transits:
        if t.delivered_at < t.picked_up_at or t.delivered_at > now or t.delivered_at < base_from:
            continue
        recent, base = groups.setdefault((t.carrier, t.region or "—"), ([], []))
        (recent if t.delivered_at >= recent_from else base).append(t.hours)
    out = []
    for (carrier, region), (recent, base) in sorted(groups.items()):
        out.append(Figures(carrier, region, len(recent), round(percentile(recent, 0.5), 1),
                           round(percentile(recent, 0.9), 1), len(base), round(percentile(base, 0.5), 1),
                           round(percentile(base, 0.9), 1)))
    return out


def degraded(figs: Iterable[Figures], rule: Degradation) -> list[Figures]:
    """The pairs with enough deliveries in both windows whose p50 or p90 grew past `rule.ratio`."""
    return [f for f in figs if f.recent_n >= rule.min_samples and f.base_n >= rule.min_samples
            and (f.p50_ratio >= rule.ratio or f.p90_ratio >= rule.ratio)]
