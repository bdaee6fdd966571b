"""End to end over HTTP: the chat core (notifier, handle_event) driving python-telegram-bot against the stand-in.

- stall alerts through a Bot API answering 429 (retry_after 1) on 30 % of sends and 500 on 10 %: each arrives once;
- an approval card's button press, as a Telegram update posted to our webhook route, decides the order and edits
  the card with editMessageText; the same press from another region's manager is refused with a toast.

The notifier's waits run on a fake clock (tests/chatfake.FakeTime), so the test checks that every 429's retry_after
was waited out exactly, without spending the seconds.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.platforms.telegram.channel import TelegramChannel
from bot.platforms.telegram.runner import SECRET_HEADER, UpdateConsumer, make_router
from bot.platforms.telegram.service import telegram_updates
from engine.rules import RuleSet
from handlers.chat import ChatRef, Outgoing, RetryableSendError
from handlers.dispatch import handle_event
from handlers.stalls import scan_stalls
from storage.models import ApprovalRow, OrderRow, OutboxRow
from tests.chatfake import FakeTime, PassThroughChannel
from tests.handlers.conftest import T0, Clock, World, make_world
from tests.standins.telegram_api import TEXT_LIMIT, Faults, TelegramStandIn, parse_html, utf16_len
from webhooks.app import create_app
from webhooks.services import AppServices, WebhookConfig

SECRET = "e2e-secret"


@dataclass
class Attempt:
    at: float  # fake monotonic seconds
    chat_id: str
    outcome: str  # "ok", "429", "retry"


class TimedChannel(PassThroughChannel):
    """Delegates to the TelegramChannel and notes, on the notifier's fake clock, when each send was tried."""

    def __init__(self, inner: TelegramChannel, time: FakeTime) -> None:
        super().__init__(inner)
        self.time = time
        self.attempts: list[Attempt] = []

    async def send(self, message: Outgoing) -> ChatRef:
        at = self.time.monotonic()
        try:
            ref = await self.inner.send(message)
        except RetryableSendError as exc:
            self.attempts.append(Attempt(at, message.chat_id, "429" if exc.retry_after else "retry"))
            raise
        self.attempts.append(Attempt(at, message.chat_id, "ok"))
        return ref


@pytest.fixture
async def tg_world(db: AsyncEngine, rules: RuleSet, channel: TelegramChannel) -> AsyncIterator[World]:
    """The chat core's test world (tests/handlers/conftest.py) with the real Telegram channel in place of the fake."""
    clock = Clock(T0)
    fake_time = FakeTime(clock=clock)
    yield make_world(db, rules, TimedChannel(channel, fake_time), clock, fake_time)


async def test_every_stall_alert_arrives_exactly_once_through_429s_and_500s(
        tg_world: World, telegram_api: TelegramStandIn) -> None:
    w = tg_world
    owners = {chat: await w.user(f"跟单{chat}", "supply_chain", [], tg=chat) for chat in ("301", "302", "303", "304")}
    externals = []
    for i in range(32):
        chat = f"30{i % 4 + 1}"
        ext = f"TM20251111-{i:06d}"
        externals.append((ext, chat))
        await w.order(ext, stage="in_production", deadline=T0 - timedelta(hours=1), owner=owners[chat], amount="3000")
    assert len(await scan_stalls(w.repo, w.clock)) == 32
    telegram_api.faults = Faults(share_429=0.3, share_500=0.1, retry_after=1, seed=20251111)

    await w.drain()

    outcomes = [c.status for c in telegram_api.all_calls("sendMessage")]
    assert outcomes.count(429) >= 5 and outcomes.count(500) >= 2  # the faults really happened
    delivered = [(m["chat_id"], parse_html(m["text"])) for m in telegram_api.ok_calls("sendMessage")]
    assert len(delivered) == 32
    for ext, chat in externals:
        assert sum(1 for c, text in delivered if ext in text) == 1, ext
        assert any(c == chat and ext in text for c, text in delivered)
    async with w.engine.connect() as conn:
        statuses = (await conn.execute(select(OutboxRow.__table__.c.status))).scalars().all()
    assert statuses and set(statuses) == {"sent"}
    # retry_after honoured exactly: after a 429 nothing went to that chat before one second had passed.
    attempts = w.channel.attempts  # type: ignore[attr-defined]
    for i, a in enumerate(attempts):
        if a.outcome == "429":
            later = [b for b in attempts[i + 1:] if b.chat_id == a.chat_id]
            assert later and later[0].at - a.at >= 1.0


@pytest.fixture
async def webhook(redis: aioredis.Redis, tg_world: World, channel: TelegramChannel
                  ) -> AsyncIterator[tuple[httpx.AsyncClient, UpdateConsumer]]:
    """Our webhook route in the real app, its Redis queue, and a consumer bound to the core's handle_event."""
    queue = telegram_updates(redis)
    await queue.ensure_group()

    async def depth() -> int:
        return await queue.depth()

    app = create_app(AppServices(config=WebhookConfig(webhook_secrets={}), intake=None,  # type: ignore[arg-type]
                                 adapters={}, queue_depth=depth, extra_routers=[make_router(SECRET, queue.push)]))
    consumer = UpdateConsumer(queue, functools.partial(handle_event, ctx=tg_world.ctx), channel=channel,
                              consumer="e2e")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client, consumer


_update_ids = iter(range(5000, 10_000))


