"""The fast library classifier gives exactly the answers of the straightforward one it replaced: same category,
confidence and ranked evidence (floats compared exactly), zero-shot and with learned examples.

The straightforward classifier is no longer in the tree: its answers on this module's inputs are recorded in
tests/engine/data/lib_classifier_golden.json (and those of the note use case before the fast path, read by
tests/handlers/test_notes_learned.py). How the file was made: once, from the reference module as it stood at commit
809daf8 (`git show 809daf8:tests/engine/lib_classifier_reference.py`), by calling its `classify_note`,
`categories_from_rules`, `classify_text` and `analyse` on the inputs built below (`SAMPLES`, `learned_examples`,
`FUZZY_TOKENS`, `stale_examples`, `repeated_examples`, tests/handlers/test_notes_learned.py's `_examples(13)`) with
today's tokenizer, and writing each answer with `encode`. The file also keeps the inputs it was made from (each
sample's text and tokens), so a change of inputs or tokenizer shows as such, not as a classifier difference."""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from rapidfuzz import fuzz

from engine.anomaly import Category, Classification
from engine.anomaly_lib_classifier import Example, ExampleIndex, LibResult, classify_note
from handlers.tokenizer import tokens

ROOT = Path(__file__).resolve().parents[2]
GOLDEN_PATH = Path(__file__).resolve().parent / "data" / "lib_classifier_golden.json"
LABELLED = [tuple(line.split("\t", 1)) for line in
            (ROOT / "bench/data/notes_labelled.tsv").read_text(encoding="utf-8").splitlines() if line.strip()]
ODD = [
    "MES系统宕机 mes 又挂了", "顺丰顺丰顺丰", "Ｍｅｓ 排产", "物流\u3000慢了 \xa0在途", "仓库", "a", "  ", "库存库存不足不足",
    "德帮快第没到", "安装师傅爽约了，客户要求改地址", "CM mm 偏大偏小", "😀😀 没货", "abc\u2028def 签字",
    "面料面料批次批次", "遮光布B2025-31批次用完了", "缺少安装确认单签字", "MES系统宕机，工单下发不了",
]
LEARNED_SEEDS = (13, 14)
STALE_TEXT = "窗帘杆装歪了"


def _samples() -> list[str]:
    rng = random.Random(7)
    texts = [t for _, t in LABELLED] + ODD
    mixed = [rng.choice(texts)[: rng.randint(2, 12)] + rng.choice(texts)[-rng.randint(2, 12):] for _ in range(200)]
    return texts + mixed


SAMPLES = _samples()


def learned_examples(seed: int) -> tuple[Example, ...]:
    """Half the labelled notes as corrections, plus a tie, an empty one, an odd spacing and a repeat."""
    rng = random.Random(seed)
    rows = list(LABELLED)
    rng.shuffle(rows)
    examples = [Example(" ".join(tokens(t)), c) for c, t in rows[::2]]
    examples += [Example(examples[0].text, "install_issue"), Example("", "quality_issue"),  # a tie, an empty one
                 Example("物流\u3000慢了  在途", "logistics_delay"), Example(examples[3].text, examples[3].category)]
    return tuple(examples)


def stale_examples() -> list[Example]:
    """The list of `test_a_changed_list_of_examples_is_not_served_from_a_stale_index` after its correction."""
    return [Example(" ".join(tokens("窗帘杆装歪了要重装")), "quality_issue")]


def repeated_examples() -> tuple[Example, ...]:
    """Corrections repeat (the same note corrected again, the same words in another order, now and then relabelled)."""
    rng = random.Random(5)
    cats = sorted({c for c, _ in LABELLED})
    examples = []
    for _ in range(400):
        c, t = rng.choice(LABELLED)
        toks = tokens(t)
        if rng.random() < 0.3:
            rng.shuffle(toks)
        examples.append(Example(" ".join(toks), rng.choice(cats) if rng.random() < 0.2 else c))
    return tuple(examples)


def fuzzy_examples() -> tuple[Example, ...]:
    return tuple(Example(" ".join(tokens(t)), c) for c, t in LABELLED[:40])


# tokens a person's misspelling or a longer word makes: near-identical to a library term, so the fuzzy lookup counts
FUZZY_TOKENS = [["物流慢了", "电话打不同"], ["安全库存量", "质检报告单"], ["营业执照副本", "mes系统", "MES"],
                ["京东物流站", "电话打不同", "电话打不同"], ["生产线上", "设备故障了", "补发资料吧"], ["付款凭证呢"]]


def encode(answer: Any) -> Any:
    """A recorded answer as JSON (floats are written exactly: `repr` round-trips)."""
    if isinstance(answer, LibResult):
        return [answer.category, answer.confidence, [list(r) for r in answer.ranked]]
    if isinstance(answer, Classification):
        return [answer.category, answer.score, answer.matched]
    if isinstance(answer, Category):
        return [answer.id, answer.name_zh, answer.name_en, list(answer.keywords), list(answer.examples),
                answer.threshold]
    raise TypeError(type(answer))


def lib_result(row: list[Any]) -> LibResult:
    return LibResult(row[0], row[1], tuple((cid, score) for cid, score in row[2]))


def classification(row: list[Any]) -> Classification:
    return Classification(*row)


def category(row: list[Any]) -> Category:
    return Category(row[0], row[1], row[2], tuple(row[3]), tuple(row[4]), row[5])


@cache
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN_PATH.read_text(encoding="utf-8"))


def _same(text: str, toks: list[str], recorded: list[Any], examples: Any = ()) -> None:
    assert classify_note(text, toks, examples) == lib_result(recorded), text


