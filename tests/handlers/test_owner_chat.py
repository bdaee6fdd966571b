"""`/assign ORDER NAME` in chat (issue 12.1), on both platforms through the shared handler layer."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.rules import RuleSet
from handlers.cards import stall_card
from handlers.chat import ButtonPressed, Card, ChatRef, CommandReceived, Sender
from handlers.dispatch import handle_event
from storage.models import AuditRow, ChatIdentityRow, OrderRow, UserRow
from storage.owners import SqlOwners
from tests.chatfake import Answer, FakeChannel, FakeTime
from tests.handlers.conftest import KEY, Clock, World, make_world

ORDERS, AUDIT, IDS, USERS = OrderRow.__table__, AuditRow.__table__, ChatIdentityRow.__table__, UserRow.__table__


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


# --- the stall card's Assign button and its menu ------------------------------------------------------------------


async def _press(w: World, who: str, token: str, message: ChatRef | None = None) -> Answer:
    await handle_event(ButtonPressed(Sender(w.channel.platform, who, who), token, f"cb-{len(w.channel.answers)}",
                                     message), w.ctx)
    return w.channel.answers[-1]


def _button(card: Card, label: str) -> str:
    return next(b.token for b in card.buttons if b.label == label)


async def test_the_stall_card_assign_button_offers_only_whom_pressing_would_accept(chat: World) -> None:
    w = chat
    await _person(w, "东区经理", "manager", ["华东"], "m1")
    await _person(w, "南区经理", "manager", ["华南"], "m2")
    owner = await _person(w, "跟单甲", "supply_chain", ["华东"], "s1")
    busy = await _person(w, "跟单乙", "supply_chain", ["华东"], None)
    await _person(w, "全国跟单", "supply_chain", [], None)
    await _person(w, "南跟单", "supply_chain", ["华南"], None)
    gone = await _person(w, "离职跟单", "supply_chain", ["华东"], None)
    await _person(w, "顾客", "customer", [], None)
    async with w.engine.begin() as conn:
        await conn.execute(update(USERS).where(USERS.c.id == gone).values(active=False))
    for i in range(2):  # 跟单乙 already owns two open orders, and one finished one that does not count
        await w.order(f"TM-B{i}", stage="designing", owner=busy)
    await w.order("TM-BX", stage="completed", owner=busy)
    oid = await w.order("TM-5", stage="designing", owner=owner)
    view = await w.ctx.repo.order(oid)
    assert view is not None

    def labels(card: Card) -> list[str]:
        return [b.label for b in card.buttons]

    first = stall_card(view, 1, 0, timedelta(hours=1), KEY)
    assert "指派负责人" not in labels(first)  # the owner's own first alert: nothing to reassign yet
    escalated = stall_card(view, 1, 1, timedelta(hours=5), KEY)
    assert labels(escalated) == ["确认", "暂停 4 小时", "推进阶段", "指派负责人", "详情"]
    nobody = await w.ctx.repo.order(await w.order("TM-6", stage="designing"))
    assert nobody is not None and "指派负责人" in labels(stall_card(nobody, 2, 0, timedelta(hours=1), KEY))

    token = _button(escalated, "指派负责人")
    answer = await _press(w, "m2", token)  # another region's manager: told, shown nothing
    assert answer.alert and answer.text == "只有管理员或该订单所在区域的经理可以改派负责人。"
    assert (await _press(w, "s1", token)).alert and w.channel.sent == []

    await _press(w, "m1", token)
    [menu] = w.channel.to("m1")
    card = menu.message.card
    assert card is not None and card.title == "指派 tmall:TM-5 的负责人" and card.fields == (("负责人", "跟单甲"),)
    # least loaded first, managers after the people who do the work; not the owner, not 华南, not inactive, no customer
    assert labels(card) == ["全国跟单（0 单）", "跟单乙（2 单）", "东区经理（0 单）"]

    pick = _button(card, "跟单乙（2 单）")
    answer = await _press(w, "m2", pick, menu.ref)  # the menu's buttons check again: 华南's manager still may not
    assert answer.alert and await _owner(w, oid) == owner
    answer = await _press(w, "m1", pick, menu.ref)
    assert answer.text == "已指派给 跟单乙" and not answer.alert
    assert await _owner(w, oid) == busy
    edited = w.channel.last_card(menu.ref)
    assert edited is not None and edited.buttons == () and edited.status == "✅ 订单 tmall:TM-5 的负责人已改为 跟单乙（原：跟单甲）。"
    async with w.engine.connect() as conn:
        assert (await conn.execute(select(AUDIT.c.actor, AUDIT.c.detail).where(AUDIT.c.action == "order.assigned"))
                ).all() == [("东区经理", {"from": "跟单甲", "to": "跟单乙", "stage": "designing"})]

    answer = await _press(w, "m1", pick, menu.ref)  # a second press: 跟单乙 is the owner now
    assert answer.alert and answer.text.startswith("此人已不能负责该订单")
    async with w.engine.connect() as conn:
        assert len((await conn.execute(select(AUDIT.c.id).where(AUDIT.c.action == "order.assigned"))).all()) == 1


async def test_the_assign_menu_pages_five_at_a_time(chat: World) -> None:
    w = chat
    w.ctx.language = "en"
    await _person(w, "ops", "admin", [], "a1")
    for i in range(7):
        await _person(w, f"sc{i}", "supply_chain", ["华东"], None)
    oid = await w.order("TM-7", stage="designing")
    view = await w.ctx.repo.order(oid)
    assert view is not None
    card = stall_card(view, 1, 0, timedelta(hours=1), KEY, "en")
    await _press(w, "a1", _button(card, "Assign"))
    pages = [w.channel.sent[-1].message.card]
    await _press(w, "a1", _button(pages[0], "More…"))
    pages.append(w.channel.sent[-1].message.card)
    await _press(w, "a1", _button(pages[1], "More…"))
    pages.append(w.channel.sent[-1].message.card)
    names = [[b.label for b in p.buttons] for p in pages]
    assert names[0] == [f"sc{i} (0 open)" for i in range(5)] + ["More…"]
    assert names[1] == ["sc5 (0 open)", "sc6 (0 open)", "ops (0 open)", "More…"]
    assert names[2] == names[0]  # "More" cycles
    assert await _owner(w, oid) is None
