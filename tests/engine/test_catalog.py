"""The message catalogues (engine/catalogs/*.toml, board/catalog.toml): every entry complete in both languages."""

from __future__ import annotations

from string import Formatter

import pytest

from board.text import BOARD
from engine.carriers.text import CARRIERS
from engine.catalog import Catalog
from engine.note_text import NOTES
from engine.owner_text import OWNERS
from engine.refund_text import REFUNDS
from engine.text import CHAT
from engine.text_cli import CLI

CATALOGUES = (CHAT, CLI, CARRIERS, NOTES, OWNERS, REFUNDS, BOARD)
LANGUAGES = ("zh", "en")


def placeholders(text: str) -> set[str]:
    """The `{names}` a text is formatted with (`{n}` of "{n} 行"; doubled braces are text)."""
    return {field for _, field, _, _ in Formatter().parse(text) if field is not None}


def problems(catalogue: Catalog) -> list[str]:
    out = []
    for key, entry in catalogue.entries.items():
        if set(entry) != set(LANGUAGES) or not all(isinstance(entry[lang], str) and entry[lang] for lang in entry):
            out.append(f"{catalogue.name}:{key}: needs a text in exactly {LANGUAGES}, has {sorted(entry)}")
            continue
        try:
            zh, en = (placeholders(entry[lang]) for lang in LANGUAGES)
        except ValueError as e:  # an unbalanced brace
            out.append(f"{catalogue.name}:{key}: {e}")
            continue
        if zh != en:
            out.append(f"{catalogue.name}:{key}: zh uses {sorted(zh)}, en uses {sorted(en)}")
    return out


@pytest.mark.parametrize("catalogue", CATALOGUES, ids=lambda c: c.name)
def test_every_entry_has_both_languages_with_the_same_placeholders(catalogue: Catalog) -> None:
    assert len(catalogue.entries) > 5  # the file was found and read
    assert problems(catalogue) == []


def test_the_check_catches_a_broken_entry() -> None:
    broken = Catalog("broken", {
        "ok": {"zh": "订单 {order}", "en": "order {order}"},
        "no_en": {"zh": "只有中文"},
        "empty_en": {"zh": "中文", "en": ""},
        "renamed": {"zh": "订单 {order}", "en": "order {id}"},
        "dropped": {"zh": "{n} 行", "en": "rows"},
        "unbalanced": {"zh": "{n 行", "en": "{n} rows"},
    })
    assert [p.split(":")[1] for p in problems(broken)] == ["no_en", "empty_en", "renamed", "dropped", "unbalanced"]


def test_a_look_up_falls_back_to_chinese_and_fills_placeholders() -> None:
    cat = Catalog("x", {"a": {"zh": "订单 {order}", "en": "order {order}"}})
    assert cat.t("a", "en", order=7) == "order 7"
    assert cat.t("a", "fr", order=7) == "订单 7" and cat.t("a", order=7) == "订单 7"
    assert cat.words("en") == {"a": "order {order}"} and "a" in cat and "b" not in cat
    with pytest.raises(KeyError):
        cat.t("b")


def test_the_catalogues_keep_their_order_and_load_once() -> None:
    assert next(iter(CHAT.entries)) == "approval.title"  # the file's order, as the tables had it
    from engine import text

    assert text.t.__self__ is CHAT  # the module's look-up is bound to the one catalogue read at import


def test_the_data_tables_beside_the_catalogues_are_well_formed() -> None:
    import re

    from engine.anomaly_library import TERMS
    from engine.rules.errors import _FRAGMENTS, _HEAD, _ZH

    assert len(TERMS) == 9 and all(ws for ws in TERMS.values())
    assert all(type(w) is float and 0 < w <= 1 for ws in TERMS.values() for w in ws.values())  # 1 would be an int
    assert len(_ZH) > 40 and _FRAGMENTS and set(_HEAD) == set(LANGUAGES)
    for pattern, repl in _ZH:  # a replacement names only groups its pattern has (re.sub would fail on the message)
        refs = [int(n) for n in re.findall(r"\\(\d)", repl)]
        assert max(refs, default=0) <= pattern.groups, pattern.pattern
