"""Stall alerts through the chat core's notifier to the WeCom stand-in answering errcode 45009 on 30 % of sends and
HTTP 500 on 10 %: each alert arrives exactly once. The notifier waits on a fake clock (tests/chatfake.FakeTime)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.platforms.wecom.channel import WecomChannel
from engine.rules import RuleSet
from handlers.stalls import scan_stalls
from storage.models import ChatIdentityRow, OutboxRow
from tests.chatfake import FakeTime
from tests.handlers.conftest import T0, Clock, World, make_world
from tests.standins.wecom_api import Faults, WecomStandIn


@pytest.fixture
async def wc_world(db: AsyncEngine, rules: RuleSet, wecom: WecomChannel) -> AsyncIterator[World]:
    clock = Clock(T0)
    yield make_world(db, rules, wecom, clock, FakeTime(clock=clock))


async def _link(w: World, user_id: int, userid: str) -> None:
    async with w.engine.begin() as conn:
        await conn.execute(insert(ChatIdentityRow.__table__).values(
            user_id=user_id, platform="wecom", external_id=userid, chat_id=userid, linked_at=w.clock.now()))


async def test_every_stall_alert_arrives_exactly_once_through_45009s_and_500s(
        wc_world: World, wecom_api: WecomStandIn) -> None:
    w = wc_world
    owners = {}
    for userid in ("gendan1", "gendan2", "gendan3", "gendan4"):
        owners[userid] = await w.user(f"跟单{userid}", "supply_chain", [])
        await _link(w, owners[userid], userid)
    externals = []
    for i in range(32):
        userid = f"gendan{i % 4 + 1}"
        ext = f"TM20251111-{i:06d}"
        externals.append((ext, userid))
        await w.order(ext, stage="in_production", deadline=T0 - timedelta(hours=1), owner=owners[userid],
                      amount="3000")
    assert len(await scan_stalls(w.repo, w.clock)) == 32
    wecom_api.faults = Faults(share_45009=0.3, share_500=0.1, seed=20251111)

    await w.drain()

    outcomes = [(c.http_status, c.errcode) for c in wecom_api.all_calls("message/send")]
    assert outcomes.count((200, 45009)) >= 5 and outcomes.count((500, 0)) >= 2  # the faults really happened
    delivered = [(c["touser"], c["template_card"]) for c in wecom_api.ok_calls("message/send")]
    assert len(delivered) == 32 and all(c["card_type"] == "button_interaction" for _, c in delivered)
    for ext, userid in externals:
        assert sum(1 for _, card in delivered if ext in card["main_title"]["title"]) == 1, ext
        assert any(u == userid and ext in card["main_title"]["title"] for u, card in delivered)
    async with w.engine.connect() as conn:
        statuses = (await conn.execute(select(OutboxRow.__table__.c.status))).scalars().all()
    assert statuses and set(statuses) == {"sent"}
