"""Stall alerts: one per order, stage and level, ever; buttons acknowledge, snooze, advance."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine.stages import Stage
from engine.stall import ladder_from_rules
from handlers.chat import ButtonPressed, CommandReceived, Sender
from handlers.dispatch import handle_event
from handlers.stalls import scan_stalls
from storage.models import OrderRow, OutboxRow, StageTransitionRow
from tests.chatfake import Sent
from tests.handlers.conftest import World

ORDERS, OUTBOX, TRANSITIONS = OrderRow.__table__, OutboxRow.__table__, StageTransitionRow.__table__


def _press(user: str, token: str) -> ButtonPressed:
    return ButtonPressed(Sender("telegram", user, user), token, "cb")


async def _keys(w: World) -> list[str]:
    """The chat alerts queued (the breach's e-mail copy, `stallmail:`, is tests/handlers/test_stall_mail.py's)."""
    async with w.engine.connect() as conn:
        return [r.dedup_key for r in (await conn.execute(select(OUTBOX).order_by(OUTBOX.c.id))).all()
                if not r.dedup_key.startswith("stallmail:")]


async def _stalled_world(w: World) -> tuple[int, int, int]:
    boss = await w.user("主管", "manager", ["华东"], tg="300")
    owner = await w.user("跟单员", "supply_chain", [], tg="200", supervisor_id=boss)
    await w.user("南区经理", "manager", ["华南"], tg="202")
    order_id = await w.order("TM-STALL", stage="designing", deadline=w.clock.now(), owner=owner)
    return order_id, owner, boss


async def _alerted(w: World) -> tuple[int, Sent]:
    """The stalled order five minutes overdue, scanned and its owner's card sent: the card whose buttons are pressed."""
    order_id, _owner, _boss = await _stalled_world(w)
    w.clock.advance(minutes=5)
    await scan_stalls(w.repo, w.clock)
    await w.drain()
    return order_id, w.channel.sent[0]


async def test_one_alert_per_order_stage_and_level_ever(world: World) -> None:
    order_id, _owner, _boss = await _stalled_world(world)
    assert await scan_stalls(world.repo, world.clock, ladder_from_rules(world.rules.escalation)) == []  # at the deadline: not overdue
    world.clock.advance(minutes=1)
    for _ in range(3):
        await scan_stalls(world.repo, world.clock, ladder_from_rules(world.rules.escalation))
    assert await _keys(world) == [f"stall:{order_id}:designing:0"]
    await world.drain()
    assert [s.message.chat_id for s in world.channel.sent] == ["200"]  # the owner
    card = world.channel.sent[0].message.card
    assert [b.label for b in card.buttons] == ["确认", "暂停 4 小时", "推进阶段", "详情"]
    assert "超时" in card.as_text()
    assert "升级级别: 首次提醒（负责人）" in card.as_text()  # the level in words, not "0"

    world.clock.advance(hours=4)  # the supervisor rung
    await scan_stalls(world.repo, world.clock, ladder_from_rules(world.rules.escalation))
    await scan_stalls(world.repo, world.clock, ladder_from_rules(world.rules.escalation))
    await world.drain()
    assert await _keys(world) == [f"stall:{order_id}:designing:0", f"stall:{order_id}:designing:1"]
    assert [s.message.chat_id for s in world.channel.sent] == ["200", "300"]


async def test_acknowledge_stops_escalation_for_the_stage(world: World) -> None:
    _order_id, sent = await _alerted(world)
    await handle_event(_press("200", sent.message.card.buttons[0].token), world.ctx)
    assert "已确认" in world.channel.answers[-1].text
    assert "已确认" in world.channel.last_card(sent.ref).status
    assert [b.label for b in world.channel.last_card(sent.ref).buttons] == ["暂停 4 小时", "推进阶段", "详情"]
    world.clock.advance(hours=10)
    assert await scan_stalls(world.repo, world.clock) == []


async def test_snooze_mutes_for_four_hours(world: World) -> None:
    _order_id, sent = await _alerted(world)
    await handle_event(_press("200", sent.message.card.buttons[1].token), world.ctx)
    assert world.channel.answers[-1].text == "已暂停提醒 4 小时"
    world.clock.advance(hours=3, minutes=59)  # supervisor rung due at 4h overdue, but still snoozed
    assert await scan_stalls(world.repo, world.clock) == []
    world.clock.advance(minutes=2)
    assert len(await scan_stalls(world.repo, world.clock)) == 1


async def test_advance_moves_the_order_once_and_stale_buttons_refuse(world: World) -> None:
    order_id, sent = await _alerted(world)
    advance = sent.message.card.buttons[2].token
    await handle_event(_press("200", advance), world.ctx)
    assert "已下单" in world.channel.answers[-1].text
    await handle_event(_press("200", advance), world.ctx)  # replayed: the order is no longer in that stage
    assert world.channel.answers[-1].text == "按钮已过期，请查看最新消息"
    async with world.engine.connect() as conn:
        order = (await conn.execute(select(ORDERS).where(ORDERS.c.id == order_id))).one()
        moves = (await conn.execute(select(TRANSITIONS))).all()
    assert order.stage == "ordered" and order.stage_deadline is not None and len(moves) == 1
    assert world.channel.last_card(sent.ref).buttons == ()


async def test_other_region_cannot_act_on_the_alert(world: World) -> None:
    _order_id, sent = await _alerted(world)
    await handle_event(_press("202", sent.message.card.buttons[2].token), world.ctx)
    assert world.channel.answers[-1].text == "无权操作此订单"
    async with world.engine.connect() as conn:
        assert (await conn.execute(select(ORDERS.c.stage))).scalar() == "designing"


