"""Realistic sample orders for tests, benchmarks and the demo (curtains: sizes, fabrics, cities)."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from webhooks.signing import sign

CITIES = ["杭州", "上海", "南京", "苏州", "宁波", "广州", "深圳", "北京", "天津", "成都", "重庆"]
FABRICS = [("CUR-LINEN", "亚麻遮光窗帘"), ("CUR-VELVET", "丝绒窗帘"), ("CUR-SHEER", "纱帘"), ("BLD-ROLLER", "卷帘")]
NAMES = ["王女士", "李先生", "张女士", "刘先生", "陈女士", "杨先生", "赵女士", "黄先生"]


def order_json(i: int, *, amount: Decimal | None = None, city: str | None = None, rng: random.Random | None = None,
               tier: str | None = None) -> dict[str, Any]:
    rng = rng or random.Random(i)
    sku, name = rng.choice(FABRICS)
    width = rng.choice([150, 200, 240, 280, 320, 400])
    qty = rng.randint(1, 4)
    unit = (amount / qty).quantize(Decimal("0.01")) if amount is not None else Decimal(rng.randint(150, 5000))
    total = unit * qty
    return {
        "external_id": f"G{i:08d}",
        "channel": "generic",
        "created_at": (datetime(2025, 11, 11, tzinfo=UTC) + timedelta(seconds=i)).isoformat(),
        "customer": {"id": f"C{i % 5000:05d}", "name": rng.choice(NAMES), "phone": f"138{i % 100000000:08d}",
                     "city": city or rng.choice(CITIES), "tier": tier or ("vip" if i % 10 == 0 else "normal")},
        "items": [{"sku": f"{sku}-{width}", "name": name, "qty": qty, "unit_price": str(unit),
                   "attributes": {"width_cm": width, "height_cm": rng.choice([220, 260, 280]),
                                  "fabric_batch": f"B2025-{rng.randint(1, 60):02d}"}}],
        "amount": str(total),
        "currency": "CNY",
        "custom_fields": {"install_date": "2025-11-20", "measurement_pdf": None},
        "notes": rng.choice(["", "请周末安装", "加急", "需要上门测量"]),
    }


def signed(secret: str, payload: Any, ts: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    header = sign(secret.encode(), body, int(time.time()) if ts is None else ts)
    return body, {"X-OrderHub-Signature": header, "Content-Type": "application/json"}
