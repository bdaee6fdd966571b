"""The webhook route (through the whole ASGI app) and the Redis queue + consumer behind it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from storage.stream_queue import UpdateQueue
from bot.platforms.telegram.runner import SECRET_HEADER, UpdateConsumer, make_router
from engine.channels import default_adapters
from handlers.chat import CommandReceived, InboundEvent, TextReceived
from storage import keys
from webhooks.app import create_app
from webhooks.services import AppServices, WebhookConfig

SECRET = "s3cret_Token-value"


def update(update_id: int, text: str = "/help") -> dict[str, Any]:
    return {"update_id": update_id, "message": {"message_id": update_id, "date": 1731290000, "text": text,
                                                "chat": {"id": 111, "type": "private", "first_name": "丽"},
                                                "from": {"id": 111, "is_bot": False, "first_name": "丽"}}}


@pytest.fixture
async def client(queue: UpdateQueue) -> AsyncIterator[httpx.AsyncClient]:
    async def no_depth() -> int:
        return 0

    services = AppServices(config=WebhookConfig(webhook_secrets={}), intake=None,  # type: ignore[arg-type]
                           adapters=default_adapters(), queue_depth=no_depth,
                           extra_routers=[make_router(SECRET, queue.push)])
    app = create_app(services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


@pytest.mark.parametrize("headers", [{}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET + "x"},
                                     {SECRET_HEADER: ""}, {"X-Other": SECRET}])
async def test_bad_or_missing_secret_is_401_and_queues_nothing(client: httpx.AsyncClient, queue: UpdateQueue,
                                                               headers: dict[str, str]) -> None:
    resp = await client.post("/webhooks/telegram", json=update(1), headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized" and resp.json()["detail"]
    assert await queue.depth() == 0


async def test_good_secret_queues_the_raw_update(client: httpx.AsyncClient, queue: UpdateQueue) -> None:
    body = json.dumps(update(5, "TM123 到哪了"), ensure_ascii=False).encode()
    resp = await client.post("/webhooks/telegram", content=body, headers={SECRET_HEADER: SECRET})
    assert resp.status_code == 200 and resp.json() == {"ok": True}
    [entry] = await queue.read("c1", count=10)
    assert entry.raw == body and entry.attempts == 0
    assert await queue.redis.type(keys.TELEGRAM_UPDATES) == b"stream"


async def test_redelivered_update_is_queued_once(client: httpx.AsyncClient, queue: UpdateQueue) -> None:
    for _ in range(3):  # Telegram resends when it did not get our 200 in time
        resp = await client.post("/webhooks/telegram", json=update(9), headers={SECRET_HEADER: SECRET})
        assert resp.status_code == 200
    assert await queue.depth() == 1


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"message": {}}', b'{"update_id": "7"}',
                                  b'{"update_id": true}'])
async def test_a_body_that_is_no_update_is_400(client: httpx.AsyncClient, queue: UpdateQueue, body: bytes) -> None:
    resp = await client.post("/webhooks/telegram", content=body, headers={SECRET_HEADER: SECRET})
    assert resp.status_code == 400 and resp.json()["error"] == "bad_request"
    assert await queue.depth() == 0


async def test_queue_unavailable_is_503_so_telegram_retries() -> None:
    async def broken(update_id: int, raw: bytes) -> None:
        raise ConnectionError("redis down")

    app = create_app(AppServices(config=WebhookConfig(webhook_secrets={}), intake=None,  # type: ignore[arg-type]
                                 adapters={}, queue_depth=lambda: None,  # type: ignore[arg-type,return-value]
                                 extra_routers=[make_router(SECRET, broken)]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        resp = await c.post("/webhooks/telegram", json=update(1), headers={SECRET_HEADER: SECRET})
    assert resp.status_code == 503


@pytest.mark.parametrize("secret", ["", "has space", "x" * 257, "ü"])
def test_router_refuses_an_unusable_secret(secret: str) -> None:
    async def sink(update_id: int, raw: bytes) -> None: ...

    with pytest.raises(ValueError):
        make_router(secret, sink)


# --- consumer -----------------------------------------------------------------------------------------------------


class Recorder:
    def __init__(self, fail_times: int = 0) -> None:
        self.events: list[InboundEvent] = []
        self.fail_times = fail_times

    async def __call__(self, event: InboundEvent) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("database away")
        self.events.append(event)


async def test_consumer_converts_and_hands_events_to_the_core_in_order(queue: UpdateQueue) -> None:
    for i, text in enumerate(["/order TM1", "到哪了", "/help"]):
        await queue.push(i, json.dumps(update(i, text)).encode())
    await queue.push(99, json.dumps({"update_id": 99, "edited_message": update(99)["message"]}).encode())
    handle = Recorder()

    assert await UpdateConsumer(queue, handle, consumer="c1").drain() == 4

    assert [type(e) for e in handle.events] == [CommandReceived, TextReceived, CommandReceived]
    assert handle.events[0] == CommandReceived(handle.events[0].sender, "order", ("TM1",))
    assert await queue.depth() == 0  # acknowledged and removed, the ignored one too


async def test_failed_handling_is_retried_then_succeeds(queue: UpdateQueue) -> None:
    await queue.push(1, json.dumps(update(1)).encode())
    handle = Recorder(fail_times=2)
    consumer = UpdateConsumer(queue, handle, consumer="c1", max_attempts=3)
    await consumer.drain()
    assert len(handle.events) == 1 and await queue.depth() == 0


async def test_poison_update_is_dropped_after_max_attempts(queue: UpdateQueue) -> None:
    await queue.push(1, json.dumps(update(1)).encode())
    await queue.push(2, b"{broken json")
    handle = Recorder(fail_times=10)
    await UpdateConsumer(queue, handle, consumer="c1", max_attempts=3).drain()
    assert handle.fail_times == 7  # three attempts, then dropped
    assert await queue.depth() == 0


async def test_updates_left_by_a_crashed_consumer_are_reclaimed(queue: UpdateQueue) -> None:
    await queue.push(1, json.dumps(update(1)).encode())
    [taken] = await queue.read("crashed", count=10)  # delivered, never acknowledged
    handle = Recorder()
    consumer = UpdateConsumer(queue, handle, consumer="c2", claim_idle_s=0.0)
    assert await consumer.drain() == 0  # nothing new…
    [entry] = await queue.reclaim("c2", min_idle_ms=0)  # …but the pending one can be taken over
    assert entry.id == taken.id
    assert await consumer.process(entry)
    assert len(handle.events) == 1 and await queue.depth() == 0