def test_the_recorded_inputs_are_todays() -> None:
    """The golden answers are for these texts as today's tokenizer splits them: a difference here is a changed
    input (or jieba), not a changed classifier."""
    assert [[text, tokens(text)] for text in SAMPLES] == golden()["samples"]


def test_zero_shot_matches_the_reference() -> None:
    recorded = golden()["zero_shot"]
    assert len(recorded) == len(SAMPLES)
    for text, row in zip(SAMPLES, recorded):
        _same(text, tokens(text), row)


@pytest.mark.parametrize("seed", LEARNED_SEEDS)
def test_learned_examples_match_the_reference(seed: int) -> None:
    frozen = learned_examples(seed)
    recorded = golden()["learned"][str(seed)]
    assert len(recorded) == len(SAMPLES)
    for text, row in zip(SAMPLES, recorded):
        _same(text, tokens(text), row, frozen)
    for text, row in list(zip(SAMPLES, recorded))[:60]:  # a list (scored as it is, no index) gives the same too
        _same(text, tokens(text), row, list(frozen))
    index = ExampleIndex(frozen)  # a prepared index gives the same as the tuple
    for text, row in list(zip(SAMPLES, recorded))[:50]:
        _same(text, tokens(text), row, index)


@pytest.mark.parametrize(("toks", "recorded"), [(t, i) for i, t in enumerate(FUZZY_TOKENS)])
def test_fuzzy_token_hits_match_the_reference(toks: list[str], recorded: int) -> None:
    plain, with_examples = golden()["fuzzy"][recorded]
    text = "".join(toks)
    _same(text, toks, plain)
    _same(text, toks, with_examples, fuzzy_examples())
    assert classify_note(text, toks).ranked != classify_note(text, []).ranked  # the fuzzy part did count


def test_disjoint_token_sets_score_as_plain_ratio() -> None:
    """The identity the fast path rests on, checked on rapidfuzz itself: no shared token → token_set_ratio is the
    ratio of the sorted, space-joined token sets."""
    rng = random.Random(3)
    vocab = ["物流", "慢", "了", "在途", "顺丰", "库存", "不足", "签字", "MES", "a", "bb", "，"]
    checked = 0
    for _ in range(3000):
        a = set(rng.sample(vocab, rng.randint(1, 5)))
        b = set(rng.sample([v for v in vocab if v not in a], rng.randint(1, 4))) if len(a) < len(vocab) else set()
        if not b:
            continue
        sa, sb = " ".join(rng.sample(sorted(a), len(a))), " ".join(sorted(b))
        assert fuzz.token_set_ratio(sa, sb, score_cutoff=60) == fuzz.ratio(" ".join(sorted(a)), sb, score_cutoff=60)
        checked += 1
    assert checked > 2000


def test_a_changed_list_of_examples_is_not_served_from_a_stale_index() -> None:
    text = STALE_TEXT
    examples = [Example(" ".join(tokens("窗帘杆装歪了要重装")), "install_issue")]
    assert classify_note(text, tokens(text), examples).category == "install_issue"
    examples[0] = stale_examples()[0]
    _same(text, tokens(text), golden()["stale_index"], examples)
    assert classify_note(text, tokens(text), examples).ranked[0][0] == "quality_issue"


def test_note_use_case_classifies_as_before() -> None:
    """handlers.notes.classify_text (what every stored note goes through) with the remembered rule categories."""
    from bot.settings import BUNDLED_RULES
    from engine.anomaly import categories_from_rules
    from engine.rules import load_rules
    from handlers.notes import classify_text

    rules = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
    raw, threshold = rules.anomaly_categories, rules.model.anomalies.threshold
    bundled = tuple(category(row) for row in golden()["categories"]["bundled"])
    assert categories_from_rules(raw, threshold) == bundled
    assert categories_from_rules(raw, threshold) is categories_from_rules(rules.anomaly_categories, threshold)
    assert categories_from_rules(raw, 0.9) == tuple(category(row) for row in golden()["categories"]["threshold 0.9"])
    as_dicts = {cid: c.model_dump() for cid, c in raw.items()}
    assert categories_from_rules(as_dicts, threshold) == bundled
    as_dicts["stock_shortage"]["keywords"] = ["changed"]  # plain dicts are not remembered: a change shows
    assert categories_from_rules(as_dicts, threshold) != bundled
    recorded = golden()["classify_text"]
    assert len(recorded) == len(SAMPLES)
    for text, row in zip(SAMPLES, recorded):
        assert classify_text(text, rules) == classification(row), text


def test_many_repeated_and_reordered_corrections_match_the_reference() -> None:
    """Corrections repeat (the same note corrected again, the same words in another order): scored per token set."""
    frozen = repeated_examples()
    assert len(ExampleIndex(frozen).forms) < len(frozen)
    recorded = golden()["repeated"]
    assert len(recorded) == len(SAMPLES[::3])
    for text, row in zip(SAMPLES[::3], recorded):
        _same(text, tokens(text), row, frozen)


def test_remembered_tokens_are_a_fresh_list_and_the_same_as_jieba() -> None:
    from handlers.tokenizer import _jieba

    text = "德邦那边还压在中转站，客户催了"
    first = tokens(text)
    first.append("changed")  # a caller changing its list must not change the next caller's
    expected = [t for t in _jieba().lcut(text, HMM=False) if t.strip()]
    assert tokens(text) == expected and tokens(text) is not tokens(text)
    long_text = text * 20  # past the cached length: still tokenised the same way
    assert tokens(long_text) == [t for t in _jieba().lcut(long_text, HMM=False) if t.strip()]
