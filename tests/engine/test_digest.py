"""The morning digest's text: every section in zh and en, the local-time helpers, and the length limit that
summarises ("…and N more") instead of dropping lines."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from engine.digest import CategoryCount, DigestData, PendingApproval, TrendLine
from engine.digest import compose_digest, day_bounds, is_due, parse_at
from engine.kpi import Kpis
from engine.text import MAX_MESSAGE_CHARS

NOW = datetime(2025, 11, 12, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai


def data(*, pending: int = 2, categories: int = 2, trends: int = 1, regions: tuple[str, ...] = ()) -> DigestData:
    approvals = [PendingApproval(f"tmall:TM{i:04d}", Decimal("8000.00"), "杭州", NOW - timedelta(hours=30 - i),
                                 "manager", "华东") for i in range(min(pending, 5))]
    cats = [CategoryCount("物流延迟", "Logistics delay", 5)] + [
        CategoryCount(f"类别{i}", f"Category {i}", 1) for i in range(categories - 1)]
    return DigestData(
        day=date(2025, 11, 12), now=NOW, kpis=Kpis(0.9512, 6.25, 0.12, 0.999), kpi_days=30, intake_yesterday=412,
        stalled_by_stage={"in_production": 4, "designing": 3}, pending_total=pending, pending_oldest=approvals,
        anomalies=cats, trends=[TrendLine("物流延迟", "Logistics delay", 5, "base", "HZ")] * trends,
        dead_letters=2, regions=regions)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh", ["☀️ 早报 · 2025-11-12", "订单准确率：95.1%", "平均履约周期：6.2 天", "人工干预率：12.0%",
                "系统可用率：99.9%", "昨日新增订单：412", "当前超时订单：7", "· 设计中：3", "· 生产中：4",
                "待审批：2", "TM0000（天猫） ¥8,000.00 杭州 · 已等待 1天6小时 · 经理 华东", "· 物流延迟：5",
                "📈 趋势：物流延迟 连续 5 条 · 基地 HZ", "无法入库、等待处理的订单：2"]),
        ("en", ["☀️ Morning digest · 2025-11-12", "Order accuracy: 95.1%", "Average fulfilment cycle: 6.2 days",
                "Manual intervention rate: 12.0%", "Availability: 99.9%", "Orders received yesterday: 412",
                "Orders stalled now: 7", "TM0000 (Tmall) ¥8,000.00", "waiting 1d6h · manager 华东", "· Logistics delay：5",
                "📈 Trend: Logistics delay 5 in a row · base HZ", "Orders that could not be stored, waiting: 2"]),
    ],
)
def test_every_section_in_both_languages(language: str, expected: list[str]) -> None:
    text = compose_digest(data(), language)
    for piece in expected:
        assert piece in text, piece


def test_stalled_stages_follow_the_board_and_the_oldest_approval_comes_first() -> None:
    text = compose_digest(data())
    assert text.index("设计中") < text.index("生产中")
    assert text.index("TM0000") < text.index("TM0001")


def test_a_managers_digest_names_its_regions_and_more_approvals_are_counted() -> None:
    text = compose_digest(data(pending=12, regions=("华东", "华南")))
    assert "早报 · 2025-11-12（华东、华南）" in text
    assert "……另有 7 项" in text  # 12 pending, the 5 oldest shown


def test_empty_figures_say_dash_not_zero_percent() -> None:
    empty = DigestData(day=date(2025, 11, 12), now=NOW, kpis=Kpis(None, None, None, None), kpi_days=30,
                       intake_yesterday=0, stalled_by_stage={}, pending_total=0, pending_oldest=[], anomalies=[],
                       trends=[], dead_letters=0)
    text = compose_digest(empty, "en")
    assert "Order accuracy: —" in text and "Orders stalled now: 0" in text and "more" not in text


@pytest.mark.parametrize("limit", [4096, 3500, 1200])
def test_long_lists_are_summarised_within_the_limit(limit: int) -> None:
    text = compose_digest(data(categories=400, trends=300), "zh", limit=limit)
    assert len(text) <= limit <= MAX_MESSAGE_CHARS
    assert "……另有" in text  # cut lists say how much they hide
    for fixed in ("订单准确率", "待审批：2", "无法入库、等待处理的订单：2", "TM0001"):  # fixed lines and short lists survive
        assert fixed in text
    shown = text.count("\n· 类别") + text.count("📈 趋势")
    hidden = int(text.split("……另有 ")[-1].split(" 项")[0])
    assert shown + hidden == 399 + 300  # every line is either shown or counted


@pytest.mark.parametrize(
    ("value", "expected"),
    [("08:30", time(8, 30)), (" 7:05 ", time(7, 5)), ("00:00", time(0, 0))],
)
def test_parse_at(value: str, expected: time) -> None:
    assert parse_at(value) == expected


@pytest.mark.parametrize("value", ["8", "24:00", "08:60", "ab:cd", ""])
def test_parse_at_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="HH:MM"):
        parse_at(value)


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (datetime(2025, 11, 12, 0, 29, tzinfo=UTC), False),  # 08:29 Shanghai
        (datetime(2025, 11, 12, 0, 30, tzinfo=UTC), True),
        (datetime(2025, 11, 12, 15, 59, tzinfo=UTC), True),  # 23:59 Shanghai
        (datetime(2025, 11, 11, 16, 0, tzinfo=UTC), False),  # 00:00 Shanghai, the next day
    ],
)
def test_is_due_in_local_time(now: datetime, due: bool) -> None:
    assert is_due(now, time(8, 30), "Asia/Shanghai") is due


def test_day_bounds_are_local_midnights() -> None:
    start, end = day_bounds(date(2025, 11, 11), "Asia/Shanghai")
    assert start == datetime(2025, 11, 10, 16, 0, tzinfo=UTC) and end - start == timedelta(days=1)
