"""The note use case prepares people's corrections once per example set (handlers.notes.learned) instead of
re-scoring a list on every note: the same classification and candidates as the list version (its answers recorded
in tests/engine/data/lib_classifier_golden.json, see tests/engine/test_lib_classifier_fast.py), and a changed set is
never served the old index."""

from __future__ import annotations

import random
from typing import Any

import handlers.notes as notes
from engine.anomaly import Classification
from engine.anomaly_lib_classifier import Example, ExampleIndex
from engine.note_learning import nearest_example, nearest_in
from handlers.tokenizer import tokens
from tests.engine.rules_support import EXAMPLE
from tests.engine.test_lib_classifier_fast import LABELLED, SAMPLES, classification, golden

KNOWN = frozenset(EXAMPLE.anomaly_categories)


def _examples(seed: int) -> list[tuple[str, str]]:
    rows = list(LABELLED)
    random.Random(seed).shuffle(rows)
    pairs = [(text, cat) for cat, text in rows[::2]]
    # a repeated text taught two ways (a tie), an empty one, a category the rules do not have, a duplicate
    return pairs + [(pairs[0][0], "install_issue"), ("", "quality_issue"), (pairs[1][0], "not_a_rules_category"),
                    pairs[3]]


def _analysed(row: list[Any]) -> tuple[Classification, tuple[str, ...]]:
    """A recorded answer of the list version: (classification, candidates)."""
    return classification(row[0]), tuple(row[1])


def test_prepared_examples_classify_as_the_list_did() -> None:
    examples = _examples(13)
    recorded = golden()["analyse"]["13"]
    assert len(recorded) == len(SAMPLES)
    for text, row in zip(SAMPLES, recorded):
        assert notes.analyse(text, EXAMPLE, examples) == _analysed(row), text
    assert notes.analyse("安装后窗帘短了一截", EXAMPLE, ()) == _analysed(golden()["analyse"]["no corrections"][0])


def test_the_nearest_example_read_off_the_index_is_the_scans() -> None:
    pairs = [(" ".join(tokens(t)), c) for t, c in _examples(14)]
    index = ExampleIndex(tuple(Example(t, c) for t, c in pairs))
    hits = 0
    for text in SAMPLES:
        joined = " ".join(tokens(text))
        assert nearest_in(index, joined) == nearest_example(joined, pairs), text
        hits += nearest_in(index, joined) is not None
    assert hits > 100  # the comparison is not all "no match"
    assert nearest_in(index, "") is None and nearest_in(ExampleIndex(()), "顺丰 没到") is None


def test_one_index_per_example_set_rebuilt_when_a_correction_changes_it() -> None:
    notes._LEARNED.clear()
    examples = _examples(15)
    first = notes.learned(examples, KNOWN)
    assert notes.learned(list(examples), KNOWN) is first  # the same set read again (a new list): not rebuilt
    assert notes.learned(tuple(examples), KNOWN) is first
    assert len(first.index) == len([e for e in examples if e[1] in KNOWN])  # only the rules' categories

    note = "安装后窗帘短了一截"
    assert notes.analyse(note, EXAMPLE, examples)[0].category == "install_issue"
    corrected = [("安装后发现窗帘短了一截", "measurement_error"), *examples]  # the store reads newest first
    assert notes.learned(corrected, KNOWN) is not first
    assert notes.analyse(note, EXAMPLE, corrected)[0].category == "measurement_error"
    relabelled = [("安装后发现窗帘短了一截", "quality_issue"), *examples]  # the same text, corrected again
    assert notes.analyse(note, EXAMPLE, relabelled)[0].category == "quality_issue"
    assert notes.learned(examples, KNOWN - {"install_issue"}) is not first  # other rules: another index

    for i in range(notes.LEARNED_SETS + 2):  # bounded: old sets are let go
        notes.learned(examples[i:], KNOWN)
    assert len(notes._LEARNED) == notes.LEARNED_SETS
