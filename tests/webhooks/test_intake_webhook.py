"""The intake webhook through the ASGI app: what is refused is refused clearly and queues nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from engine.channels import default_adapters
from storage.intake_queue import RedisIntakeQueue
from tests.conftest import SECRETS
from tests.factories import order_json, signed
from webhooks.app import create_app
from webhooks.services import AppServices, WebhookConfig


@pytest.fixture
async def queue(redis: aioredis.Redis) -> RedisIntakeQueue:
    q = RedisIntakeQueue(redis)
    await q.ensure_group()
    return q


@pytest.fixture
async def client(queue: RedisIntakeQueue) -> AsyncIterator[httpx.AsyncClient]:
    config = WebhookConfig(webhook_secrets={k: v.encode() for k, v in SECRETS.items()})
    app = create_app(AppServices(config=config, intake=queue, adapters=default_adapters(), queue_depth=queue.depth))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


async def post(client: httpx.AsyncClient, payload: object, *, channel: str = "generic", secret: str | None = None,
               ts: int | None = None) -> httpx.Response:
    body, headers = signed(secret or SECRETS.get(channel, "x"), payload, ts)
    return await client.post(f"/webhooks/orders/{channel}", content=body, headers=headers)


async def test_valid_order_is_queued_and_answered_202(client: httpx.AsyncClient, queue: RedisIntakeQueue) -> None:
    resp = await post(client, order_json(1))
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": 1}
    assert (await queue.status()).depth == 1


async def test_batch_of_orders_queues_each(client: httpx.AsyncClient, queue: RedisIntakeQueue) -> None:
    resp = await post(client, {"orders": [order_json(i) for i in range(100)]})
    assert resp.status_code == 202
    assert resp.json() == {"accepted": 100}
    assert (await queue.status()).depth == 100


async def test_tmall_shape_is_accepted(client: httpx.AsyncClient, queue: RedisIntakeQueue) -> None:
    trade = {"tid": 4187001, "payment": "6200.00", "created": "2025-11-11 00:03:12", "receiver_name": "王女士",
             "receiver_mobile": "13800138000", "receiver_city": "杭州市",
             "orders": {"order": [{"title": "丝绒窗帘", "num": 1, "price": "6200.00", "outer_sku_id": "CUR-V",
                                   "sku_properties_name": "宽度:3.2m;高度:260cm"}]}}
    resp = await post(client, trade, channel="tmall")
    assert resp.status_code == 202, resp.text
    assert (await queue.status()).depth == 1


@pytest.mark.parametrize(
    ("case", "expected_status", "expected_error"),
    [
        ("bad_signature", 401, "bad_signature"),
        ("timestamp_301s_old", 401, "bad_signature"),
        ("missing_signature", 401, "bad_signature"),
        ("not_json", 422, "invalid_json"),
        ("too_large", 413, "payload_too_large"),
        ("unknown_channel", 404, "unknown_channel"),
    ],
)
async def test_bad_input_is_refused_and_queues_nothing(
    client: httpx.AsyncClient, queue: RedisIntakeQueue, case: str, expected_status: int, expected_error: str
) -> None:
    good = order_json(7)
    if case == "bad_signature":
        resp = await post(client, good, secret="not-the-secret")
    elif case == "timestamp_301s_old":
        resp = await post(client, good, ts=int(time.time()) - 301)
    elif case == "missing_signature":
        resp = await client.post("/webhooks/orders/generic", content=orjson.dumps(good))
    elif case == "not_json":
        resp = await post(client, b"{this is not json")
    elif case == "too_large":
        big = {"orders": [order_json(i) | {"notes": "x" * 1900} for i in range(600)]}
        resp = await post(client, big)
    else:
        resp = await post(client, good, channel="shopify", secret="whatever")
    assert resp.status_code == expected_status, resp.text
    body = resp.json()
    assert body["error"] == expected_error
    assert body["detail"]
    status = await queue.status()
    assert status.depth == 0


async def test_timestamp_within_tolerance_is_accepted(client: httpx.AsyncClient) -> None:
    resp = await post(client, order_json(1), ts=int(time.time()) - 290)
    assert resp.status_code == 202


async def test_schema_errors_list_every_field_path_and_queue_nothing(
    client: httpx.AsyncClient, queue: RedisIntakeQueue
) -> None:
    bad1 = order_json(1)
    bad1["items"][0]["qty"] = 0
    bad1["amount"] = "abc"
    bad2 = order_json(2)
    del bad2["customer"]["id"]
    bad2["unexpected"] = True
    payload = {"orders": [order_json(0), bad1, bad2]}
    resp = await post(client, payload)
    assert resp.status_code == 422
    body = resp.json()
    assert body["error"] == "invalid_order"
    paths = {e["path"] for e in body["errors"]}
    assert paths == {"orders[1].items[0].qty", "orders[1].amount", "orders[2].customer.id", "orders[2].unexpected"}
    assert (await queue.status()).depth == 0


async def test_too_many_orders_in_one_request(client: httpx.AsyncClient, queue: RedisIntakeQueue) -> None:
    resp = await post(client, {"orders": [{"external_id": str(i)} for i in range(1001)]})
    assert resp.status_code == 422
    assert "1000" in resp.json()["detail"]
    assert (await queue.status()).depth == 0


async def test_healthz_reports_queue_depth(client: httpx.AsyncClient) -> None:
    await post(client, order_json(1))
    resp = await client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "queue_depth": 1}


async def test_metrics_are_exposed(client: httpx.AsyncClient) -> None:
    await post(client, order_json(1))
    resp = await client.get("/metrics")
    assert resp.status_code == 200
    assert "orderhub_intake_accepted_total" in resp.text
    assert "orderhub_queue_depth" in resp.text
