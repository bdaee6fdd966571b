"""`orderhub stock import FILE`: stock levels (SKU × production base → units) from CSV or XLSX.

Read like `orderhub import` (bot.cli.importer: UTF-8/GBK/GB18030 CSV or XLSX, bounded reads, one sentence for a file
that cannot be read). Columns `sku`, `base`, `quantity` (or 商品编码 / 基地 / 库存). Every row is checked before
anything is written: a base the rules do not know, a quantity that is not a whole number in 0..1,000,000,000, a
repeated (sku, base), NUL or broken text — each refused row is reported with its line number and the file is
not imported at all. A clean file is written in one transaction: all rows or none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engine.order import check_text
from engine.rules import RuleSet
from engine.text_cli import field_name, tc
from bot.cli.importer import ImportFileError, RowError, read_rows
from handlers.stock import MAX_QUANTITY
from storage.stock_repo import StockLevel

COLUMNS = ("sku", "base", "quantity")
ALIASES = {"商品编码": "sku", "sku编码": "sku", "基地": "base", "生产基地": "base", "库存": "quantity",
           "数量": "quantity", "库存数量": "quantity", "qty": "quantity"}
MAX_TEXT = 64  # the stock table's sku and base columns


@dataclass(slots=True)
class CheckedStock:
    levels: list[StockLevel]
    errors: list[RowError]


def _column(name: str) -> str:
    key = name.strip()
    return ALIASES.get(key, ALIASES.get(key.lower(), key.lower()))


def _text(value: Any, column: str, language: str) -> tuple[str | None, str | None]:
    """(text, refusal reason)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, tc("r.missing", language, field=field_name(column, language))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    try:
        check_text(text)
    except ValueError:
        return None, tc("r.bad_text", language, field=field_name(column, language))
    if len(text) > MAX_TEXT:
        return None, tc("r.too_long", language, field=field_name(column, language), limit=MAX_TEXT)
    return text, None


def _quantity(value: Any, language: str) -> tuple[int | None, str | None]:
    name = field_name("quantity", language)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, tc("r.missing", language, field=name)
    if isinstance(value, bool):
        return None, tc("r.not_int", language, field=name)
    if isinstance(value, float) and not math.isfinite(value):
        return None, tc("r.not_int", language, field=name)
    text = str(value).strip().replace(",", "")
    if len(text) > 40:  # "9" * 10_000 must not cost a big-number parse
        return None, tc("r.le", language, field=name, limit=f"{MAX_QUANTITY:,}")
    try:
        d = Decimal(text)
    except InvalidOperation:
        return None, tc("r.not_int", language, field=name)
    if not d.is_finite() or d != d.to_integral_value():
        return None, tc("r.not_int", language, field=name)
    if d < 0:
        return None, tc("r.ge", language, field=name, limit=0)
    if d > MAX_QUANTITY:
        return None, tc("r.le", language, field=name, limit=f"{MAX_QUANTITY:,}")
    return int(d), None


def check_rows(rows: Iterable[tuple[int, dict[str, Any]]], rules: RuleSet, language: str = "zh",
               path: Path | None = None) -> CheckedStock:
    """Every row checked; `levels` is only worth writing when `errors` is empty."""
    out = CheckedStock([], [])
    bases = rules.model.bases
    known = ", ".join(bases) or "-"
    seen: dict[tuple[str, str], int] = {}
    header_checked = False
    for n, raw in rows:
        row = {_column(k): v for k, v in raw.items()}
        if not header_checked:
            missing = [c for c in COLUMNS if c not in row]
            if missing:
                raise ImportFileError(tc("stk.missing_columns", language, columns=", ".join(missing), path=path))
            header_checked = True
        problems: list[RowError] = []
        sku, why = _text(row.get("sku"), "sku", language)
        if why:
            problems.append(RowError(n, "sku", why))
        base, why = _text(row.get("base"), "base", language)
        if why:
            problems.append(RowError(n, "base", why))
        elif base not in bases:
            problems.append(RowError(n, "base", tc("r.unknown_base", language, base=base, known=known)))
        qty, why = _quantity(row.get("quantity"), language)
        if why:
            problems.append(RowError(n, "quantity", why))
        if not problems and sku is not None and base is not None and qty is not None:
            first = seen.setdefault((sku, base), n)
            if first != n:
                problems.append(RowError(n, "sku", tc("r.duplicate_pair", language, row=first)))
            else:
                out.levels.append(StockLevel(sku, base, qty))
        out.errors += problems
    return out


async def import_stock(rt: Any, path: Path, console: Any, *, replace: bool = False) -> int:
    """Check the whole file, then write it in one transaction; print the refused rows. Returns their number."""
    from bot.cli.importer import _table
    from storage.stock_repo import SqlStock

    lang = rt.settings.language
    await rt.start_rules(watch=False)  # the bases a row may name
    checked = check_rows(read_rows(path, lang), rt.rules.current, lang, path)
    if checked.errors:
        refused = len({e.row for e in checked.errors})
        console.print(_table(tc("imp.refused_title", lang, rows=refused, problems=len(checked.errors)),
                             checked.errors, lang))
        console.print(f"[red]{tc('stk.nothing', lang, path=path)}[/]")
        return refused
    if not checked.levels:
        raise ImportFileError(tc("stk.empty", lang, path=path))
    n = await SqlStock(rt.db).write(checked.levels, rt.clock.now(), replace=replace)
    mode = tc("stk.mode_replace" if replace else "stk.mode_merge", lang)
    console.print(tc("stk.written", lang, n=n, path=path, mode=mode))
    return 0
