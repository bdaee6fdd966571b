"""On the Telegram stand-in: 20 orders of one base stall together → the owner receives one grouped card (not 20),
within Telegram's limits, each order with its own Details button; the supervisor's e-mail copy reaches the local
SMTP server once per order, with the order's facts and never an unmasked phone."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.platforms.telegram.channel import TelegramChannel
from engine.rules import RuleSet
from engine.tokens import Action, verify
from tests.handlers.alert_support import assert_one_burst_mail, burst, mailing_world
from tests.handlers.conftest import KEY, World
from tests.standins.smtp import SmtpStandIn
from tests.standins.telegram_api import TEXT_LIMIT, TelegramStandIn, parse_html, utf16_len

BOSS = "boss@example.com"


@pytest.fixture
def tg_world(db: AsyncEngine, rules: RuleSet, channel: TelegramChannel, smtp_server: SmtpStandIn) -> World:
    return mailing_world(db, rules, channel, smtp_server.url)


async def test_twenty_stalls_of_one_base_are_one_grouped_card(tg_world: World, telegram_api: TelegramStandIn,
                                                              smtp_server: SmtpStandIn) -> None:
    w = tg_world
    boss = await w.user("主管", "supply_chain", [], tg="300", email=BOSS)
    owner = await w.user("跟单员", "supply_chain", [], tg="200", supervisor_id=boss)
    await burst(w, owner)
    to_owner = [m for m in telegram_api.ok_calls("sendMessage") if str(m["chat_id"]) == "200"]
    assert len(to_owner) == 1  # one grouped card, not 20
    [card] = to_owner
    text = parse_html(card["text"])
    assert "生产中超时 20 单 · 基地 HZ · 最久 3 天" in text and utf16_len(text) <= TEXT_LIMIT
    rows = card["reply_markup"]["inline_keyboard"]
    tokens = [b["callback_data"] for row in rows for b in row]
    actions = [verify(KEY, tok).action for tok in tokens]
    assert actions.count(Action.ORDER_DETAILS) == 3 and Action.GROUP_ACK in actions and Action.GROUP_SNOOZE in actions
    assert all(len(tok.encode()) <= 64 for tok in tokens)  # Telegram's callback_data limit
    # the supervisor's mailbox: one copy of the burst, at the breach, with every order's facts, the phone masked
    assert_one_burst_mail(smtp_server, BOSS)
