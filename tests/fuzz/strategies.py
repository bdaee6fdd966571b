"""Hypothesis strategies for hostile-but-signed intake bodies and API parameters.

The size of a run: ORDERHUB_FUZZ_EXAMPLES (default small, so the suite stays fast); the closing notes of issue 9
give the counts of a longer run.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.factories import order_json

EXAMPLES = int(os.environ.get("ORDERHUB_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not os.environ.get("ORDERHUB_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])

# Text as an attacker writes it: NUL, control characters, CJK, very long runs, surrogates sent as escapes later.
nasty_chars = st.sampled_from(["\x00", "\n", "\u202e", "\ufeff", "窗", "😀", "'", '"', "\\", "%", " "])
text = st.one_of(
    st.text(max_size=20),
    st.lists(st.one_of(nasty_chars, st.characters()), max_size=30).map("".join),
    st.integers(0, 3000).map(lambda n: "x" * n),
)
big_ints = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([2**63, 2**63 - 1, -(2**63), -(2**63) - 1, 2**64]))
numbers = st.one_of(big_ints, st.floats(allow_nan=False, allow_infinity=False), st.just(1e308))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=12,
)


def deep(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = {"d": value}
    return value


free_json = st.one_of(st.dictionaries(text, json_values, max_size=4), st.integers(0, 40).map(lambda d: {"k": deep(d)}))

offsets = st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
datetimes = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.builds(lambda d, tz: d.replace(tzinfo=tz), st.datetimes(), offsets),
).map(lambda d: d.isoformat())
times = st.one_of(datetimes, st.sampled_from(["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+14:00"]), text)
money = st.one_of(st.decimals(allow_nan=False, allow_infinity=False).map(str), numbers, text,
                  st.sampled_from(["1e20", "-0", "0.001", "99999999999999.99", "NaN"]))

# (path, value strategy): one or more of these replace parts of a valid order
MUTATIONS: list[tuple[str, st.SearchStrategy[Any]]] = [
    ("external_id", text), ("channel", st.one_of(st.none(), text, st.just("generic"))),
    ("created_at", times), ("customer.id", text), ("customer.name", text), ("customer.phone", text),
    ("customer.city", text), ("customer.tier", text), ("amount", money), ("currency", text),
    ("custom_fields", st.one_of(free_json, json_values)), ("notes", text),
    ("items.0.sku", text), ("items.0.name", text), ("items.0.qty", st.one_of(big_ints, money)),
    ("items.0.unit_price", money), ("items.0.attributes", st.one_of(free_json, json_values)),
    ("items", st.lists(st.just(order_json(7)["items"][0]), max_size=3)),
]


def set_path(order: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target: Any = order
    for p in parents:
        if isinstance(target, list) and p.isdigit() and int(p) < len(target):
            target = target[int(p)]
        elif isinstance(target, dict) and p in target:
            target = target[p]
        else:
            return
    if isinstance(target, list):
        if target:
            target[int(last)] = value
    else:
        target[last] = value


@st.composite
def generic_orders(draw: st.DrawFn) -> dict[str, Any]:
    order = order_json(draw(st.integers(0, 10_000)))
    for path, strategy in draw(st.lists(st.sampled_from(MUTATIONS), min_size=0, max_size=3, unique_by=lambda m: m[0])):
        set_path(order, path, draw(strategy))
    return order


@st.composite
def tmall_trades(draw: st.DrawFn) -> dict[str, Any]:
    widths = st.one_of(st.integers(0, 10**6).map(str), st.integers(1, 500).map(lambda n: "9" * n), text)
    sku = draw(st.one_of(
        st.builds(lambda w, u: f"宽度:{w}{u};高度:260cm;颜色分类:米白", widths, st.sampled_from(["cm", "mm", "m", "米", ""])),
        text))
    trade: dict[str, Any] = {
        "tid": draw(st.one_of(st.integers(1, 10**12), big_ints, text)),
        "payment": draw(st.one_of(st.just("6200.00"), money)),
        "created": draw(st.one_of(st.just("2025-11-11 00:03:12"), times,
                                  st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")))),
        "receiver_name": draw(st.one_of(st.just("王女士"), text)),
        "receiver_mobile": draw(st.one_of(st.just("13800138000"), text)),
        "receiver_city": draw(st.one_of(st.just("杭州市"), text)),
        "buyer_message": draw(text), "vip_level": draw(st.one_of(st.none(), text)),
        "orders": {"order": [{"title": draw(text), "num": draw(st.one_of(st.integers(1, 5), big_ints)),
                              "price": draw(st.one_of(st.just("6200.00"), money)),
                              "outer_sku_id": draw(st.one_of(st.just("CUR-V"), text)),
                              "sku_properties_name": sku}]},
        "extra": draw(json_values),
    }
    return trade


def encode(payload: Any) -> bytes:
    """JSON as a sender writes it: stdlib json keeps integers of any size (orjson refuses them)."""
    return json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
