"""Priority in chat (issue 13.4): `/top` lists the flagged open orders for staff (region-scoped, on Telegram and
WeCom alike), flagged orders carry 🔴 on their cards, and staff cards say the score and its rank among open orders."""

from __future__ import annotations


from sqlalchemy import insert

from handlers.chat import CommandReceived, Sender
from handlers.dispatch import handle_event
from storage.models import ChatIdentityRow
from tests.chatfake import FakeChannel, FakeTime
from tests.handlers.conftest import World, make_world

STAFF = Sender("telegram", "101", "101")


async def _seed(world: World) -> dict[str, int]:
    """Ten open orders with distinct scores, three of them flagged; a flagged but completed one; one in 华南."""
    ids = {f"TM{i:02d}": await world.order(f"TM{i:02d}", priority=10 * i, flagged=i >= 8, city="杭州")
           for i in range(1, 10)}
    ids["GZ10"] = await world.order("GZ10", priority=100, flagged=True, city="广州")
    ids["OLD"] = await world.order("OLD", priority=500, flagged=True, stage="completed")
    return ids


async def test_top_lists_flagged_open_orders_highest_first(world: World) -> None:
    await world.user("运营", "admin", tg="101")
    await _seed(world)
    await handle_event(CommandReceived(STAFF, "top"), world.ctx)
    text = world.channel.texts_to("101")[-1]
    assert "重点订单 3 个" in text
    assert text.index("GZ10") < text.index("TM09") < text.index("TM08")  # 100, 90, 80
    assert "TM07" not in text and "OLD" not in text  # not flagged; flagged but no longer open
    assert text.count("🔴") >= 3 and "优先级 90" in text


async def test_top_is_region_scoped_for_managers(world: World) -> None:
    await world.user("南区经理", "manager", ["华南"], tg="202")
    await world.user("东区经理", "manager", ["华东"], tg="303")
    await _seed(world)
    await handle_event(CommandReceived(Sender("telegram", "202", "202"), "top"), world.ctx)
    south = world.channel.texts_to("202")[-1]
    assert "GZ10" in south and "TM09" not in south
    await handle_event(CommandReceived(Sender("telegram", "303", "303"), "top"), world.ctx)
    east = world.channel.texts_to("303")[-1]
    assert "TM09" in east and "GZ10" not in east


async def test_top_is_for_staff_only_and_says_when_nothing_is_flagged(world: World) -> None:
    customer = Sender("telegram", "501", "501")
    await handle_event(CommandReceived(customer, "top"), world.ctx)
    assert "仅限已绑定的员工" in world.channel.texts_to("501")[-1]
    await world.user("运营", "admin", tg="101")
    await world.order("TM01", priority=99)
    await handle_event(CommandReceived(STAFF, "top"), world.ctx)
    assert world.channel.texts_to("101")[-1] == "没有重点订单。"
    await handle_event(CommandReceived(STAFF, "help"), world.ctx)
    assert "/top" in world.channel.texts_to("101")[-1]


async def test_top_on_wecom_in_english(world: World) -> None:
    wecom = FakeChannel("wecom")
    w = make_world(world.engine, world.rules, wecom, world.clock, FakeTime(clock=world.clock))
    w.ctx.language = "en"
    uid = await world.user("ops", "admin")
    async with world.engine.begin() as conn:
        await conn.execute(insert(ChatIdentityRow.__table__).values(
            user_id=uid, platform="wecom", external_id="zhangsan", chat_id="zhangsan", linked_at=world.clock.now()))
    await _seed(world)
    await handle_event(CommandReceived(Sender("wecom", "zhangsan", "zhangsan"), "top"), w.ctx)
    text = wecom.texts_to("zhangsan")[-1]
    assert "3 flagged orders" in text and "priority 100" in text and "GZ10" in text


async def test_order_card_says_priority_and_rank_among_open_orders(world: World) -> None:
    await world.user("运营", "admin", tg="101")
    await _seed(world)  # ten open orders: TM01..TM09 score 10..90, GZ10 scores 100 (OLD is completed)
    await handle_event(CommandReceived(STAFF, "order", ("TM09",)), world.ctx)
    text = world.channel.texts_to("101")[-1]
    assert "🔴 TM09" in text and "优先级: 90 · 前 20 %" in text  # second of ten open orders
    await handle_event(CommandReceived(STAFF, "order", ("TM01",)), world.ctx)
    text = world.channel.texts_to("101")[-1]
    assert "🔴" not in text and "优先级: 10 · 前 100 %" in text
    await handle_event(CommandReceived(STAFF, "order", ("OLD",)), world.ctx)
    assert "优先级: 500\n" in world.channel.texts_to("101")[-1] + "\n"  # closed: no rank among open orders
    world.ctx.language = "en"
    await handle_event(CommandReceived(STAFF, "order", ("GZ10",)), world.ctx)
    assert "100 · top 10 %" in world.channel.texts_to("101")[-1]


async def test_approval_card_of_a_flagged_order_has_the_red_dot(world: World) -> None:
    await world.user("东区经理", "manager", ["华东"], tg="101")
    ids = await _seed(world)
    await world.approval(ids["TM09"])
    await world.approval(ids["TM01"])
    await world.drain()
    cards = [s.text for s in world.channel.to("101")]
    flagged = [c for c in cards if "TM09" in c]
    plain = [c for c in cards if "TM01" in c]
    assert flagged and all("🔴" in c and "前 20 %" in c for c in flagged)
    assert plain and not any("🔴" in c for c in plain)
