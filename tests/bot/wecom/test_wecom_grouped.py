"""On the WeCom stand-in: 20 orders of one base stall together → the owner receives one grouped template card (not
20) within WeCom's card limits; the supervisor's e-mail copy reaches the local SMTP server once per order, with
the order's facts and never an unmasked phone."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.platforms.wecom.channel import WecomChannel
from bot.platforms.wecom.render import BUTTONS_MAX, ROWS_MAX, TITLE_MAX, VALUE_MAX
from engine.rules import RuleSet
from engine.tokens import Action, verify
from storage.models import ChatIdentityRow
from tests.handlers.alert_support import assert_one_burst_mail, burst, mailing_world
from tests.handlers.conftest import KEY, World
from tests.standins.smtp import SmtpStandIn
from tests.standins.wecom_api import WecomStandIn

BOSS = "boss@example.com"


@pytest.fixture
def wc_world(db: AsyncEngine, rules: RuleSet, wecom: WecomChannel, smtp_server: SmtpStandIn) -> World:
    return mailing_world(db, rules, wecom, smtp_server.url)


async def _link(w: World, user_id: int, userid: str) -> None:
    async with w.engine.begin() as conn:
        await conn.execute(insert(ChatIdentityRow.__table__).values(
            user_id=user_id, platform="wecom", external_id=userid, chat_id=userid, linked_at=w.clock.now()))


async def test_twenty_stalls_of_one_base_are_one_grouped_card(wc_world: World, wecom_api: WecomStandIn,
                                                              smtp_server: SmtpStandIn) -> None:
    w = wc_world
    boss = await w.user("主管", "supply_chain", [], email=BOSS)
    owner = await w.user("跟单员", "supply_chain", [], supervisor_id=boss)
    await _link(w, boss, "zhuguan")
    await _link(w, owner, "gendan")
    await burst(w, owner)
    to_owner = [b for b in wecom_api.ok_calls("message/send") if b.get("touser") == "gendan"]
    assert len(to_owner) == 1 and to_owner[0]["msgtype"] == "template_card"  # one card, complete, not 20
    tc = to_owner[0]["template_card"]
    assert tc["main_title"]["title"] == "⏰ 生产中超时 20 单 · 基地 HZ · 最久 3 天"
    assert len(tc["main_title"]["title"]) <= TITLE_MAX
    rows = tc["horizontal_content_list"]
    assert len(rows) <= ROWS_MAX and all(len(r["value"]) <= VALUE_MAX for r in rows)
    assert [r["keyname"] for r in rows] == ["1", "2", "3", "页"]
    buttons = tc["button_list"]
    actions = [verify(KEY, b["key"]).action for b in buttons]
    assert len(buttons) <= BUTTONS_MAX and actions.count(Action.ORDER_DETAILS) == 3
    assert Action.GROUP_ACK in actions and Action.GROUP_SNOOZE in actions and Action.GROUP_PAGE in actions
    assert_one_burst_mail(smtp_server, BOSS)
