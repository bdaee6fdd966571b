"""What corrections teach, through the use case's classification (handlers.notes.analyse), on the labelled notes
of bench/data with rules carrying the library's nine categories: zero-shot (the baseline), corrections of a held-back half
as classifier evidence only, and with the nearest corrected note deciding (what OrderHub does); plus throughput and
how right notes are above and below the review threshold. Usage: python bench/note_learning.py"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import handlers.notes as notes  # noqa: E402
from _common import labelled_notes, rules_with_categories  # noqa: E402  (bench/_common.py)
from engine.rules import RuleSet  # noqa: E402

SPEC = {"logistics_delay": "物流延迟", "stock_shortage": "库存不足", "missing_docs": "资料缺失",
        "quality_issue": "质量问题", "production_delay": "生产延误", "address_unclear": "地址不清",
        "customer_change": "客户变更", "measurement_error": "测量错误", "install_issue": "安装问题"}


def spec_rules() -> RuleSet:
    """The bundled rules with only the library's nine categories, without the keywords and examples the bundled file
    gives them: the library's own terms decide (`bench/classify.py` measures the bundled file as it is)."""
    return rules_with_categories({cid: {"name": {"zh": zh, "en": cid}} for cid, zh in SPEC.items()},
                                 "bench-spec-rules.yaml")


def run(fn: Callable[[str], str | None], rows: Sequence[tuple[str, str]]) -> tuple[float, float]:
    """(accuracy, notes per second) of `fn` over `rows`."""
    t0 = time.perf_counter()
    right = sum(fn(text) == cat for cat, text in rows)
    return right / len(rows), len(rows) / (time.perf_counter() - t0)


def main() -> None:
    rows = labelled_notes()
    random.Random(13).shuffle(rows)
    train, test = rows[::2], rows[1::2]
    rules = spec_rules()
    examples = [(text, cat) for cat, text in train]
    for _, text in rows:  # warm the tokenizer and the example cache: measure classification, not start-up
        notes.analyse(text, rules, examples)

    real_nearest = notes.Learned.nearest
    zero = run(lambda t: notes.analyse(t, rules)[0].category, test)
    notes.Learned.nearest = lambda *_a, **_k: None  # type: ignore[method-assign]
    evidence = run(lambda t: notes.analyse(t, rules, examples)[0].category, test)
    notes.Learned.nearest = real_nearest  # type: ignore[method-assign]
    learned = run(lambda t: notes.analyse(t, rules, examples)[0].category, test)

    print(f"{len(rows)} labelled notes; {len(train)} corrected (training half), {len(test)} held out")
    print(f"{'classification (held-out half)':<52}{'accuracy':>10}{'notes/s':>10}")
    for name, (acc, rate) in (("zero-shot, no corrections (baseline)", zero),
                              ("corrections as classifier evidence only", evidence),
                              ("corrections + nearest corrected note decides", learned)):
        print(f"{name:<52}{acc:>9.1%}{rate:>10.0f}")

    below = rules.model.anomalies.review_below
    sure = unsure = sure_right = unsure_right = 0
    for cat, text in rows:
        c = notes.analyse(text, rules)[0]
        if c.category is not None and c.score >= below:
            sure, sure_right = sure + 1, sure_right + (c.category == cat)
        else:
            unsure, unsure_right = unsure + 1, unsure_right + (c.category == cat)
    print(f"\nzero-shot, review_below {below}: {sure} notes at or above ({sure_right} right), "
          f"{unsure} below or unclassified ({unsure_right} right) → sent to a person")


if __name__ == "__main__":
    main()
