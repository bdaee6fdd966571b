"""Realistic sample orders for the demo and the benchmarks: curtains and blinds in real sizes, fabrics, cities."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

CITIES = ["杭州", "上海", "南京", "苏州", "宁波", "广州", "深圳", "北京", "天津", "成都", "重庆"]
PRODUCTS = [
    ("CUR-LINEN", "亚麻遮光窗帘"), ("CUR-VELVET", "丝绒窗帘"), ("CUR-SHEER", "白纱帘"), ("BLD-ROLLER", "电动卷帘"),
    ("BLD-HONEY", "蜂巢帘"), ("ACC-TRACK", "静音轨道"), ("SOFA-3S", "布艺三人沙发"),
]
NAMES = ["王女士", "李先生", "张女士", "刘先生", "陈女士", "杨先生", "赵女士", "黄先生", "周女士", "吴先生"]
NOTES = ["", "", "", "请周末安装", "加急，客户下周入住", "需要上门测量", "发票抬头：杭州某某科技有限公司", "飘窗，尺寸见图纸"]


def sample_order(i: int, prefix: str, start: datetime | None = None, rng: random.Random | None = None
                 ) -> dict[str, Any]:
    """One canonical order; amounts range from ~300 to ~20,000 CNY, a few per hundred above the approval line."""
    rng = rng or random.Random(i)
    # Order values are roughly log-normal: most a few thousand yuan, ~1 in 8 above the 5,000 approval line.
    target = min(max(Decimal(round(rng.lognormvariate(7.6, 0.8))), Decimal(300)), Decimal(20000))
    n_lines = rng.choice([1, 1, 1, 1, 2, 2, 3])
    weights = [rng.random() + 0.2 for _ in range(n_lines)]
    lines = []
    for w in weights:
        sku, name = rng.choice(PRODUCTS)
        width = rng.choice([120, 150, 200, 240, 280, 320, 360, 400, 480])
        qty = rng.choice([1, 1, 2, 2, 3, 4])
        share = target * Decimal(w / sum(weights))
        unit = max((share / qty).quantize(Decimal("1.00")), Decimal("30.00"))
        lines.append({"sku": f"{sku}-{width}", "name": name, "qty": qty, "unit_price": str(unit),
                      "attributes": {"width_cm": width, "height_cm": rng.choice([220, 250, 260, 270, 280]),
                                     "fabric_batch": f"B2025-{rng.randint(1, 60):02d}"}})
    amount = sum(Decimal(line["unit_price"]) * line["qty"] for line in lines)
    created = (start or datetime(2025, 11, 11, tzinfo=UTC)) + timedelta(seconds=i * 7)
    return {
        "external_id": f"{prefix}{i:06d}",
        "channel": "generic",
        "created_at": created.isoformat(),
        "customer": {"id": f"C{rng.randint(1, 3000):05d}", "name": rng.choice(NAMES),
                     "phone": f"1{rng.choice('3589')}{rng.randint(0, 999999999):09d}", "city": rng.choice(CITIES),
                     "tier": "vip" if rng.random() < 0.1 else "normal"},
        "items": lines,
        "amount": str(amount),
        "currency": "CNY",
        "custom_fields": {"install_date": (created + timedelta(days=rng.randint(7, 30))).date().isoformat(),
                          "measurement_pdf": None},
        "notes": rng.choice(NOTES),
    }
