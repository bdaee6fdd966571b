"""Chat strings and formatting: masking, progress, paging under the 4,096-character cap."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

from engine.carriers.text import CARRIERS
from engine.catalog import Catalog
from engine.note_text import NOTES
from engine.owner_text import OWNERS
from engine.text import CHAT, MAX_MESSAGE_CHARS, fmt_duration, mask_name, mask_phone, paginate, progress_line, t


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("13800138000", "138****8000"), ("+86 138-0013-8000", "138****8000"), ("8613800138000", "138****8000"),
     ("12345", "***45"), ("", ""), (None, "")],
)
def test_mask_phone(phone: str | None, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_mask_name() -> None:
    assert mask_name("王女士") == "王**" and mask_name("") == ""


def test_progress_line() -> None:
    assert progress_line("ordered") == "✅待确认 → ✅设计中 → 🔵已下单 → ⚪生产中 → ⚪已发货 → ⚪待安装"
    assert progress_line("completed").count("✅") == 6
    assert progress_line("cancelled") == "❌ 已取消"
    assert "🔵Designing" in progress_line("designing", "en")


def test_languages() -> None:
    assert t("toast.not_permitted") == "无权审批此订单"
    assert t("toast.not_permitted", "en") == "You may not decide this approval"
    assert t("toast.not_permitted", "fr") == "无权审批此订单"  # unknown language: Chinese


@pytest.mark.parametrize(("td", "zh", "en"), [(timedelta(minutes=90), "1小时30分", "1h30m"),
                                              (timedelta(days=2, hours=3), "2天3小时", "2d3h"),
                                              (timedelta(0), "0分", "0m")])
def test_fmt_duration(td: timedelta, zh: str, en: str) -> None:
    assert fmt_duration(td) == zh and fmt_duration(td, "en") == en


@pytest.mark.parametrize("n", [0, 1, 50, 500, 5000])
def test_paginate_keeps_every_line_and_fits(n: int) -> None:
    lines = [f"TM{i:06d} · 设计中 · 杭州 · ¥1,000.00 · 超时 3小时" for i in range(n)]
    pages = paginate(lines, header="超时订单：")
    assert all(len(p) <= MAX_MESSAGE_CHARS for p in pages)
    body = "\n".join(pages)
    assert all(line in body for line in lines)


def test_paginate_wraps_an_over_long_line() -> None:
    pages = paginate(["x" * 10000])
    assert len(pages) >= 3 and all(len(p) <= MAX_MESSAGE_CHARS for p in pages)
    assert sum(p.count("x") for p in pages) == 10000


# --- every key of the chat catalogues is used -------------------------------------------------------------------------
_ROOT = Path(__file__).resolve().parents[2]
_SOURCES = ("engine", "handlers", "bot", "webhooks", "board", "storage")


def text_uses(paths: list[Path]) -> tuple[set[str], set[str]]:
    """Every string constant in `paths` and every constant head of an f-string
    (`t(f"toast.{reason}")` → "toast."), the keys a handler builds from a code it was given."""
    constants, heads = set(), set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
                heads.add(node.values[0].value)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                constants.add(node.value)
    return constants, heads


def unused_keys(keys: list[str], constants: set[str], heads: set[str]) -> list[str]:
    """A key is used when it is written out, or when an f-string's head starts it and the rest is written out
    somewhere (the code `"forged"` a TokenError is raised with, for `toast.{reason}`)."""
    return [k for k in keys if k not in constants
            and not any(h and k.startswith(h) and k[len(h):] in constants for h in heads)]


@pytest.mark.parametrize("catalogue", [CHAT, CARRIERS, NOTES, OWNERS], ids=lambda c: c.name)
def test_every_key_of_the_text_table_is_used(catalogue: Catalog) -> None:
    """The catalogues are data files now, so their keys are not in the sources: any key written out is a use."""
    paths = [p for top in _SOURCES for p in (_ROOT / top).rglob("*.py") if "migrations" not in p.parts]
    constants, heads = text_uses(paths)
    assert unused_keys(list(catalogue.entries), constants, heads) == []


def test_the_unused_key_scan_sees_a_key_nobody_uses() -> None:
    constants, heads = text_uses([_ROOT / "handlers" / "stalls.py", _ROOT / "handlers" / "orders.py"])
    assert unused_keys(["toast.advance_failed", "move.awaiting_approval", "move.nobody"], constants, heads) == [
        "move.nobody"]
