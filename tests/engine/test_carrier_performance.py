"""Carrier performance on a simulated month: one carrier's 华南 transit times double (fires), noise does not."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from engine.carriers.performance import Transit, degraded, figures, percentile
from engine.carriers.rules import Degradation

NOW = datetime(2026, 12, 1, tzinfo=UTC)
BASE_HOURS = {("sf", "华南"): 30.0, ("sf", "华东"): 24.0, ("deppon", "华南"): 48.0, ("deppon", "华东"): 40.0}


def month(rng: random.Random, slow: tuple[str, str] | None = None, per_day: int = 8) -> list[Transit]:
    out = []
    for day in range(37):
        delivered_day = NOW - timedelta(days=day, hours=1)
        for (carrier, region), hours in BASE_HOURS.items():
            for _ in range(per_day):
                h = hours * rng.uniform(0.7, 1.35)  # ± noise, a little right-skewed like real transit
                if slow == (carrier, region) and day < 7:
                    h *= 2
                at = delivered_day - timedelta(minutes=rng.randint(0, 600))
                out.append(Transit(carrier, region, at - timedelta(hours=h), at))
    return out


def test_percentile_is_linear_between_ranks() -> None:
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([10], 0.9) == 10
    assert percentile([], 0.5) == 0.0


def test_a_carrier_whose_south_china_times_double_is_flagged_alone() -> None:
    figs = figures(month(random.Random(1), slow=("sf", "华南")), NOW)
    hits = degraded(figs, Degradation())
    assert [(h.carrier, h.region) for h in hits] == [("sf", "华南")]
    (hit,) = hits
    assert hit.recent_n == 7 * 8 and hit.base_n == 30 * 8
    assert 1.8 < hit.p50_ratio < 2.2


def test_noise_alone_never_fires() -> None:
    for seed in range(20):
        assert degraded(figures(month(random.Random(seed)), NOW), Degradation()) == []


def test_too_few_deliveries_are_not_judged() -> None:
    figs = figures(month(random.Random(2), slow=("sf", "华南"), per_day=1)[:40], NOW)
    assert degraded(figs, Degradation(min_samples=50)) == []

