"""Issue 9 items 2–3: every input is either refused with a 4xx or stored; none is a 500 or a dead letter later.

Each case here was a 500 at the route, or a 202 that the worker then dead-lettered or died on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bot.wiring.runtime import Runtime
from tests.conftest import SECRETS
from tests.factories import order_json, signed


async def post(client: httpx.AsyncClient, payload: Any, channel: str = "generic") -> httpx.Response:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    body, headers = signed(SECRETS[channel], raw)
    return await client.post(f"/webhooks/orders/{channel}", content=body, headers=headers)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def tmall_trade(sku_properties: str = "宽度:280cm") -> dict[str, Any]:
    return {"tid": 4187001, "payment": "6200.00", "created": "2025-11-11 00:03:12", "receiver_name": "王女士",
            "receiver_mobile": "13800138000", "receiver_city": "杭州市",
            "orders": {"order": [{"title": "丝绒窗帘", "num": 1, "price": "6200.00", "outer_sku_id": "CUR-V",
                                  "sku_properties_name": sku_properties}]}}


def with_(path: str, value: Any) -> dict[str, Any]:
    order = order_json(1)
    target = order
    *parents, last = path.split(".")
    for p in parents:
        target = target[int(p)] if p.isdigit() else target[p]
    target[last] = value
    return order


REFUSED = {
    "nul in name": with_("customer.name", "王\x00女士"),
    "nul in notes": with_("notes", "a\x00b"),
    "nul in sku": with_("items.0.sku", "CUR\x00"),
    "nul in a custom field": with_("custom_fields", {"k": "v\x00"}),
    "nul in a custom key": with_("custom_fields", {"k\x00": "v"}),
    "deep custom fields": with_("custom_fields", nested(20)),
    "deep attributes": with_("items.0.attributes", {"x": nested(20)}),
    "long custom string": with_("custom_fields", {"k": "x" * 5000}),
    "date overflowing UTC": with_("created_at", "9999-12-31T23:59:59-01:00"),
    "date underflowing UTC": with_("created_at", "0001-01-01T00:00:00+14:00"),
    "big int": with_("custom_fields", {"n": 2**64}),
    "lone surrogate": b'{"external_id": "G1\\ud800", "created_at": "2025-11-11T00:00:00Z", "customer": {"id": "c"},'
                      b' "items": [{"sku": "s", "qty": 1, "unit_price": "1"}], "amount": "1"}',
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_what_the_database_cannot_store_is_422_at_the_route(
    client: httpx.AsyncClient, runtime: Runtime, case: str
) -> None:
    payload = REFUSED[case]
    resp = await post(client, payload)
    assert resp.status_code == 422, resp.text
    if not isinstance(payload, bytes):
        batch = await post(client, {"orders": [order_json(2), payload]})
        assert batch.status_code == 422, batch.text
    assert (await runtime.queue.status()).depth == 0


async def test_deep_nesting_in_a_batch_is_422_not_500(client: httpx.AsyncClient, runtime: Runtime) -> None:
    for depth in (300, 1000):
        resp = await post(client, b'{"orders": [' + b'{"a":' * depth + b"1" + b"}" * depth + b"]}")
        assert resp.status_code == 422, resp.text


async def test_tmall_400_digit_width_is_stored_as_text(client: httpx.AsyncClient, runtime: Runtime) -> None:
    resp = await post(client, tmall_trade("宽度:" + "9" * 400 + "cm;高度:260cm"), channel="tmall")
    assert resp.status_code == 202, resp.text
    await runtime.intake_worker().run(burst=True)
    status = await runtime.queue.status()
    assert (status.depth, status.dead) == (0, 0)
    detail = await runtime.app_services().api.orders.get("tmall:4187001")  # type: ignore[union-attr]
    attrs = detail.order.data.items[0].attributes
    assert attrs["height_cm"] == 260 and attrs["width_cm"] == "9" * 400 + "cm"


async def test_accepted_edge_values_are_stored_not_dead_lettered(client: httpx.AsyncClient, runtime: Runtime) -> None:
    edge = [with_("custom_fields", {"n": 2**63 - 1, "m": -(2**63), "f": 1.5e300, "d": nested(7)}),
            with_("created_at", "2199-12-31T23:00:00+00:00")]
    edge[1]["external_id"] = "EDGE2"
    resp = await post(client, {"orders": edge})
    assert resp.status_code == 202, resp.text
    await runtime.intake_worker().run(burst=True)
    status = await runtime.queue.status()
    assert (status.depth, status.dead) == (0, 0)


# --- /api --------------------------------------------------------------------------------------------------------


@pytest.fixture
async def admin(runtime: Runtime) -> dict[str, str]:
    _, token = await runtime.users.add("ops", "admin", [], None, None, datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("url", [
    "/api/orders?priority=2147483648", "/api/orders?offset=9223372036854775808", "/api/orders?min_amount=1e20",
    "/api/orders?min_amount=NaN", "/api/orders?city=%00", "/api/orders?city=" + "x" * 60,
    "/api/kpis?since=0001-01-01T00:00:00%2B14:00", "/api/kpis?until=9999-12-31T23:59:59-01:00",
    "/api/approvals?status=%00", "/api/orders/%00",
])
async def test_api_parameters_out_of_bounds_are_422(client: httpx.AsyncClient, admin: dict[str, str],
                                                    url: str) -> None:
    resp = await client.get(url, headers=admin)
    assert resp.status_code == 422, (url, resp.text)
    assert resp.json()["error"] == "invalid_request"


@pytest.mark.parametrize("ref", ["2147483648", "9223372036854775808", "99999999999999999999999", "²"])
async def test_api_order_ids_beyond_the_column_are_404(client: httpx.AsyncClient, admin: dict[str, str],
                                                        ref: str) -> None:
    resp = await client.get(f"/api/orders/{ref}", headers=admin)
    assert resp.status_code == 404, resp.text
    note = await client.post(f"/api/orders/{ref}/notes", json={"text": "x"}, headers=admin)
    assert note.status_code == 404, note.text


async def test_api_nul_in_note_or_reason_is_422(client: httpx.AsyncClient, runtime: Runtime,
                                                admin: dict[str, str]) -> None:
    assert (await post(client, order_json(1))).status_code == 202
    await runtime.intake_worker().run(burst=True)
    note = await client.post("/api/orders/generic:G00000001/notes", json={"text": "a\x00b"}, headers=admin)
    assert note.status_code == 422, note.text
    move = await client.post("/api/orders/generic:G00000001/transition", json={"to": "cancelled", "reason": "\x00"},
                             headers=admin)
    assert move.status_code == 422, move.text
