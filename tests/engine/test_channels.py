"""Channel adapters: the Tmall trade push mapped into the canonical order, and the batch envelope."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from engine.channels import BatchShapeError, default_adapters, split_orders
from engine.channels.tmall import parse_sku_properties, tmall_to_order
from handlers.intake import payload_hash
from tests.factories import order_json

TRADE = {
    "tid": 4187001, "payment": "3780.00", "created": "2025-11-11 00:03:12", "buyer_nick": "tb_wang",
    "receiver_name": "王女士", "receiver_mobile": "13800138000", "receiver_state": "浙江省", "receiver_city": "杭州市",
    "buyer_message": "请周末安装", "seller_memo": "", "some_new_taobao_field": 1,
    "orders": {"order": [{"oid": 1, "title": "亚麻遮光窗帘", "num": 2, "price": "1890.00", "outer_sku_id": "CUR-LINEN",
                          "sku_properties_name": "宽度:2.8m;高度:260cm;颜色分类:米白"}]},
}


def test_tmall_trade_maps_to_the_canonical_order() -> None:
    o = tmall_to_order(TRADE)
    assert (o.external_id, o.channel, o.amount) == ("4187001", "tmall", Decimal("3780.00"))
    assert o.created_at.isoformat() == "2025-11-11T00:03:12+08:00"
    assert (o.customer.city, o.customer.phone, o.customer.id) == ("杭州", "13800138000", "tb_wang")
    assert o.items[0].attributes == {"width_cm": 280, "height_cm": 260, "color": "米白"}
    assert o.notes == "请周末安装"
    assert o.custom_fields == {"province": "浙江省"}


@pytest.mark.parametrize(
    ("city", "district", "expected"),
    [
        ("", "济源市", "济源"),  # 省直辖县级: Taobao leaves receiver_city empty, the city is the district
        ("省直辖县级行政区划", "仙桃市", "仙桃"),
        ("自治区直辖县级行政区划", "石河子市", "石河子"),
        ("杭州市", "西湖区", "杭州"),  # an ordinary city keeps its city, not its district
    ],
)
def test_county_level_cities_come_from_the_district(city: str, district: str, expected: str) -> None:
    o = tmall_to_order({**TRADE, "receiver_state": "河南省", "receiver_city": city, "receiver_district": district})
    assert o.customer.city == expected


def test_a_county_level_city_gets_its_region() -> None:
    from engine.rules import Facts, evaluate, load_rules
    from engine.order import Order
    from engine.stages import Stage
    from tests.engine.rules_support import T0, edited

    rules = load_rules(edited("cities: [北京, 天津]", "cities: [北京, 天津, 济源]"))
    data = tmall_to_order({**TRADE, "receiver_city": "", "receiver_district": "济源市"})
    order = Order(id=0, channel="tmall", data=data, stage=Stage.PENDING_CONFIRM, stage_entered_at=T0)
    assert evaluate(order, Facts(), rules, T0).region == "华北"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("宽度:280cm;高度:260cm", {"width_cm": 280, "height_cm": 260}),
        ("宽度:2.8米", {"width_cm": 280}),
        ("宽度:2800mm", {"width_cm": 280}),
        ("宽度:150.5cm", {"width_cm": 150.5}),
        ("颜色分类:浅灰;款式:打孔", {"color": "浅灰", "款式": "打孔"}),
        ("", {}),
        ("garbage", {}),
    ],
)
def test_sku_properties(text: str, expected: dict) -> None:
    assert parse_sku_properties(text) == expected


def test_tmall_trade_without_sub_orders_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        tmall_to_order({**TRADE, "orders": {"order": []}})
    assert err.value.errors()[0]["loc"] == ("orders", "order")


@pytest.mark.parametrize(
    ("payload", "n"),
    [({"external_id": "1"}, 1), ({"orders": [{"a": 1}, {"b": 2}]}, 2)],
)
def test_split_orders(payload: object, n: int) -> None:
    assert len(split_orders(payload)) == n


@pytest.mark.parametrize("payload", [[1, 2], "x", {"orders": []}, {"orders": [1]}, {"orders": "x"}])
def test_split_orders_refuses_bad_envelopes(payload: object) -> None:
    with pytest.raises(BatchShapeError):
        split_orders(payload)


def test_generic_parse_from_json_text_equals_the_dict_path() -> None:
    """The worker parses queued text straight into the model; it must read exactly what the dict path reads."""
    adapter = default_adapters()["generic"]
    raws = [order_json(i) for i in range(50)]
    raws[0] |= {"amount": 12.34, "notes": "含 \"引号\" \\ 和 \u2028", "custom_fields": {"n": [1, 2.5, None], "big": 2**60}}
    raws[1] |= {"amount": "0.10", "created_at": "2025-11-11T09:30:15.000500+08:00"}
    for raw in raws:
        body = orjson.dumps(raw)
        assert adapter.parse(body) == adapter.to_order(orjson.loads(body))
        assert payload_hash(adapter.parse(body)) == payload_hash(adapter.to_order(raw))
    with pytest.raises(ValidationError):
        adapter.parse(b'{"external_id": "X"}')
    with pytest.raises(ValidationError):
        adapter.parse(b"not json")
