"""Extra waybill-number patterns from the rules (issue 15): a safe regex subset, bounded, and used by find_waybill."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.carriers.rules import CarrierRules, WaybillPatternRule
from engine.refunds import DEFAULT_PATTERNS, WaybillMatch, WaybillPattern, find_waybill


@pytest.mark.parametrize("regex", [r"DP\d{10}", r"ZT[0-9A-F]{12,14}", r"KY\d{4}X\d{6}", r"[A-C]\d{8}CN"])
def test_safe_patterns_are_accepted(regex: str) -> None:
    assert WaybillPatternRule(carrier="deppon", regex=regex).regex == regex


@pytest.mark.parametrize("regex", [
    r"(a+)+$",  # the classic catastrophic backtracking
    r"(\d+)*X",
    r"SF\d+",  # unbounded
    r"SF\d*",
    r"A|B",
    r"SF(?=1)\d{3}",
    r"\1",
    r"SF.{5}",
    r"SF\d{99}",  # count over two digits
    r"SF\d{30}\d{30}",  # longer than 40 characters
    r"SF\d{9,3}",  # min > max
    "SF\x00\\d{3}",
    "x" * 65,
    r"sf\d{12}",  # lower case never appears after OCR upper-casing
])
def test_dangerous_or_malformed_patterns_are_refused(regex: str) -> None:
    with pytest.raises(ValidationError):
        WaybillPatternRule(carrier="deppon", regex=regex)


def test_carrier_id_is_bounded_and_the_list_is_capped() -> None:
    with pytest.raises(ValidationError):
        WaybillPatternRule(carrier="Bad Carrier!", regex=r"DP\d{10}")
    with pytest.raises(ValidationError):
        CarrierRules(waybill_patterns=[{"carrier": "x", "regex": r"DP\d{10}"}] * 51)


def test_a_rules_pattern_finds_a_number_the_builtins_miss() -> None:
    extra = WaybillPattern("deppon", r"DP\d{10}")
    assert find_waybill("德邦 DP 1234 567 890") is None
    assert find_waybill("德邦 DP 1234 567 890", (*DEFAULT_PATTERNS, extra)) == WaybillMatch("deppon", "DP1234567890")
    # confusable characters inside the digits are repaired for rule patterns too
    assert find_waybill("DP12345678O0", (*DEFAULT_PATTERNS, extra)) == WaybillMatch("deppon", "DP1234567800")
