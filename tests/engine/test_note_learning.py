"""Pure parts of note corrections: who may correct, the offered candidates, review threshold, category refs in
button tokens, the learned-example version and the nearest corrected note."""

from __future__ import annotations

from engine.access import Viewer
from engine.note_learning import (
    candidates,
    category_ref,
    examples_version,
    may_correct,
    nearest_example,
    needs_review,
    resolve_ref,
    valid_category,
)
from engine.tokens import MAX_TOKEN_BYTES, Action, sign, verify

KNOWN = ["logistics_delay", "stock_shortage", "quality_issue", "install_issue"]


def test_who_may_correct() -> None:
    assert may_correct(Viewer(1, "supply_chain"), "华南", None)  # the lead owns the categories
    assert may_correct(Viewer(1, "admin"), None, None)
    assert may_correct(Viewer(1, "manager", ("华东",)), "华东", None)
    assert not may_correct(Viewer(1, "manager", ("华东",)), "华南", None)  # another region's order
    assert may_correct(Viewer(7, "finance"), "华南", 7)  # the order's owner
    assert not may_correct(Viewer(1, "finance"), "华南", None)
    assert not may_correct(Viewer(1, "customer"), "华南", None)


def test_review_below_threshold_or_unclassified_and_off_at_zero() -> None:
    assert needs_review("logistics_delay", 0.59, 0.6) and not needs_review("logistics_delay", 0.6, 0.6)
    assert needs_review(None, 0.0, 0.6)
    assert not needs_review(None, 0.0, 0.0)


def test_candidates_are_known_distinct_and_padded_to_three() -> None:
    assert candidates(["quality_issue", "production_delay", "quality_issue", "install_issue"], KNOWN) == (
        "quality_issue", "install_issue", "logistics_delay")  # unknown ids dropped, repeats once, padded
    assert candidates([], KNOWN[:2]) == ("logistics_delay", "stock_shortage")


def test_category_refs_fit_a_token_and_resolve_only_against_current_categories() -> None:
    long_id = "measurement_error_of_the_fitter"  # longer than a token ref may be
    token = sign(b"k", Action.NOTE_SET, 2**40, category_ref(long_id))
    assert len(token.encode()) <= MAX_TOKEN_BYTES
    assert resolve_ref(verify(b"k", token).ref, [*KNOWN, long_id]) == long_id
    assert resolve_ref(category_ref(long_id), KNOWN) is None  # removed from the rules: refused, not guessed


def test_examples_version_is_the_content() -> None:
    a = examples_version([("面料没货", "stock_shortage"), ("快递没到", "logistics_delay")])
    assert a == examples_version([("快递没到", "logistics_delay"), ("面料没货", "stock_shortage")])
    assert a != examples_version([("快递没到", "logistics_delay"), ("面料没货", "quality_issue")])


def test_valid_category_needs_a_known_id_that_fits_the_column() -> None:
    assert valid_category("stock_shortage", KNOWN)
    assert not valid_category("", KNOWN) and not valid_category("x" * 33, ["x" * 33])
    assert not valid_category("flying", KNOWN)


def test_nearest_example_only_when_close() -> None:
    examples = [("缺少 安装 确认单 签字", "missing_docs"), ("顺丰 说 今天 件 太 多", "logistics_delay")]
    assert nearest_example("安装 确认单 还 没 签字", examples) == ("missing_docs", 0.857)
    assert nearest_example("安装 师傅 没有 按时 上门", examples) is None
    assert nearest_example("", examples) is None and nearest_example("x", []) is None