async def test_stalled_with_500_orders_never_exceeds_4096_chars(world: World) -> None:
    await world.user("管理员", "admin", [], tg="900")
    for i in range(500):
        await world.order(f"TM20251111-{i:06d}", stage="in_production", deadline=world.clock.now(), city="上海")
    world.clock.advance(hours=30)
    await handle_event(CommandReceived(Sender("telegram", "900", "900"), "stalled"), world.ctx)
    pages = world.channel.texts_to("900")
    assert len(pages) > 1 and all(len(p) <= 4096 for p in pages)
    body = "\n".join(pages)
    assert all(f"TM20251111-{i:06d}" in body for i in range(500))  # paged, none dropped
    assert "13800138000" not in body


async def test_alert_for_order_that_moved_on_is_not_sent(world: World) -> None:
    _order_id, *_ = await _stalled_world(world)
    world.clock.advance(minutes=5)
    await scan_stalls(world.repo, world.clock)
    from sqlalchemy import update

    async with world.engine.begin() as conn:
        await conn.execute(update(ORDERS).values(stage="ordered"))
    await world.drain()
    assert world.channel.sent == []


async def test_a_late_scan_alerts_every_level_due_once(world: World) -> None:
    """First seen 9 h overdue: the owner, the supervisor and the region's managers are all told, in one alert
    naming levels 0, 1 and 2 — and never again for these levels."""
    order_id, _owner, _boss = await _stalled_world(world)
    await world.user("东区经理", "manager", ["华东"], tg="301")
    world.clock.advance(hours=9)
    ladder = ladder_from_rules(world.rules.escalation)
    await scan_stalls(world.repo, world.clock, ladder)
    await scan_stalls(world.repo, world.clock, ladder)
    await world.drain()
    assert await _keys(world) == [f"stall:{order_id}:designing:{lv}" for lv in (0, 2)]  # 2 covers 1
    # owner 200; the region head rung: 华东's managers 300 and 301 (300, the supervisor, gets it once)
    assert sorted(s.message.chat_id for s in world.channel.sent) == ["200", "300", "301"]
    levels_field = dict(world.channel.sent[0].message.card.fields)["升级级别"]
    assert levels_field.count("、") == 2 and levels_field.startswith("首次提醒"), levels_field  # levels 0, 1, 2 in words
    for sent in world.channel.sent:
        assert ("升级级别", levels_field) in sent.message.card.fields
    world.clock.advance(hours=5)
    assert await scan_stalls(world.repo, world.clock, ladder) == []


async def test_a_late_scan_after_level_0_sends_the_levels_still_owed(world: World) -> None:
    order_id, *_ = await _stalled_world(world)
    ladder = ladder_from_rules(world.rules.escalation)
    world.clock.advance(minutes=1)
    await scan_stalls(world.repo, world.clock, ladder)
    world.clock.advance(hours=9)  # the scheduler was down through the supervisor rung
    await scan_stalls(world.repo, world.clock, ladder)
    await world.drain()
    assert await _keys(world) == [f"stall:{order_id}:designing:{lv}" for lv in (0, 2)]
    assert [s.message.chat_id for s in world.channel.sent][0] == "200"
    assert sorted(s.message.chat_id for s in world.channel.sent[1:]) == ["300"]  # supervisor and manager
    assert ("升级级别", "已升级到主管、已升级到区域负责人") in world.channel.sent[-1].message.card.fields


async def test_a_late_scan_with_distinct_recipients_sends_each_level_its_own_row(world: World) -> None:
    boss = await world.user("主管", "supply_chain", [], tg="300")
    owner = await world.user("跟单员", "supply_chain", [], tg="200", supervisor_id=boss)
    await world.user("东区经理", "manager", ["华东"], tg="301")
    order_id = await world.order("TM-LATE", stage="designing", deadline=world.clock.now(), owner=owner)
    world.clock.advance(hours=9)
    ladder = ladder_from_rules(world.rules.escalation)
    assert len(await scan_stalls(world.repo, world.clock, ladder)) == 3
    await world.drain()
    assert await _keys(world) == [f"stall:{order_id}:designing:{lv}" for lv in (0, 1, 2)]
    assert sorted(s.message.chat_id for s in world.channel.sent) == ["200", "300", "301"]
    world.clock.advance(hours=1)
    assert await scan_stalls(world.repo, world.clock, ladder) == []


async def test_a_scan_reads_every_overdue_order_page_by_page(world: World) -> None:
    """More orders overdue than one read holds (the oldest acknowledged, still overdue): the newest breaches are
    alerted in the same scan, not left behind the page of the oldest."""
    owner = await world.user("跟单员", "supply_chain", [], tg="200")
    now = world.clock.now()
    ids = [await world.order(f"TM-PAGE-{i}", stage="designing", deadline=now - timedelta(hours=5 - i), owner=owner)
           for i in range(5)]
    for order_id in ids[:2]:  # the two oldest: acknowledged, so a page of them yields no alert
        await world.repo.acknowledge(order_id, Stage.DESIGNING, "跟单员", now)
    await scan_stalls(world.repo, world.clock, page=2)
    assert await _keys(world) == [f"stall:{oid}:designing:0" for oid in ids[2:]]
    await scan_stalls(world.repo, world.clock, page=2)  # nothing twice, however the pages fall
    assert len(await _keys(world)) == 3
