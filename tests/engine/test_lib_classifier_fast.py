"""The fast library classifier gives exactly the results of the straightforward one (lib_classifier_reference):
same category, confidence and ranked evidence (floats compared exactly), zero-shot and with learned examples."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from rapidfuzz import fuzz

from engine.anomaly_lib_classifier import Example, ExampleIndex, classify_note
from handlers.tokenizer import tokens
from tests.engine import lib_classifier_reference as reference

ROOT = Path(__file__).resolve().parents[2]
LABELLED = [tuple(line.split("\t", 1)) for line in
            (ROOT / "bench/data/notes_labelled.tsv").read_text(encoding="utf-8").splitlines() if line.strip()]
ODD = [
    "MES系统宕机 mes 又挂了", "顺丰顺丰顺丰", "Ｍｅｓ 排产", "物流\u3000慢了 \xa0在途", "仓库", "a", "  ", "库存库存不足不足",
    "德帮快第没到", "安装师傅爽约了，客户要求改地址", "CM mm 偏大偏小", "😀😀 没货", "abc\u2028def 签字",
    "面料面料批次批次", "遮光布B2025-31批次用完了", "缺少安装确认单签字", "MES系统宕机，工单下发不了",
]


def _samples() -> list[str]:
    rng = random.Random(7)
    texts = [t for _, t in LABELLED] + ODD
    mixed = [rng.choice(texts)[: rng.randint(2, 12)] + rng.choice(texts)[-rng.randint(2, 12):] for _ in range(200)]
    return texts + mixed


SAMPLES = _samples()


def _same(text: str, toks: list[str], examples: tuple[Example, ...] = ()) -> None:
    fast = classify_note(text, toks, examples)
    ref = reference.classify_note(text, toks, examples)
    assert fast == ref, text


def test_zero_shot_matches_the_reference() -> None:
    for text in SAMPLES:
        _same(text, tokens(text))


@pytest.mark.parametrize("seed", [13, 14])
def test_learned_examples_match_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    rows = list(LABELLED)
    rng.shuffle(rows)
    examples = [Example(" ".join(tokens(t)), c) for c, t in rows[::2]]
    examples += [Example(examples[0].text, "install_issue"), Example("", "quality_issue"),  # a tie, an empty one
                 Example("物流\u3000慢了  在途", "logistics_delay"), Example(examples[3].text, examples[3].category)]
    frozen = tuple(examples)
    for text in SAMPLES:
        _same(text, tokens(text), frozen)
    for text in SAMPLES[:60]:  # a list (scored as it is, no index) gives the same too
        assert classify_note(text, tokens(text), list(frozen)) == reference.classify_note(text, tokens(text), frozen)
    index = ExampleIndex(frozen)  # a prepared index gives the same as the tuple
    for text in SAMPLES[:50]:
        assert classify_note(text, tokens(text), index) == reference.classify_note(text, tokens(text), frozen)


# tokens a person's misspelling or a longer word makes: near-identical to a library term, so the fuzzy lookup counts
FUZZY_TOKENS = [["物流慢了", "电话打不同"], ["安全库存量", "质检报告单"], ["营业执照副本", "mes系统", "MES"],
                ["京东物流站", "电话打不同", "电话打不同"], ["生产线上", "设备故障了", "补发资料吧"], ["付款凭证呢"]]


@pytest.mark.parametrize("toks", FUZZY_TOKENS)
def test_fuzzy_token_hits_match_the_reference(toks: list[str]) -> None:
    text = "".join(toks)
    _same(text, toks)
    _same(text, toks, tuple(Example(" ".join(tokens(t)), c) for c, t in LABELLED[:40]))
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
    text = "窗帘杆装歪了"
    examples = [Example(" ".join(tokens("窗帘杆装歪了要重装")), "install_issue")]
    assert classify_note(text, tokens(text), examples).category == "install_issue"
    examples[0] = Example(" ".join(tokens("窗帘杆装歪了要重装")), "quality_issue")
    assert classify_note(text, tokens(text), examples) == reference.classify_note(text, tokens(text), examples)
    assert classify_note(text, tokens(text), examples).ranked[0][0] == "quality_issue"


def test_note_use_case_classifies_as_before() -> None:
    """handlers.notes.classify_text (what every stored note goes through) with the remembered rule categories."""
    from bot.settings import BUNDLED_RULES
    from engine.anomaly import categories_from_rules
    from engine.rules import load_rules
    from handlers.notes import classify_text

    rules = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
    raw, threshold = rules.anomaly_categories, rules.model.anomalies.threshold
    assert categories_from_rules(raw, threshold) == reference.categories_from_rules(raw, threshold)
    assert categories_from_rules(raw, threshold) is categories_from_rules(rules.anomaly_categories, threshold)
    assert categories_from_rules(raw, 0.9) == reference.categories_from_rules(raw, 0.9)  # another threshold
    as_dicts = {cid: c.model_dump() for cid, c in raw.items()}
    assert categories_from_rules(as_dicts, threshold) == reference.categories_from_rules(raw, threshold)
    as_dicts["stock_shortage"]["keywords"] = ["changed"]  # plain dicts are not remembered: a change shows
    assert categories_from_rules(as_dicts, threshold) != reference.categories_from_rules(raw, threshold)
    for text in SAMPLES:
        assert classify_text(text, rules) == reference.classify_text(text, rules, tokens), text


def test_many_repeated_and_reordered_corrections_match_the_reference() -> None:
    """Corrections repeat (the same note corrected again, the same words in another order): scored per token set."""
    rng = random.Random(5)
    cats = sorted({c for c, _ in LABELLED})
    examples = []
    for _ in range(400):
        c, t = rng.choice(LABELLED)
        toks = tokens(t)
        if rng.random() < 0.3:
            rng.shuffle(toks)
        examples.append(Example(" ".join(toks), rng.choice(cats) if rng.random() < 0.2 else c))
    frozen = tuple(examples)
    assert len(ExampleIndex(frozen).forms) < len(frozen)
    for text in SAMPLES[::3]:
        _same(text, tokens(text), frozen)


def test_remembered_tokens_are_a_fresh_list_and_the_same_as_jieba() -> None:
    from handlers.tokenizer import _jieba

    text = "德邦那边还压在中转站，客户催了"
    first = tokens(text)
    first.append("changed")  # a caller changing its list must not change the next caller's
    expected = [t for t in _jieba().lcut(text, HMM=False) if t.strip()]
    assert tokens(text) == expected and tokens(text) is not tokens(text)
    long_text = text * 20  # past the cached length: still tokenised the same way
    assert tokens(long_text) == [t for t in _jieba().lcut(long_text, HMM=False) if t.strip()]
