"""The bundled library classifier: domain terms decide, weak evidence stays unclassified, corrections teach it."""

from __future__ import annotations

from engine.anomaly_lib_classifier import Example, classify_note
from engine.anomaly_library import TERMS
from handlers.tokenizer import tokens


def _c(text: str, examples: tuple[Example, ...] = ()) -> str | None:
    return classify_note(text, tokens(text), examples).category


def test_library_covers_every_spec_category() -> None:
    assert set(TERMS) == {"logistics_delay", "stock_shortage", "missing_docs", "quality_issue", "production_delay",
                          "address_unclear", "customer_change", "measurement_error", "install_issue"}


def test_domain_terms_classify() -> None:
    assert _c("德邦那边还压在中转站") == "logistics_delay"
    assert _c("MES里工单一直没开工") == "production_delay"
    assert _c("回单没盖章") == "missing_docs"
    assert _c("同缸号的布已经没了") == "stock_shortage"


def test_no_evidence_is_unclassified_not_a_guess() -> None:
    result = classify_note("今天天气不错", tokens("今天天气不错"))
    assert result.category is None and result.confidence < 0.5
    assert classify_note("", []).category is None


def test_a_correction_changes_the_next_similar_note() -> None:
    note = "老王那边说周四再说"
    assert _c(note) is None
    learned = (Example(" ".join(tokens("老王那边说周四再看")), "customer_change"),)
    assert _c(note, learned) == "customer_change"


def test_top_three_are_ranked_for_buttons() -> None:
    r = classify_note("快递到了但箱子破损，地址也写错", tokens("快递到了但箱子破损，地址也写错"))
    assert 2 <= len(r.ranked) <= 3 and r.ranked[0][1] >= r.ranked[-1][1]
