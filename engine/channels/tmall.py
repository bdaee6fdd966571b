"""The Taobao/Tmall trade push (taobao.trade.fullinfo shape) mapped into the canonical order.

Tmall sends times as naive "YYYY-MM-DD HH:MM:SS" in Beijing time, money as strings, and SKU attributes as
"key:value;key:value" in `sku_properties_name`; custom curtain sizes arrive there (宽度:280cm;高度:260cm).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from engine.order import Customer, Item, OrderData

BEIJING = timezone(timedelta(hours=8))
_NUMBER_WITH_UNIT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(cm|mm|m|厘米|米)?\s*$")
_ATTRIBUTE_NAMES = {"宽度": "width_cm", "高度": "height_cm", "颜色分类": "color", "面料批次": "fabric_batch"}


def _beijing_time(value: Any) -> Any:
    if isinstance(value, str) and len(value) == 19 and value[10] == " ":
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    return value


class _Lenient(BaseModel):
    # Taobao adds fields over time; unknown ones are ignored rather than refused.
    model_config = ConfigDict(extra="ignore")


class TmallSubOrder(_Lenient):
    oid: str | int | None = None
    outer_sku_id: str | None = None
    sku_id: str | int | None = None
    title: str = ""
    num: Annotated[int, Field(ge=1)]
    price: Decimal
    sku_properties_name: str = ""


class TmallSubOrders(_Lenient):
    order: Annotated[list[TmallSubOrder], Field(min_length=1)]


class TmallTrade(_Lenient):
    tid: str | int
    payment: Decimal
    created: Annotated[datetime, BeforeValidator(_beijing_time)]
    buyer_nick: str = ""
    buyer_open_uid: str | None = None
    receiver_name: str = ""
    receiver_mobile: str = ""
    receiver_state: str = ""
    receiver_city: str = ""
    receiver_district: str = ""
    buyer_message: str = ""
    seller_memo: str = ""
    orders: TmallSubOrders
    vip_level: str | None = None


def parse_sku_properties(text: str) -> dict[str, Any]:
    """'宽度:280cm;高度:260cm;颜色分类:米白' → {'width_cm': 280, 'height_cm': 260, 'color': '米白'}."""
    attrs: dict[str, Any] = {}
    for part in text.split(";"):
        key, sep, value = part.partition(":")
        if not sep:
            continue
        name = _ATTRIBUTE_NAMES.get(key.strip(), key.strip())
        match = _NUMBER_WITH_UNIT.match(value)
        if match and name.endswith("_cm"):
            number, unit = float(match.group(1)), match.group(2) or "cm"
            factor = {"cm": 1, "厘米": 1, "mm": 0.1, "m": 100, "米": 100}[unit]
            cm = number * factor
            attrs[name] = int(cm) if cm == int(cm) else cm
        else:
            attrs[name] = value.strip()
    return attrs


# What Taobao puts in receiver_city for a county-level city directly under its province (省直辖县级, e.g. 济源,
# 仙桃, 石河子): nothing or a placeholder, with the city itself in receiver_district.
_COUNTY_LEVEL_PLACEHOLDERS = frozenset({"", "省直辖县级行政区划", "自治区直辖县级行政区划", "省直辖县级行政单位", "直辖县级"})


def receiver_city(trade: TmallTrade) -> str:
    """The customer's city: receiver_city, or receiver_district for a county-level city under its province."""
    city = trade.receiver_city.strip()
    if city in _COUNTY_LEVEL_PLACEHOLDERS:
        city = trade.receiver_district.strip()
    return city.removesuffix("市")


def tmall_to_order(raw: dict[str, Any]) -> OrderData:
    trade = TmallTrade.model_validate(raw)
    city = receiver_city(trade)
    items = [
        Item(
            sku=str(o.outer_sku_id or o.sku_id or o.oid or "UNKNOWN"),
            name=o.title[:200],
            qty=o.num,
            unit_price=o.price,
            attributes=parse_sku_properties(o.sku_properties_name),
        )
        for o in trade.orders.order
    ]
    notes = "；".join(x for x in (trade.buyer_message, trade.seller_memo) if x)
    return OrderData(
        external_id=str(trade.tid),
        channel="tmall",
        created_at=trade.created,
        customer=Customer(
            id=trade.buyer_open_uid or trade.buyer_nick or trade.receiver_mobile or str(trade.tid),
            name=trade.receiver_name,
            phone=trade.receiver_mobile,
            city=city,
            tier="vip" if trade.vip_level and trade.vip_level not in ("c", "0", "asso_vip") else "normal",
        ),
        items=items,
        amount=trade.payment,
        currency="CNY",
        custom_fields={"province": trade.receiver_state} if trade.receiver_state else {},
        notes=notes[:2000],
    )
