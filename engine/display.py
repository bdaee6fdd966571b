"""People's words for item attributes and custom fields: `width_cm=360, height_cm=280, fabric_batch=B2025-20` →
"宽 360 cm × 高 280 cm · 面料批次 B2025-20". Names come from the rules file (`field_names:`), over these defaults
for the common ones, so a merchant can name their own fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldName:
    zh: str
    en: str = ""
    unit: str = ""

    def get(self, language: str) -> str:
        return (self.en or self.zh) if language == "en" else self.zh


DEFAULT_FIELD_NAMES: dict[str, FieldName] = {
    "width_cm": FieldName("宽", "Width", "cm"),
    "height_cm": FieldName("高", "Height", "cm"),
    "length_cm": FieldName("长", "Length", "cm"),
    "depth_cm": FieldName("深", "Depth", "cm"),
    "fabric_batch": FieldName("面料批次", "Fabric batch"),
    "fabric": FieldName("面料", "Fabric"),
    "color": FieldName("颜色", "Colour"),
    "material": FieldName("材质", "Material"),
    "style": FieldName("款式", "Style"),
    "room": FieldName("房间", "Room"),
    "product_type": FieldName("品类", "Product type"),
    "install_date": FieldName("安装日期", "Install date"),
    "install_address": FieldName("安装地址", "Install address"),
    "delivery_date": FieldName("送货日期", "Delivery date"),
    "province": FieldName("省份", "Province"),
}
DIMENSIONS = ("width_cm", "height_cm", "length_cm", "depth_cm")  # shown together, joined with ×


def _humanise(key: str) -> str:
    return key.removesuffix("_cm").replace("_", " ")


def _one(key: str, value: Any, names: Mapping[str, FieldName], language: str) -> str:
    name = names.get(key)
    if name is None:
        return f"{_humanise(key)} {value}"
    unit = f" {name.unit}" if name.unit else ""
    return f"{name.get(language)} {value}{unit}"


def describe(values: Mapping[str, Any], names: Mapping[str, FieldName] | None = None, language: str = "zh",
             limit: int = 8) -> str:
    """Dimensions first (宽 × 高), then the rest, each by its display name; empty values left out."""
    names = {**DEFAULT_FIELD_NAMES, **(names or {})}
    shown = {k: v for k, v in values.items() if v not in (None, "")}
    dims = [_one(k, shown[k], names, language) for k in DIMENSIONS if k in shown]
    rest = [_one(k, v, names, language) for k, v in shown.items() if k not in DIMENSIONS][:limit]
    parts = [" × ".join(dims)] if dims else []
    return " · ".join(parts + rest)


def names_from_rules(field_names: Mapping[str, Any]) -> dict[str, FieldName]:
    """The rules file's `field_names` (FieldLabel models) as FieldName, over the defaults."""
    out = dict(DEFAULT_FIELD_NAMES)
    for key, label in field_names.items():
        out[key] = FieldName(label.name.zh, label.name.en, label.unit)
    return out


# Channels and orders as business people name them: the channel's display name and the channel's own order number,
# never the internal key `tmall:TM…` (which exists to keep two channels' numbers apart in the database).
CHANNEL_NAMES: dict[str, dict[str, str]] = {
    "tmall": {"zh": "天猫", "en": "Tmall"},
    "generic": {"zh": "接口", "en": "the order API"},
    "import": {"zh": "导入文件", "en": "an import file"},
}
_CHANNEL_SHORT = {"generic": {"zh": "自有渠道", "en": "own shop"},
                  "import": {"zh": "导入", "en": "imported"}}  # next to an order number, "接口" reads oddly


def channel_name(channel: str, language: str = "zh") -> str:
    """A channel as business people call it (天猫, not `tmall`); an unknown channel keeps its own name."""
    names = CHANNEL_NAMES.get(channel)
    return names.get(language, names["zh"]) if names else channel


def order_words(channel: str, external_id: str, language: str = "zh") -> str:
    """`TM20251111-000123（天猫）`: the channel's own order number and, in brackets, the channel's display name —
    for lists that mix channels; a card about one order shows the number alone."""
    names = _CHANNEL_SHORT.get(channel) or CHANNEL_NAMES.get(channel)
    name = names.get(language, names["zh"]) if names else channel
    return f"{external_id}（{name}）" if language != "en" else f"{external_id} ({name})"


def order_words_from_key(key: str, language: str = "zh") -> str:
    """`tmall:TM1` (an order's internal key, as stored in digests and trend payloads) in people's words."""
    channel, sep, external_id = key.partition(":")
    return order_words(channel, external_id, language) if sep else key
