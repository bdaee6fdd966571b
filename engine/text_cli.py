"""The command line's words in Chinese (default) and English: one language per installation (ORDERHUB_LANGUAGE).

Kept apart from the chat catalogue (engine/catalogs/cli.toml, not chat.toml) so the terminal and the chat can grow
without colliding; `tc` works like `t`.
"""

from __future__ import annotations

from typing import Any

from engine.catalog import Catalog

CLI = Catalog.load("cli")  # the terminal's texts: package data, engine/catalogs/cli.toml (see engine.catalog)
tc = CLI.t  # the command-line string `key` in `language` (Chinese when unknown), formatted with `kw`

# What a person calls each import column (the reason names the field; the table names the column as in the file).
FIELD_NAMES: dict[str, dict[str, str]] = {
    "external_id": {"zh": "订单号", "en": "order number"},
    "created_at": {"zh": "下单时间", "en": "order time"},
    "channel": {"zh": "渠道", "en": "channel"},
    "customer_id": {"zh": "客户编号", "en": "customer id"},
    "customer_name": {"zh": "客户姓名", "en": "customer name"},
    "phone": {"zh": "电话", "en": "phone"},
    "city": {"zh": "城市", "en": "city"},
    "tier": {"zh": "客户等级", "en": "customer tier"},
    "sku": {"zh": "商品编码", "en": "SKU"},
    "item_name": {"zh": "商品名称", "en": "item name"},
    "qty": {"zh": "数量", "en": "quantity"},
    "unit_price": {"zh": "单价", "en": "unit price"},
    "amount": {"zh": "金额", "en": "amount"},
    "currency": {"zh": "币种", "en": "currency"},
    "notes": {"zh": "备注", "en": "remark"},
    "items": {"zh": "商品", "en": "items"},
    "base": {"zh": "基地", "en": "base"},
    "quantity": {"zh": "库存数量", "en": "quantity"},
}


def field_name(column: str, language: str = "zh") -> str:
    names = FIELD_NAMES.get(column)
    if names:
        return names.get(language, names["zh"])
    return column.split(":", 1)[-1]


_PYDANTIC_REASONS = {
    "missing": "r.missing", "string_too_short": "r.missing", "too_short": "r.missing",
    "datetime_parsing": "r.not_date", "datetime_from_date_parsing": "r.not_date", "timezone_aware": "r.not_date",
    "datetime_type": "r.not_date",
    "int_parsing": "r.not_int", "int_from_float": "r.not_int", "int_type": "r.not_int",
    "decimal_parsing": "r.not_number", "decimal_type": "r.not_number", "float_parsing": "r.not_number",
    "greater_than_equal": "r.ge", "greater_than": "r.ge",
    "less_than_equal": "r.le", "less_than": "r.le",
    "string_too_long": "r.too_long", "too_long": "r.too_many",
    "decimal_max_places": "r.decimals", "decimal_max_digits": "r.digits", "decimal_whole_digits": "r.digits",
    "string_pattern_mismatch": "r.pattern",
    "extra_forbidden": "r.unknown_column",
}


def pydantic_reason(err: dict[str, Any], column: str, language: str = "zh") -> str:
    """A pydantic error as a sentence about the column a person fills in, in their language."""
    key = _PYDANTIC_REASONS.get(str(err.get("type")), "r.invalid")
    ctx = err.get("ctx") or {}
    limit = next((ctx[k] for k in ("ge", "gt", "le", "lt", "max_length", "decimal_places", "max_digits", "whole_digits")
                  if k in ctx), "")
    return tc(key, language, field=field_name(column, language), limit=limit)