def press_update(user_id: int, chat_id: int, message_id: int, data: str) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": f"u{user_id}"}
    return {"update_id": next(_update_ids),
            "callback_query": {"id": f"cbq-{user_id}-{message_id}", "from": user, "chat_instance": "ci", "data": data,
                               "message": {"message_id": message_id, "date": 1731290000, "text": "card",
                                           "from": {"id": 7000001, "is_bot": True, "first_name": "OrderHub"},
                                           "chat": {"id": chat_id, "type": "private", "first_name": "m"}}}}


async def _approval_card(w: World, telegram_api: TelegramStandIn) -> tuple[int, int, dict[str, Any]]:
    await w.user("东区经理", "manager", ["华东"], tg="101")
    await w.user("南区经理", "manager", ["华南"], tg="202")
    order_id = await w.order("TM20251111-000123", amount="8000.00", city="杭州")
    approval_id = await w.approval(order_id, region="华东")
    await w.drain()
    [card] = telegram_api.ok_calls("sendMessage")
    assert card["chat_id"] == "101"  # exactly one card, to the right manager
    return order_id, approval_id, card


async def _status(w: World, table: Any, id_: int) -> Any:
    async with w.engine.connect() as conn:
        return (await conn.execute(select(table).where(table.c.id == id_))).one()


async def test_button_press_decides_and_edits_the_card(tg_world: World, telegram_api: TelegramStandIn,
                                                       webhook: tuple[httpx.AsyncClient, UpdateConsumer]) -> None:
    client, consumer = webhook
    order_id, approval_id, card = await _approval_card(tg_world, telegram_api)
    message_id = max(mid for chat, mid in telegram_api.messages if chat == "101")
    approve = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]  # the token, as Telegram returns it

    resp = await client.post("/webhooks/telegram", json=press_update(101, 101, message_id, approve),
                             headers={SECRET_HEADER: SECRET})
    assert resp.status_code == 200
    assert await consumer.drain() == 1

    assert (await _status(tg_world, ApprovalRow.__table__, approval_id)).status == "approved"
    assert (await _status(tg_world, OrderRow.__table__, order_id)).stage == "designing"
    [toast] = telegram_api.ok_calls("answerCallbackQuery")
    assert toast["callback_query_id"] == f"cbq-101-{message_id}" and toast["text"] == "已批准"
    [edit] = telegram_api.ok_calls("editMessageText")
    assert (edit["chat_id"], int(edit["message_id"])) == ("101", message_id)
    assert "已批准" in parse_html(edit["text"]) and "东区经理" in parse_html(edit["text"])
    buttons = [b["callback_data"] for row in edit.get("reply_markup", {}).get("inline_keyboard", []) for b in row]
    assert approve not in buttons  # the decision buttons are gone from the card


async def test_press_from_another_region_is_refused_and_changes_nothing(
        tg_world: World, telegram_api: TelegramStandIn, webhook: tuple[httpx.AsyncClient, UpdateConsumer]) -> None:
    client, consumer = webhook
    order_id, approval_id, card = await _approval_card(tg_world, telegram_api)
    message_id = max(mid for chat, mid in telegram_api.messages if chat == "101")
    approve = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    before = telegram_api.messages[("101", message_id)]

    for user_id in (202, 555):  # 华南's manager; a stranger nobody linked
        resp = await client.post("/webhooks/telegram", json=press_update(user_id, 101, message_id, approve),
                                 headers={SECRET_HEADER: SECRET})
        assert resp.status_code == 200
    assert await consumer.drain() == 2

    toasts = telegram_api.ok_calls("answerCallbackQuery")
    assert [(t["text"], t["show_alert"]) for t in toasts] == [("无权审批此订单", "true")] * 2
    assert (await _status(tg_world, ApprovalRow.__table__, approval_id)).status == "pending"
    assert (await _status(tg_world, OrderRow.__table__, order_id)).stage == "pending_confirm"
    assert telegram_api.all_calls("editMessageText") == []
    assert telegram_api.messages[("101", message_id)] == before


async def test_forged_press_with_a_bad_secret_never_reaches_the_core(
        tg_world: World, telegram_api: TelegramStandIn, webhook: tuple[httpx.AsyncClient, UpdateConsumer]) -> None:
    client, consumer = webhook
    _, approval_id, card = await _approval_card(tg_world, telegram_api)
    approve = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    resp = await client.post("/webhooks/telegram", content=json.dumps(press_update(101, 101, 101, approve)),
                             headers={SECRET_HEADER: "guess"})
    assert resp.status_code == 401
    assert await consumer.drain() == 0
    assert (await _status(tg_world, ApprovalRow.__table__, approval_id)).status == "pending"


async def test_an_approval_card_for_200_items_never_exceeds_4096(tg_world: World,
                                                                 telegram_api: TelegramStandIn) -> None:
    w = tg_world
    await w.user("东区经理", "manager", ["华东"], tg="101")
    order_id = await w.order("TM20251111-000200", amount="380000.00", city="上海", items=200)
    await w.approval(order_id, region="华东")
    await w.drain()
    calls = telegram_api.all_calls("sendMessage")
    assert calls and all(c.status == 200 for c in calls)  # Telegram's own limit check never fired
    assert all(utf16_len(c.params["text"]) <= TEXT_LIMIT for c in calls)
    assert "inline_keyboard" in calls[-1].params["reply_markup"]  # the buttons ride on the last part
