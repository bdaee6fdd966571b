"""Grouped stall cards through the chat core (fake channel): a burst is one card, a later joiner one edit, a single
stall its own card; bulk Acknowledge / Snooze with permission checks; the warning before the breach; quiet hours."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from engine.tokens import Action, verify
from handlers.chat import ButtonPressed, Sender
from handlers.dispatch import handle_event
from storage.models import OutboxRow, StallAckRow, UserRow
from tests.handlers.alert_support import base_orders, tick
from tests.handlers.conftest import KEY, World

OUTBOX = OutboxRow.__table__


def _press(user: str, token: str) -> ButtonPressed:
    return ButtonPressed(Sender("telegram", user, user), token, "cb")


async def _owner(w: World) -> int:
    boss = await w.user("主管", "manager", ["华东"], tg="300")
    return await w.user("跟单员", "supply_chain", [], tg="200", supervisor_id=boss)


async def _two_passes(w: World) -> None:
    """Two leader passes 31 s apart: a group opened on the first is due on the second (group_wait is 30 s)."""
    await tick(w)
    w.clock.advance(seconds=31)
    await tick(w)


async def _open_group(w: World, n: int, late: timedelta) -> tuple[int, list[int]]:
    """The owner's `n` HZ orders `late` past their deadline, scanned once and group_wait (30 s) over: the group's
    next step is due. Returns (owner, order ids)."""
    owner = await _owner(w)
    ids = await base_orders(w, n, owner=owner, deadline=w.clock.now() - late)
    await tick(w)
    w.clock.advance(seconds=31)
    return owner, ids


async def test_a_burst_of_20_is_one_card_and_a_21st_after_group_interval_one_edit(world: World) -> None:
    w = world
    owner = await _owner(w)
    await base_orders(w, 20, owner=owner, deadline=w.clock.now() - timedelta(days=3, minutes=5))
    await tick(w)  # the group opens: group_wait (30 s) holds the card
    await w.notifier.run_once()
    assert w.channel.to("200") == []
    w.clock.advance(seconds=31)
    await tick(w)
    await w.notifier.run_once()
    [card_msg] = w.channel.to("200")
    card = card_msg.message.card
    assert card is not None and card.title == "⏰ 生产中超时 20 单 · 基地 HZ · 最久 3 天"
    labels = [b.label for b in card.buttons]
    assert labels == ["详情 1", "详情 2", "详情 3", "全部确认", "全部暂停", "下一页"]
    assert {verify(KEY, b.token).action for b in card.buttons[:3]} == {Action.ORDER_DETAILS}
    assert ("页", "第 1/7 页（共 20 单）") in card.fields
    # later scans within group_interval, and repeated ones, change nothing
    for _ in range(3):
        w.clock.advance(seconds=20)
        await tick(w)
        await w.notifier.run_once()
    assert len(w.channel.to("200")) == 1 and w.channel.updates == []
    # a 21st order stalls; after group_interval the card is edited, not resent
    await base_orders(w, 1, owner=owner, deadline=w.clock.now() - timedelta(minutes=1), start=20)
    await tick(w)
    await w.notifier.run_once()
    assert w.channel.updates == []
    w.clock.advance(minutes=5)
    await tick(w)
    await w.drain()
    assert len(w.channel.to("200")) == 1
    [(ref, edited)] = w.channel.updates
    assert ref == card_msg.ref and edited.title == "⏰ 生产中超时 21 单 · 基地 HZ · 最久 3 天"
    # every (order, stage, level) once; the supervisor's mailbox copy is queued per order (no SMTP here)
    async with w.engine.connect() as conn:
        keys = (await conn.execute(select(OUTBOX.c.dedup_key))).scalars().all()
    assert len([k for k in keys if k.startswith("stall:") and k.endswith(":0")]) == 21  # the owner's, each once
    assert len(set(keys)) == len(keys)


async def test_a_single_stall_gets_its_own_card(world: World) -> None:
    w = world
    owner = await _owner(w)
    await base_orders(w, 1, owner=owner, deadline=w.clock.now() - timedelta(minutes=1))
    w.clock.advance(seconds=1)
    await _two_passes(w)
    await w.drain()
    [sent] = w.channel.to("200")
    assert sent.message.card is not None and sent.message.card.title == "⏰ 订单超时 · TM-HZ-000"


async def test_other_bases_and_stages_get_their_own_cards(world: World) -> None:
    w = world
    owner = await _owner(w)
    late = w.clock.now() - timedelta(hours=2)
    await base_orders(w, 3, owner=owner, deadline=late)
    await base_orders(w, 2, owner=owner, deadline=late, base="FS", prefix="TM-FS")
    w.clock.advance(seconds=31)
    await _two_passes(w)
    await w.drain()
    titles = sorted(s.message.card.title for s in w.channel.to("200") if s.message.card)
    assert titles == ["⏰ 生产中超时 2 单 · 基地 FS · 最久 2 小时", "⏰ 生产中超时 3 单 · 基地 HZ · 最久 2 小时"]


async def _grouped(w: World) -> tuple[list[int], object]:
    _owner_id, ids = await _open_group(w, 5, timedelta(hours=1))
    await tick(w)
    await w.drain()
    [msg] = w.channel.to("200")
    return ids, msg


async def test_bulk_acknowledge_acks_every_order_and_stops_the_ladder(world: World) -> None:
    w = world
    await w.user("南区经理", "manager", ["华南"], tg="202")
    ids, msg = await _grouped(w)
    ack = next(b for b in msg.message.card.buttons if b.label == "全部确认")
    await handle_event(_press("202", ack.token), w.ctx)  # another region's manager: none of these orders
    assert w.channel.answers[-1].alert and "无权" in w.channel.answers[-1].text
    await handle_event(_press("200", ack.token), w.ctx)
    assert "已确认 5 单" in w.channel.answers[-1].text
    async with w.engine.connect() as conn:
        acked = (await conn.execute(select(StallAckRow.__table__.c.order_id))).scalars().all()
    assert sorted(acked) == sorted(ids)
    ref, card = w.channel.updates[-1]
    assert ref == msg.ref and "跟单员 已确认 5 单" in card.status
    assert "全部确认" not in [b.label for b in card.buttons]
    w.clock.advance(hours=5)  # past the supervisor's rung: acknowledged, so nothing more
    await tick(w)
    await w.drain()
    assert w.channel.to("300") == []


async def test_bulk_snooze_holds_the_ladder_until_it_ends(world: World) -> None:
    w = world
    _ids, msg = await _grouped(w)
    snooze = next(b for b in msg.message.card.buttons if b.label == "全部暂停")
    await handle_event(_press("200", snooze.token), w.ctx)
    assert "已暂停 5 单" in w.channel.answers[-1].text
    w.clock.advance(hours=3, minutes=10)  # the supervisor's rung (4 business hours late) is due, but snoozed
    await tick(w)
    await w.drain()
    assert w.channel.to("300") == []
    w.clock.advance(hours=1)  # the snooze is over
    for _ in range(2):
        await tick(w)
        w.clock.advance(seconds=31)
    await w.drain()
    [card] = [s.message.card for s in w.channel.to("300")]
    assert card is not None and "5 单" in card.title  # the supervisor's own grouped card


async def test_next_page_edits_the_pressed_card(world: World) -> None:
    w = world
    _ids, msg = await _grouped(w)
    nxt = next(b for b in msg.message.card.buttons if b.label == "下一页")
    await handle_event(ButtonPressed(Sender("telegram", "200", "200"), nxt.token, "cb", msg.ref), w.ctx)
    ref, card = w.channel.updates[-1]
    assert ref == msg.ref and ("页", "第 2/2 页（共 5 单）") in card.fields
    assert [k for k, _ in card.fields] == ["4", "5", "页"]


async def test_the_owner_is_warned_before_the_breach(world: World) -> None:
    w = world
    owner = await _owner(w)
    # pending_confirm: 4 business hours; entered now (Tue 10:00 Shanghai), so the warning comes at 13:12
    oid = await w.order("TM-WARN", stage="pending_confirm", deadline=w.clock.now() + timedelta(hours=4), owner=owner)
    w.clock.advance(hours=3, minutes=11)
    await _two_passes(w)
    await w.drain()
    assert w.channel.to("200") == []
    w.clock.advance(minutes=1)
    await _two_passes(w)
    await w.drain()
    [warn] = w.channel.to("200")
    assert warn.message.card.title == "⚠️ 即将超时 · TM-WARN"
    w.clock.advance(hours=1)  # the breach: a new card (a warning and an overdue alert never share one)
    await _two_passes(w)
    await w.drain()
    assert [s.message.card.title for s in w.channel.to("200")] == ["⚠️ 即将超时 · TM-WARN", "⏰ 订单超时 · TM-WARN"]
    async with w.engine.connect() as conn:
        keys = (await conn.execute(select(OUTBOX.c.dedup_key).where(OUTBOX.c.dedup_key.like(f"stall%:{oid}:%"))
                                   )).scalars().all()
    assert sorted(keys) == [f"stall:{oid}:pending_confirm:0", f"stall:{oid}:pending_confirm:warn",
                            f"stallmail:{oid}:pending_confirm"]


async def test_quiet_hours_hold_chat_alerts_until_they_end_and_severe_ones_ring(world: World) -> None:
    w = world
    owner = await _owner(w)
    async with w.engine.begin() as conn:  # T0 is 10:00 in Shanghai: quiet 09:00-12:00 for the owner
        await conn.execute(update(UserRow.__table__).where(UserRow.__table__.c.id == owner)
                           .values(quiet_hours="09:00-12:00"))
    await w.user("东区经理", "manager", ["华东"], tg="301", phone=None)
    await w.order("TM-Q", stage="designing", deadline=w.clock.now() - timedelta(minutes=1), owner=owner)
    w.clock.advance(seconds=1)
    await _two_passes(w)
    await w.notifier.run_once()
    assert w.channel.to("200") == []  # held, not lost
    async with w.engine.connect() as conn:
        row = (await conn.execute(select(OUTBOX).where(OUTBOX.c.dedup_key.like("stall:%:0")))).one()
    assert row.status == "pending" and row.last_error == "quiet hours" and row.attempts == 0
    assert row.due_at.astimezone().hour == (w.clock.now().replace(hour=4, minute=0)).astimezone().hour
    w.clock.at = w.clock.now().replace(hour=4, minute=0, second=0)  # 12:00 Shanghai: the window ends
    await w.notifier.run_once()
    assert [s.message.card.title for s in w.channel.to("200")] == ["⏰ 订单超时 · TM-Q"]
    # the region head's rung (level 2) rings through anyone's quiet hours
    async with w.engine.begin() as conn:
        await conn.execute(update(UserRow.__table__).values(quiet_hours="00:00-23:59"))
    w.clock.advance(days=3)
    await _two_passes(w)
    await w.notifier.run_once()
    [head] = w.channel.to("301")  # the region's managers, the region head's rung
    assert head.message.card is not None and "已升级到区域负责人" in head.message.card.as_text()


async def test_a_joiner_while_the_card_waits_for_quiet_hours_is_on_it_when_it_goes_out(world: World) -> None:
    w = world
    owner = await _owner(w)
    async with w.engine.begin() as conn:  # T0 is 10:00 in Shanghai
        await conn.execute(update(UserRow.__table__).where(UserRow.__table__.c.id == owner)
                           .values(quiet_hours="09:00-12:00"))
    await base_orders(w, 3, owner=owner, deadline=w.clock.now() - timedelta(hours=1))
    await _two_passes(w)
    await w.notifier.run_once()
    await base_orders(w, 1, owner=owner, deadline=w.clock.now() - timedelta(minutes=1), start=3)
    w.clock.advance(minutes=6)
    await tick(w)
    for _ in range(25):  # many passes while the card waits: the edit never piles up failed attempts
        await w.notifier.run_once()
        w.clock.advance(seconds=10)
    assert w.channel.to("200") == []
    async with w.engine.connect() as conn:
        rows = (await conn.execute(select(OUTBOX).where(OUTBOX.c.kind == "stall_group"))).all()
    assert sorted(r.status for r in rows) == ["pending", "sent"] and all(r.attempts <= 1 for r in rows)
    w.clock.at = w.clock.now().replace(hour=4, minute=0, second=0)  # 12:00 in Shanghai
    await w.notifier.run_once()
    [card] = [s.message.card for s in w.channel.to("200")]
    assert card is not None and card.title.startswith("⏰ 生产中超时 4 单 · 基地 HZ")
    assert w.channel.to("900") == []  # nothing failed, no admin told


async def test_two_schedulers_racing_take_each_group_step_once(world: World) -> None:
    import asyncio

    from handlers.alert_groups import advance_groups

    w = world
    await _open_group(w, 4, timedelta(hours=1))
    policy = w.rules.group_policy
    await asyncio.gather(*(advance_groups(w.repo, w.clock, policy) for _ in range(4)))
    async with w.engine.connect() as conn:
        cards = (await conn.execute(select(OUTBOX).where(OUTBOX.c.kind == "stall_group"))).all()
    assert len(cards) == 1
    await w.drain()
    assert len(w.channel.to("200")) == 1


async def test_an_alert_joining_a_group_about_to_close_is_never_lost(world: World) -> None:
    from handlers.chat_ports import HeldAlert, NewOutbox

    w = world
    now = w.clock.now()

    def held(key: str) -> HeldAlert:
        return HeldAlert(NewOutbox(key, "stall_alert", now, {"order_id": 1, "stage": "designing", "level": 0},
                                   recipient_role="manager", recipient_region="华东"), "g|x", {"stage": "designing"})

    [first] = await w.repo.hold_alerts([held("stall:1:designing:0")], now)
    [group] = await w.repo.open_groups()
    await w.repo.hold_alerts([held("stall:2:designing:0")], now)  # joins after the step was decided on `group`
    assert not await w.repo.close_group(group.id, group.version, now)  # the stale close is refused
    members = await w.repo.group_members(group.id)
    assert [m.status for m in members] == ["held", "held"] and members[0].id == first


async def test_a_single_card_becomes_the_group_card_when_more_join(world: World) -> None:
    w = world
    owner, _ids = await _open_group(w, 1, timedelta(hours=1))
    await tick(w)
    await w.drain()
    [single] = w.channel.to("200")
    assert single.message.card.title == "⏰ 订单超时 · TM-HZ-000"
    await base_orders(w, 2, owner=owner, deadline=w.clock.now() - timedelta(minutes=1), start=1)
    await tick(w)
    w.clock.advance(minutes=5)
    await tick(w)
    await w.drain()
    assert len(w.channel.to("200")) == 1  # still one message: edited
    [(ref, card)] = w.channel.updates
    assert ref == single.ref and card.title.startswith("⏰ 生产中超时 3 单 · 基地 HZ")


async def test_repeat_interval_reposts_a_still_open_group(world: World) -> None:
    from dataclasses import replace

    from handlers.alert_groups import advance_groups

    w = world
    await _open_group(w, 2, timedelta(minutes=10))
    policy = replace(w.rules.group_policy, repeat_interval=timedelta(hours=1))
    await advance_groups(w.repo, w.clock, policy)
    await w.drain()
    w.clock.advance(minutes=30)
    await advance_groups(w.repo, w.clock, policy)
    await w.drain()
    assert len(w.channel.to("200")) == 1
    w.clock.advance(minutes=31)
    await advance_groups(w.repo, w.clock, policy)
    await w.drain()
    assert [s.message.card.title for s in w.channel.to("200")] == [  # re-posted, as old as the stalls are now
        "⏰ 生产中超时 2 单 · 基地 HZ · 最久 10 分", "⏰ 生产中超时 2 单 · 基地 HZ · 最久 1 小时"]
