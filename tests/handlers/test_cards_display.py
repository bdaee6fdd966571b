"""Cards and customer replies show people's words, not keys: attributes and custom fields by display name (from the
rules file, over defaults for the common ones)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.settings import BUNDLED_RULES
from bot.wiring.runtime import show_field_names
from engine.order import Order, OrderData
from engine.rules import load_rules
from engine.stages import Stage
from handlers import cards
from handlers.chat_ports import ChatOrderView

NOW = datetime(2025, 11, 11, 2, 0, tzinfo=UTC)


def _view() -> ChatOrderView:
    data = OrderData.model_validate({
        "external_id": "WX-1", "created_at": NOW.isoformat(),
        "customer": {"id": "C1", "name": "王女士", "phone": "13800138000", "city": "杭州"},
        "items": [{"sku": "CUR-1", "name": "遮光窗帘", "qty": 1, "unit_price": "2100.00",
                   "attributes": {"fabric_batch": "B2025-20", "width_cm": 360, "height_cm": 280}}],
        "amount": "2100.00", "custom_fields": {"install_date": "2025-11-20", "floor": "12"},
    })
    return ChatOrderView(Order(1, "generic", data, Stage.DESIGNING, NOW, region="华东"), "v1")


@pytest.fixture(autouse=True)
def _defaults():
    cards.set_field_names({})
    yield
    cards.set_field_names({})


def test_attributes_and_custom_fields_in_peoples_words() -> None:
    view = _view()
    [line] = cards.item_lines(view, "zh")
    assert line.endswith("宽 360 cm × 高 280 cm · 面料批次 B2025-20")
    fields = dict(cards.staff_order_fields(view, "zh", "Asia/Shanghai"))
    assert fields["自定义字段"].startswith("安装日期 2025-11-20")
    text = cards.customer_status_text(view, "zh", "Asia/Shanghai")
    assert "宽 360 cm × 高 280 cm" in text and "width_cm" not in text
    assert "Width 360 cm × Height 280 cm · Fabric batch B2025-20" in cards.item_lines(view, "en")[0]


def test_the_rules_file_names_a_merchants_own_fields() -> None:
    text = BUNDLED_RULES.read_text(encoding="utf-8") + (
        "\nfield_names:\n  floor: {name: {zh: 楼层, en: Floor}}\n  fabric_batch: {name: 布料批号}\n")
    show_field_names(load_rules(text, "rules.yaml"))
    view = _view()
    assert "楼层 12" in dict(cards.staff_order_fields(view, "zh", "Asia/Shanghai"))["自定义字段"]
    assert cards.item_lines(view, "zh")[0].endswith("宽 360 cm × 高 280 cm · 布料批号 B2025-20")
    assert Decimal("2100.00") == view.order.data.amount
