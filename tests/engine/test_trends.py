"""Trend detection as tables: runs of one category (per base), counts within a window, and the keys that make one
run one alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.settings import BUNDLED_RULES
from engine.rules import load_rules
from engine.trends import (
    NoteFact,
    TrendSpec,
    consecutive_hit,
    detect,
    hit_payload,
    recipients,
    specs_from_rules,
    window_hit,
)

T0 = datetime(2025, 11, 11, 2, 0, tzinfo=UTC)
RUN5 = TrendSpec("five", "any", 5, None, None, "base", (("supply_chain", None),))
DELAY_RUN = TrendSpec("delays", "logistics_delay", 3, None, None, "all", (("supply_chain", None),))
WINDOW = TrendSpec("carrier", "logistics_delay", None, 3, timedelta(hours=24), "carrier", (("supply_chain", None),))

L, S = "logistics_delay", "stock_shortage"


def notes(cats: str | list[str | None], *, base: str | None = "HZ", step: timedelta = timedelta(minutes=10)
          ) -> list[NoteFact]:
    """Notes oldest first, ids 1.., one order each; a string is one letter per note (L, S, or '-' = unclassified)."""
    seq = [{"L": L, "S": S, "-": None}[c] for c in cats] if isinstance(cats, str) else cats
    return [NoteFact(i, 100 + i, f"tmall:TM{i}", c, T0 + i * step, base, "SF", "华东") for i, c in enumerate(seq, 1)]


def newest_first(history: list[NoteFact]) -> list[NoteFact]:
    return list(reversed(history))


@pytest.mark.parametrize(
    ("history", "fires", "count"),
    [
        ("LLLL", False, 0),  # 4 in a row: not yet
        ("LLLLL", True, 5),  # the 5th completes the run
        ("SLLLLL", True, 5),  # an older different category does not count
        ("LLLLSL", False, 0),  # a different category broke the run
        ("LLLL-L", False, 0),  # an unclassified note breaks it too
        ("LLLLLLL", True, 7),  # the run goes on: still the same run (same key, below)
        ("SSSSS", True, 5),  # `any`: each category has its runs
    ],
)
def test_consecutive_runs(history: str, fires: bool, count: int) -> None:
    h = notes(history)
    hit = consecutive_hit(RUN5, h[-1], newest_first(h))
    assert (hit is not None) == fires
    if hit:
        assert hit.count == count and hit.group == "HZ"


def test_one_run_is_one_key_and_a_new_run_a_new_key() -> None:
    h = notes("LLLLLLS" + "LLLLL")
    keys = [consecutive_hit(RUN5, h[i], newest_first(h[: i + 1])) for i in range(len(h))]
    fired = [(i + 1, k.key) for i, k in enumerate(keys) if k]
    assert [i for i, _ in fired] == [5, 6, 12]
    assert fired[0][1] == fired[1][1]  # the 6th proposes the 5th's key: stored once, alerted once
    assert fired[2][1] != fired[0][1]  # the run after the break is a new alert
    assert fired[0][1] == "trend:five:HZ:logistics_delay:n5"


def test_a_run_longer_than_the_history_read_is_not_alerted_again() -> None:
    h = newest_first(notes("LLLLLL"))
    assert consecutive_hit(RUN5, h[0], h, truncated=True) is None
    assert consecutive_hit(RUN5, h[0], h, truncated=False) is not None


@pytest.mark.parametrize(
    ("spec", "history", "fires"),
    [
        (DELAY_RUN, "LLL", True),
        (DELAY_RUN, "SSS", False),  # another category's run is not this trend's
        (DELAY_RUN, "LLS", False),
    ],
)
def test_a_trend_may_name_its_category(spec: TrendSpec, history: str, fires: bool) -> None:
    h = notes(history)
    assert (consecutive_hit(spec, h[-1], newest_first(h)) is not None) == fires


def test_per_base_needs_a_base() -> None:
    h = notes("LLLLL", base=None)
    assert consecutive_hit(RUN5, h[-1], newest_first(h)) is None


@pytest.mark.parametrize(
    ("history", "step", "fires", "count"),
    [
        ("LL", timedelta(hours=1), False, 0),
        ("LLL", timedelta(hours=1), True, 3),
        ("LSLSL", timedelta(hours=1), True, 3),  # not in a row, but 3 within 24 h
        ("LLL", timedelta(hours=13), False, 0),  # spread over 26 h: only 2 inside the window
    ],
)
def test_count_within_a_window(history: str, step: timedelta, fires: bool, count: int) -> None:
    h = notes(history, step=step)
    hit = window_hit(WINDOW, h[-1], newest_first(h))
    assert (hit is not None) == fires
    if hit:
        assert hit.count == count and hit.group == "SF" and hit.window == timedelta(hours=24)


def test_a_burst_alerts_once_per_window_bucket() -> None:
    h = notes("LLLLL", step=timedelta(minutes=1))
    keys = {window_hit(WINDOW, h[i], newest_first(h[: i + 1])).key for i in range(2, 5)}  # type: ignore[union-attr]
    assert len(keys) == 1


def test_orders_are_named_once_oldest_first_and_the_payload_is_json() -> None:
    h = notes("LLLLL")
    h[1] = NoteFact(2, 101, "tmall:TM1", L, h[1].at, "HZ")  # a second note on the first order
    hit = detect(RUN5, h[-1], newest_first(h))
    assert hit is not None and hit.order_refs == ("tmall:TM1", "tmall:TM3", "tmall:TM4", "tmall:TM5")
    payload = hit_payload(hit, {L: ("物流延迟", "Logistics delay")})
    assert payload["category_zh"] == "物流延迟" and payload["count"] == 5 and payload["window_s"] is None


def test_recipients_default_and_mapping() -> None:
    new = notes("L")[0]
    spec = TrendSpec("x", "any", 5, None, None, "all", (("region_head", None), ("owner", None), ("admin", None)))
    assert recipients(spec, new) == [("manager", "华东"), ("supply_chain", None), ("admin", None)]
    assert recipients(TrendSpec("y", "any", 5, None, None, "all", ()), new) == [("supply_chain", None)]


def test_bundled_rules_trends_adapt() -> None:
    rules = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
    specs = {s.id: s for s in specs_from_rules(rules.trends)}
    assert specs["five-in-a-row-per-base"].consecutive == 5 and specs["five-in-a-row-per-base"].per == "base"
    assert specs["carrier-delays"].window == timedelta(hours=24) and specs["carrier-delays"].count == 8


def test_long_names_keep_the_key_short() -> None:
    spec = TrendSpec("t" * 64, "any", 2, None, None, "base", ())
    h = notes("LL", base="B" * 80)
    hit = detect(spec, h[-1], newest_first(h))
    assert hit is not None and len(hit.key) <= 120 and hit.key.endswith(":n2")
