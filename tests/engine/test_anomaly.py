"""Note classification and the in-a-row trend check, on the bundled example categories."""

from __future__ import annotations

import pytest

from bot.settings import BUNDLED_RULES
from engine.anomaly import categories_from_rules, classify, consecutive_run
from engine.rules import load_rules

RULES = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
CATEGORIES = categories_from_rules(RULES.anomaly_categories, RULES.model.anomalies.threshold)


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        ("车间停电，无法排产", "production_delay"),
        ("快递五天没有更新了", "logistics_delay"),
        ("客户反馈包裹还没到", "logistics_delay"),
        ("米白色亚麻面料库存不足，需要补货", "stock_shortage"),
        ("缺少窗帘面料阻燃检测报告", "missing_docs"),
        ("收货地址没有门牌号", "address_unclear"),
        ("客户要换成米白色", "customer_change"),
        ("量尺时宽度量错了", "measurement_error"),
        ("窗帘有明显色差", "quality_issue"),
        ("客户很满意，谢谢", None),
        ("", None),
    ],
)
def test_notes_fall_into_the_expected_category(note: str, expected: str | None) -> None:
    assert classify(note, CATEGORIES).category == expected


def test_classification_says_what_matched() -> None:
    result = classify("缝纫设备故障停工半天", CATEGORIES)
    assert result.score == 1.0
    assert result.matched == "缝纫设备故障停工半天"


@pytest.mark.parametrize(
    ("recent", "expected"),
    [
        (["a", "a", "a", "b"], ("a", 3)),
        (["a"] * 5, ("a", 5)),
        ([None, "a", "a"], (None, 0)),
        ([], (None, 0)),
        (["b", "a", "a", "a", "a"], ("b", 1)),
    ],
)
def test_consecutive_run_counts_from_the_newest(recent: list[str | None], expected: tuple[str | None, int]) -> None:
    assert consecutive_run(recent) == expected
