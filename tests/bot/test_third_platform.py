"""A third chat platform is its own package plus one registration line (tests/fakeplatform/), and the shared
handlers then work on it: an approval round trip through the fake, taking the paths its capabilities choose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.platforms import registry
from bot.processes.asgi import create_asgi_app
from bot.processes.chat_runtime import SERVE, ChatRuntime
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from storage.models import ApprovalRow, OrderRow
from tests.conftest import SECRETS
from tests.factories import order_json, signed
from tests.fakeplatform import FAKE, FakePlatform


@pytest.fixture
def fake_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry, "PLATFORMS", list(registry.PLATFORMS))  # undone after the test
    registry.register(FAKE)  # the one line a third platform needs
    yield


@pytest.fixture
async def stack(fake_registered: None, settings: Settings,
                db: AsyncEngine) -> AsyncIterator[tuple[Runtime, ChatRuntime, httpx.AsyncClient]]:
    runtime = Runtime.build(settings)
    await runtime.start_rules(watch=False)
    chat = ChatRuntime.build(runtime)
    now = runtime.clock.now()
    await runtime.users.add("南区经理", "manager", ["华南"], None, None, now)
    await runtime.users.link("南区经理", "fake", "nan", now)
    app = create_asgi_app(runtime, chat.routers, chat.core.ctx)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield runtime, chat, client
    await chat.close()
    await runtime.close()


def test_registering_twice_is_refused(fake_registered: None) -> None:
    with pytest.raises(ValueError, match="registered already"):
        registry.register(FAKE)


def test_the_registry_names_platforms_for_people(fake_registered: None) -> None:
    assert registry.label("fake", "zh") == "测试聊天" and registry.label("wecom", "en") == "WeCom"
    assert registry.label("gone", "en") == "gone"


async def test_an_approval_round_trip_through_the_fake(stack: tuple[Runtime, ChatRuntime, httpx.AsyncClient],
                                                       db: AsyncEngine) -> None:
    runtime, chat, client = stack
    fake = chat.platform("fake")
    assert isinstance(fake, FakePlatform) and "fake" in chat.core.ctx.channels
    assert [r.path for router in chat.routers for r in router.routes] == ["/webhooks/fake"]

    body, headers = signed(SECRETS["generic"], order_json(1, amount=Decimal("8600.00"), city="广州"))
    assert (await client.post("/webhooks/orders/generic", content=body, headers=headers)).status_code == 202
    await runtime.intake_worker().run(burst=True)
    await chat.core.notifier.run_once()
    [card_msg] = [m for m in fake.channel.to("nan") if m.card is not None]
    assert card_msg.card is not None and "G00000001" in card_msg.card.as_text()
    approve = card_msg.card.buttons[0].token

    # An empty-handed press would get a toast on Telegram; the fake has none, so nothing is "answered" empty.
    assert (await client.post("/webhooks/fake", json={"id": 1, "user": "nan", "press": approve})).json()["queued"]
    assert not (await client.post("/webhooks/fake", json={"id": 1, "user": "nan", "press": approve})).json()["queued"]
    assert await fake.consumer(chat.core.handle, "c1").drain() == 1
    async with db.connect() as conn:
        order = (await conn.execute(select(OrderRow).where(OrderRow.external_id == "G00000001"))).one()
        approval = (await conn.execute(select(ApprovalRow).where(ApprovalRow.order_id == order.id))).one()
    assert (order.stage, approval.status) == ("designing", "approved")
    await chat.core.notifier.run_once()  # the decided card would be edited where cards can be: not here
    assert fake.channel.edits == []
    assert fake.channel.answers and all(text.strip() for _, text in fake.channel.answers), fake.channel.answers


async def test_a_customer_on_the_fake_is_asked_for_order_number_not_a_contact(
        stack: tuple[Runtime, ChatRuntime, httpx.AsyncClient]) -> None:
    runtime, chat, client = stack
    fake = chat.platform("fake")
    assert isinstance(fake, FakePlatform)
    await client.post("/webhooks/fake", json={"id": 7, "user": "kehu", "text": "/start"})
    assert await fake.consumer(chat.core.handle, "c1").drain() == 1
    [reply] = fake.channel.to("kehu")
    assert not reply.request_contact and "订单号 手机后四位" in reply.text


async def test_the_runtime_starts_and_stops_it_like_any_platform(
        stack: tuple[Runtime, ChatRuntime, httpx.AsyncClient]) -> None:
    _, chat, _ = stack
    fake = chat.platform("fake")
    assert isinstance(fake, FakePlatform)
    await chat.start(SERVE, asyncio.Event())
    assert fake.started == [True] and [t.get_name() for t in chat.tasks] == ["fake"]


def test_an_api_process_mounts_its_route(fake_registered: None, settings: Settings, redis: aioredis.Redis) -> None:
    assert [r.path for router in registry.http_routes(settings, redis) for r in router.routes] == ["/webhooks/fake"]
