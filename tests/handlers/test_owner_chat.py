"""`/assign ORDER NAME` in chat (issue 12.1), on both platforms through the shared handler layer."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.rules import RuleSet
from handlers.chat import CommandReceived, Sender
from handlers.dispatch import handle_event
from storage.models import AuditRow, ChatIdentityRow, OrderRow
from storage.owners import SqlOwners
from tests.chatfake import FakeChannel, FakeTime
from tests.handlers.conftest import Clock, World, make_world

ORDERS, AUDIT, IDS = OrderRow.__table__, AuditRow.__table__, ChatIdentityRow.__table__


@pytest.fixture(params=["telegram", "wecom"])
async def chat(request: pytest.FixtureRequest, db: AsyncEngine, rules: RuleSet) -> World:
    clock = Clock()
    w = make_world(db, rules, FakeChannel(request.param), clock, FakeTime(clock=clock))
    w.ctx.owners = SqlOwners(db)
    return w


async def _person(w: World, name: str, role: str, regions: list[str], ext: str | None) -> int:
    uid = await w.user(name, role, regions)
    if ext is not None:
        async with w.engine.begin() as conn:
            await conn.execute(insert(IDS).values(user_id=uid, platform=w.channel.platform, external_id=ext,
                                                  chat_id=ext, linked_at=w.clock.now()))
    return uid


async def _say(w: World, who: str, *args: str) -> str:
    await handle_event(CommandReceived(Sender(w.channel.platform, who, who), "assign", tuple(args)), w.ctx)
    return w.channel.sent[-1].text


async def _owner(w: World, oid: int) -> int | None:
    async with w.engine.connect() as conn:
        return (await conn.execute(select(ORDERS.c.owner_user_id).where(ORDERS.c.id == oid))).scalar_one()


async def test_assign_in_chat_with_its_refusals(chat: World) -> None:
    w = chat
    await _person(w, "东区经理", "manager", ["华东"], "m1")
    await _person(w, "南区经理", "manager", ["华南"], "m2")
    await _person(w, "跟单", "supply_chain", ["华东"], "s1")
    target = await _person(w, "东二", "manager", ["华东"], None)
    await _person(w, "南跟单", "supply_chain", ["华南"], None)
    oid = await w.order("TM-1", stage="designing")
    key = "tmall:TM-1"

    assert await _say(w, "m2", key, "东二") == "只有管理员或该订单所在区域的经理可以改派负责人。"
    assert await _say(w, "s1", key, "东二") == "只有管理员或该订单所在区域的经理可以改派负责人。"
    assert await _say(w, "stranger", key, "东二") == "此命令仅限已绑定的员工使用。"
    assert await _say(w, "m1", key, "无此人") == "没有名为 无此人 的员工。"
    assert await _say(w, "m1", key, "南跟单") == "南跟单 不负责该订单所在区域，不能作为负责人。"
    assert await _say(w, "m1", "9" * 40, "东二") == f"找不到订单 {'9' * 40}（请用订单内部编号或 渠道:外部单号）。"
    assert await _say(w, "m1", key, "东\x00二") == "无法改派：订单号或用户名无效。"
    assert await _say(w, "m1", key) == "用法：/assign 订单号 用户名"
    assert await _owner(w, oid) is None

    assert await _say(w, "m1", key, "东二") == f"✅ 订单 {key} 的负责人已改为 东二（原：无）。"
    assert await _owner(w, oid) == target
    async with w.engine.connect() as conn:
        assert (await conn.execute(select(AUDIT.c.actor).where(AUDIT.c.action == "order.assigned"))
                ).scalars().all() == ["东区经理"]


async def test_english_when_configured(chat: World) -> None:
    w = chat
    w.ctx.language = "en"
    await _person(w, "ops", "admin", [], "a1")
    await _person(w, "东二", "manager", ["华东"], None)
    await w.order("TM-2", stage="designing")
    assert await _say(w, "a1", "tmall:TM-2", "东二") == "✅ Order tmall:TM-2 is now owned by 东二 (was: nobody)."
    assert await _say(w, "a1", "tmall:TM-2") == "Usage: /assign ORDER NAME"
