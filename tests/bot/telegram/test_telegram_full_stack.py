"""The whole chat path as `orderhub serve` wires it (bot/processes/chat_runtime.py), python-telegram-bot against the
stand-in:

intake webhook → queue → worker → approval row + outbox → notifier → sendMessage (one card, the right manager)
→ button press as a Telegram update on our webhook route → update queue → consumer → decision → editMessageText.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import count
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.processes.asgi import create_asgi_app
from bot.processes.chat_runtime import ChatRuntime
from bot.settings import Settings
from bot.platforms.telegram.runner import SECRET_HEADER, UpdateConsumer
from bot.platforms.telegram.service import TelegramService, webhook_secret
from bot.wiring.runtime import Runtime
from storage.models import ApprovalRow, AuditRow, OrderRow, UserRow
from tests.bot.stack_support import OrderStack, one_row
from tests.standins.telegram_api import TelegramStandIn, parse_html

_update_ids = count(90_000)


@dataclass
class Stack(OrderStack):
    api: TelegramStandIn
    secret: str
    card_id = "message_id"

    async def press(self, user_id: int, card: dict[str, Any], button: int = 0, data: str | None = None) -> None:
        chat_id, message_id = int(card["chat_id"]), card["message_id"]
        token = data or card["reply_markup"]["inline_keyboard"][0][button]["callback_data"]
        user = {"id": user_id, "is_bot": False, "first_name": f"u{user_id}"}
        update = {"update_id": next(_update_ids),
                  "callback_query": {"id": f"cbq-{user_id}-{message_id}", "from": user, "chat_instance": "ci",
                                     "data": token,
                                     "message": {"message_id": message_id, "date": 1731290000, "text": "card",
                                                 "chat": {"id": chat_id, "type": "private", "first_name": "m"}}}}
        resp = await self.client.post("/webhooks/telegram", json=update, headers={SECRET_HEADER: self.secret})
        assert resp.status_code == 200

    def consumer(self, name: str = "c1") -> UpdateConsumer:
        telegram = self.chat.platform("telegram")
        assert isinstance(telegram, TelegramService)
        return UpdateConsumer(telegram.queue, self.chat.core.handle, channel=telegram.channel, consumer=name)

    def cards(self) -> list[dict[str, Any]]:
        """Every card sent, with the message id the stand-in gave it."""
        out = []
        for (chat, mid), msg in sorted(self.api.messages.items(), key=lambda kv: kv[0][1]):
            if msg.get("reply_markup"):
                out.append({**msg, "chat_id": chat, "message_id": mid})
        return out


@asynccontextmanager
async def telegram_stack(settings: Settings, telegram_api: TelegramStandIn, managers: tuple[tuple[str, str, str], ...],
                         *, board: bool = False) -> AsyncIterator[Stack]:
    """The chat path as `orderhub serve` wires it, with `(name, region, telegram id)` managers linked; with `board`,
    the board mounted too."""
    s = settings.model_copy(update={"telegram_token": SecretStr(telegram_api.token),
                                    "telegram_api_url": telegram_api.url, "public_url": "https://hub.example.com"})
    runtime = Runtime.build(s)
    await runtime.start_rules(watch=False)
    chat = ChatRuntime.build(runtime)
    telegram = chat.platform("telegram")
    assert telegram is not None
    await telegram.start(register=True)
    now = runtime.clock.now()
    for name, region, tg in managers:
        await runtime.users.add(name, "manager", [region], None, None, now)
        await runtime.users.link(name, "telegram", tg, now)
    app = create_asgi_app(runtime, chat.routers, chat.core.ctx) if board else create_asgi_app(runtime, chat.routers)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Stack(runtime, chat, client, telegram_api, webhook_secret(s.telegram()))
    await chat.close()
    await runtime.close()


@pytest.fixture
async def stack(settings: Settings, db: AsyncEngine, telegram_api: TelegramStandIn) -> AsyncIterator[Stack]:
    async with telegram_stack(settings, telegram_api, (("东区经理", "华东", "101"), ("东区副经理", "华东", "102"),
                                                       ("南区经理", "华南", "202"))) as st:
        yield st


async def test_webhook_mode_registers_menu_and_webhook(stack: Stack) -> None:
    assert stack.api.webhook == {"url": "https://hub.example.com/webhooks/telegram", "secret_token": stack.secret}
    assert {c["command"] for c in stack.api.commands} >= {"start", "order", "stalled", "pending", "find", "help",
                                                          "link"}


async def test_big_order_yields_one_card_to_its_manager_and_a_press_decides_it(stack: Stack,
                                                                               db: AsyncEngine) -> None:
    await stack.post_order(1, "8600.00", "广州")  # 华南: one manager there
    cards = stack.cards()
    assert [c["chat_id"] for c in cards] == ["202"]
    text = parse_html(cards[0]["text"])
    assert "G00000001" in text and "¥8,600.00" in text and "广州 (华南)" in text and "138****0001" in text
    await stack.chat.core.notifier.run_once()  # a second sweep sends nothing new
    assert len(stack.api.ok_calls("sendMessage")) == 1

    await stack.press(101, cards[0])  # 华东's manager, pressing the 华南 card: refused, nothing changes
    assert await stack.consumer().drain() == 1
    assert stack.api.ok_calls("answerCallbackQuery")[-1]["text"] == "无权审批此订单"
    order = await one_row(db, OrderRow, OrderRow.external_id == "G00000001")
    assert order.stage == "pending_confirm"

    await stack.press(202, cards[0])
    assert await stack.consumer().drain() == 1
    order = await one_row(db, OrderRow, OrderRow.external_id == "G00000001")
    approval = await one_row(db, ApprovalRow, ApprovalRow.order_id == order.id)
    assert (order.stage, approval.status) == ("designing", "approved")
    [edit] = stack.api.ok_calls("editMessageText")
    assert (edit["chat_id"], int(edit["message_id"])) == ("202", cards[0]["message_id"])
    assert "已批准" in parse_html(edit["text"]) and "南区经理" in parse_html(edit["text"])


async def test_two_simultaneous_presses_make_one_decision_and_both_cards_show_it(stack: Stack,
                                                                                db: AsyncEngine) -> None:
    await stack.post_order(2, "12000.00", "杭州")  # 华东: two managers get a copy each
    cards = stack.cards()
    assert sorted(c["chat_id"] for c in cards) == ["101", "102"]
    by_chat = {c["chat_id"]: c for c in cards}
    await stack.press(101, by_chat["101"], button=0)  # approve
    await stack.press(102, by_chat["102"], button=0)  # approve, at the same moment
    telegram = stack.chat.platform("telegram")
    assert isinstance(telegram, TelegramService)
    queue = telegram.queue
    await queue.ensure_group()
    first, second = stack.consumer("c1"), stack.consumer("c2")
    [e1] = await queue.read("c1", count=1)
    [e2] = await queue.read("c2", count=1)
    assert all(await asyncio.gather(first.process(e1), second.process(e2)))

    order = await one_row(db, OrderRow, OrderRow.external_id == "G00000002")
    async with db.connect() as conn:
        approvals = (await conn.execute(select(ApprovalRow).where(ApprovalRow.order_id == order.id))).all()
        decisions = (await conn.execute(select(AuditRow).where(AuditRow.action.like("approval.%")))).all()
    assert [a.status for a in approvals] == ["approved"]
    assert order.stage == "designing"
    assert len([d for d in decisions if d.action == "approval.approved"]) == 1
    toasts = sorted(t["text"] for t in stack.api.ok_calls("answerCallbackQuery"))
    assert toasts[0] == "已批准" and len(toasts) == 2 and toasts[1] != "已批准"
    await stack.chat.core.notifier.run_once()
    edited = {e["chat_id"] for e in stack.api.ok_calls("editMessageText")}
    assert edited == {"101", "102"}  # every copy of the card shows the outcome


async def test_forged_token_changes_nothing_and_says_why(stack: Stack, db: AsyncEngine) -> None:
    await stack.post_order(3, "9000.00", "广州")
    [card] = stack.cards()
    real = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    await stack.press(202, card, data=forged)
    assert await stack.consumer().drain() == 1
    order = await one_row(db, OrderRow, OrderRow.external_id == "G00000003")
    assert order.stage == "pending_confirm"
    assert stack.api.ok_calls("answerCallbackQuery")[-1]["text"] == "无效的按钮（签名不符）"  # says why
    assert stack.api.ok_calls("editMessageText") == []


def _button(card: dict[str, Any], text: str) -> str:
    return next(b["callback_data"] for row in card["reply_markup"]["inline_keyboard"] for b in row if b["text"] == text)


async def test_advance_on_a_stall_card_never_bypasses_the_pending_approval(stack: Stack, db: AsyncEngine) -> None:
    """Issue 8 #1: an 8,000 order stalls in pending_confirm; Advance on the stall card is refused with the reason,
    the order stays, and the approval still decides it."""
    approval_card, order, stall_card = await stack.stall_awaiting_approval(db, 40, "8000.00", "广州")
    assert stall_card["chat_id"] == "202"

    await stack.press(202, stall_card, data=_button(stall_card, "推进阶段"))
    assert await stack.consumer().drain() == 1
    toast = stack.api.ok_calls("answerCallbackQuery")[-1]
    assert toast["text"] == "无法推进：订单正在等待审批，只能由审批决定" and toast["show_alert"] == "true"
    order = await one_row(db, OrderRow, OrderRow.id == order.id)
    assert order.stage == "pending_confirm"
    assert (await one_row(db, ApprovalRow, ApprovalRow.order_id == order.id)).status == "pending"

    await stack.press(202, approval_card)  # the approval still decides it
    assert await stack.consumer().drain() == 1
    order = await one_row(db, OrderRow, OrderRow.id == order.id)
    assert order.stage == "designing"
    assert (await one_row(db, ApprovalRow, ApprovalRow.order_id == order.id)).status == "approved"


async def test_assign_from_a_stall_card(stack: Stack, db: AsyncEngine) -> None:
    """Nobody owns a stalled order: its manager presses 指派负责人, picks a person from the menu, the order is theirs
    and the menu says so (editMessageText); a second press of that person changes nothing."""
    _approval, order, stall_card = await stack.stall_awaiting_approval(db, 41, "8000.00", "广州")
    await stack.runtime.users.add("南跟单", "supply_chain", ["华南"], None, None, stack.runtime.clock.now())
    await stack.press(202, stall_card, data=_button(stall_card, "指派负责人"))
    assert await stack.consumer().drain() == 1
    menu = stack.cards()[-1]
    assert menu["chat_id"] == "202" and parse_html(menu["text"]).startswith("指派 generic:G00000041 的负责人")
    assert [b["text"] for row in menu["reply_markup"]["inline_keyboard"] for b in row] == \
        ["南跟单（0 单）", "南区经理（0 单）"]

    pick = _button(menu, "南跟单（0 单）")
    await stack.press(202, menu, data=pick)
    assert await stack.consumer().drain() == 1
    assert stack.api.ok_calls("answerCallbackQuery")[-1]["text"] == "已指派给 南跟单"
    [edit] = stack.api.ok_calls("editMessageText")
    assert (edit["chat_id"], int(edit["message_id"])) == ("202", menu["message_id"])
    assert "负责人已改为 南跟单（原：无）" in parse_html(edit["text"]) and "reply_markup" not in edit
    person = await one_row(db, UserRow, UserRow.name == "南跟单")
    assert (await one_row(db, OrderRow, OrderRow.id == order.id)).owner_user_id == person.id

    await stack.press(202, menu, data=pick)  # a client still showing the old buttons
    assert await stack.consumer().drain() == 1
    assert stack.api.ok_calls("answerCallbackQuery")[-1]["text"].startswith("此人已不能负责该订单")
    assert len(stack.api.ok_calls("editMessageText")) == 1
    async with db.connect() as conn:
        audited = (await conn.execute(select(AuditRow.__table__.c.id)
                                      .where(AuditRow.__table__.c.action == "order.assigned"))).all()
    assert len(audited) == 1
