"""Anomaly classifier accuracy and throughput: today's classifier vs the bundled library, zero-shot and after
learning from corrections of a held-back half. Usage: python bench/classify.py"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.anomaly import categories_from_rules, classify  # noqa: E402
from engine.anomaly_lib_classifier import Example, classify_note  # noqa: E402
from bot.settings import BUNDLED_RULES  # noqa: E402
from engine.rules import load_rules  # noqa: E402
from handlers.tokenizer import tokens  # noqa: E402


def _load() -> list[tuple[str, str]]:
    rows = []
    for line in (ROOT / "bench/data/notes_labelled.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip():
            cat, text = line.split("\t", 1)
            rows.append((cat, text))
    return rows


def _acc(pred: list[str | None], gold: list[str]) -> float:
    return sum(p == g for p, g in zip(pred, gold)) / len(gold)


def main() -> None:
    rows = _load()
    rng = random.Random(13)
    rng.shuffle(rows)
    train, test = rows[::2], rows[1::2]
    rules = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
    base_cats = categories_from_rules(rules.anomaly_categories, rules.model.anomalies.threshold)
    gold_all = [c for c, _ in rows]
    gold_test = [c for c, _ in test]
    toks = {t: tokens(t) for _, t in rows}

    def timed(fn, texts):  # type: ignore[no-untyped-def]
        reps = max(1, 5000 // len(texts))
        t0 = time.perf_counter()
        for _ in range(reps):
            out = [fn(t) for t in texts]
        return out, reps * len(texts) / (time.perf_counter() - t0)

    texts_all = [t for _, t in rows]
    base_all, base_rate = timed(lambda t: classify(t, base_cats).category, texts_all)
    base_test = [classify(t, base_cats).category for _, t in test]
    lib_all, lib_rate = timed(lambda t: classify_note(t, tokens(t)).category, texts_all)
    lib_test = [classify_note(t, toks[t]).category for _, t in test]
    examples = [Example(" ".join(toks[t]), c) for c, t in train]
    learned_test, learned_rate = timed(lambda t: classify_note(t, tokens(t), examples).category,
                                       [t for _, t in test])
    print(f"{len(rows)} labelled notes, {len(train)} corrections learned, {len(test)} held out")
    print(f"{'classifier':40} {'all':>7} {'held-out':>9} {'notes/s':>9}")
    print(f"{'today (partial_ratio, baseline)':40} {_acc(base_all, gold_all):7.1%} {_acc(base_test, gold_test):9.1%}"
          f" {base_rate:9.0f}")
    print(f"{'library zero-shot':40} {_acc(lib_all, gold_all):7.1%} {_acc(lib_test, gold_test):9.1%} {lib_rate:9.0f}")
    print(f"{'library + learned corrections':40} {'-':>7} {_acc(learned_test, gold_test):9.1%} {learned_rate:9.0f}")


if __name__ == "__main__":
    main()
