"""Approval cards end to end through the chat core: outbox → card → press → decision → every copy edited."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, update

from engine.tokens import Action, sign, version_ref
from handlers.approvals import escalate_due
from handlers.chat import ButtonPressed, Sender, TextReceived
from handlers.chat_context import ChatContext
from handlers.dispatch import handle_event
from handlers.notifier import Notifier
from storage.models import ApprovalRow, AuditRow, OrderRow, StageTransitionRow
from tests.chatfake import FakeChannel
from tests.handlers.conftest import KEY, World

APPROVALS, ORDERS, TRANSITIONS, AUDIT = (ApprovalRow.__table__, OrderRow.__table__, StageTransitionRow.__table__,
                                         AuditRow.__table__)


async def _setup(w: World) -> tuple[int, int]:
    await w.user("东区经理", "manager", ["华东"], tg="101")
    await w.user("南区经理", "manager", ["华南"], tg="202")
    await w.user("管理员", "admin", [], tg="900")
    order_id = await w.order("TM20251111-000123", amount="8000.00", city="杭州")
    approval_id = await w.approval(order_id, region="华东")
    return order_id, approval_id


async def _row(w: World, table, id_: int):
    async with w.engine.connect() as conn:
        return (await conn.execute(select(table).where(table.c.id == id_))).one()


def _press(user: str, token: str, cb: str = "cb") -> ButtonPressed:
    return ButtonPressed(Sender("telegram", user, user, user), token, cb)


def _token(w: World, action: Action, approval_id: int, version: str) -> str:
    return sign(KEY, action, approval_id, version_ref(version))


async def test_exactly_one_card_goes_to_the_right_manager(world: World) -> None:
    _order_id, _approval_id = await _setup(world)
    await world.drain()
    await world.notifier.run_once()  # a second pass sends nothing more
    assert [s.message.chat_id for s in world.channel.sent] == ["101"]
    card = world.channel.sent[0].message.card
    assert card is not None and "TM20251111-000123" in card.title
    text = card.as_text()
    assert "138****8000" in text and "13800138000" not in text and "王**" in text and "杭州" in text
    assert "¥8,000.00" in text and "亚麻遮光窗帘" in text and "安装日期 2025-11-20" in text and "install_date" not in text
    assert [b.label for b in card.buttons] == ["批准", "驳回", "详情"]
    assert all(len(b.token.encode()) <= 64 for b in card.buttons)


async def test_right_manager_approves_order_moves_and_card_is_edited(world: World) -> None:
    order_id, approval_id = await _setup(world)
    await world.drain()
    card = world.channel.sent[0].message.card
    ref = world.channel.sent[0].ref
    await handle_event(_press("101", card.buttons[0].token, "cb1"), world.ctx)

    assert world.channel.answers[-1].text == "已批准"
    approval = await _row(world, APPROVALS, approval_id)
    assert (approval.status, approval.decided_by) == ("approved", "东区经理")
    order = await _row(world, ORDERS, order_id)
    assert order.stage == "designing" and order.stage_deadline is not None  # SLA deadline from the rules
    async with world.engine.connect() as conn:
        moves = (await conn.execute(select(TRANSITIONS).where(TRANSITIONS.c.order_id == order_id))).all()
        audits = (await conn.execute(select(AUDIT))).all()
    assert [(m.from_stage, m.to_stage, m.actor) for m in moves] == [("pending_confirm", "designing", "东区经理")]
    assert any(a.action == "approval.approved" for a in audits)
    edited = world.channel.last_card(ref)
    assert edited is not None and "已批准" in edited.status and "东区经理" in edited.status
    assert [b.label for b in edited.buttons] == ["详情"]  # no more decision buttons


async def test_other_region_is_refused_and_nothing_changes(world: World) -> None:
    order_id, approval_id = await _setup(world)
    await world.drain()
    token = world.channel.sent[0].message.card.buttons[0].token
    for who in ("202", "555"):  # another region's manager; someone not linked at all
        await handle_event(_press(who, token), world.ctx)
        assert world.channel.answers[-1].text == "无权审批此订单"
        assert world.channel.answers[-1].alert
    assert (await _row(world, APPROVALS, approval_id)).status == "pending"
    assert (await _row(world, ORDERS, order_id)).stage == "pending_confirm"
    assert world.channel.updates == []


async def test_two_simultaneous_presses_make_one_decision(world: World) -> None:
    order_id, approval_id = await _setup(world)
    await world.user("东区经理二", "manager", ["华东"], tg="102")
    await world.drain()
    version = (await _row(world, APPROVALS, approval_id)).order_version
    approve = _token(world, Action.APPROVE, approval_id, version)
    await asyncio.gather(
        handle_event(_press("101", approve, "a"), world.ctx),
        handle_event(_press("102", approve, "b"), world.ctx),
        handle_event(_press("101", approve, "c"), world.ctx),  # a double tap
    )
    texts = sorted(a.text for a in world.channel.answers)
    assert texts == ["已批准", "此审批已处理", "此审批已处理"]
    async with world.engine.connect() as conn:
        moves = (await conn.execute(select(TRANSITIONS).where(TRANSITIONS.c.order_id == order_id))).all()
        audits = (await conn.execute(select(AUDIT).where(AUDIT.c.action == "approval.approved"))).all()
    assert len(moves) == 1 and len(audits) == 1


async def test_forged_and_foreign_tokens_are_refused(world: World) -> None:
    order_id, approval_id = await _setup(world)
    await world.drain()
    good = world.channel.sent[0].message.card.buttons[0].token
    forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    other_key = sign(b"someone-elses-key", Action.APPROVE, approval_id, good.split(".")[2])
    retargeted = good.replace(f".{approval_id}.", f".{approval_id + 1}.")
    for token, reason in ((forged, "签名不符"), (other_key, "签名不符"), (retargeted, "签名不符"), ("junk", "无效")):
        await handle_event(_press("101", token), world.ctx)
        assert reason in world.channel.answers[-1].text
    assert (await _row(world, APPROVALS, approval_id)).status == "pending"
    assert (await _row(world, ORDERS, order_id)).stage == "pending_confirm"


async def test_reject_asks_for_reason_then_cancels_with_it(world: World) -> None:
    order_id, approval_id = await _setup(world)
    await world.drain()
    sent = world.channel.sent[0]
    await handle_event(_press("101", sent.message.card.buttons[1].token), world.ctx)
    prompt = world.channel.sent[-1].message
    assert prompt.force_reply and "原因" in prompt.text
    assert (await _row(world, APPROVALS, approval_id)).status == "pending"  # nothing decided before the reason

    await handle_event(TextReceived(Sender("telegram", "101", "101"), "客户要求取消"), world.ctx)
    approval = await _row(world, APPROVALS, approval_id)
    assert (approval.status, approval.reason) == ("rejected", "客户要求取消")
    order = await _row(world, ORDERS, order_id)
    assert order.stage == "cancelled"
    async with world.engine.connect() as conn:
        move = (await conn.execute(select(TRANSITIONS).where(TRANSITIONS.c.order_id == order_id))).one()
    assert (move.to_stage, move.reason) == ("cancelled", "客户要求取消")
    edited = world.channel.last_card(sent.ref)
    assert "已驳回" in edited.status and "客户要求取消" in edited.status
    # The next text is an ordinary message again, not another reason.
    assert not await __import__("handlers.approvals").approvals.handle_reason_reply(
        TextReceived(Sender("telegram", "101", "101"), "hello"), world.ctx)


async def test_requester_never_approves_own_request(world: World) -> None:
    await world.user("东区经理", "manager", ["华东"], tg="101")
    order_id = await world.order("TM1", amount="9000.00")
    async with world.engine.connect() as conn:
        uid = (await conn.execute(select(__import__("storage.models").models.UserRow.__table__.c.id))).scalar()
    approval_id = await world.approval(order_id, requested_by=f"user:{uid}")
    version = (await _row(world, APPROVALS, approval_id)).order_version
    await handle_event(_press("101", _token(world, Action.APPROVE, approval_id, version)), world.ctx)
    assert world.channel.answers[-1].text == "不能审批自己提交的申请"
    assert (await _row(world, APPROVALS, approval_id)).status == "pending"


async def test_changed_order_voids_the_old_card(world: World) -> None:
    order_id, approval_id = await _setup(world)
    await world.drain()
    sent = world.channel.sent[0]
    async with world.engine.begin() as conn:  # the order's amount changed after the request
        await conn.execute(update(ORDERS).where(ORDERS.c.id == order_id).values(payload_hash="changed"))
    await handle_event(_press("101", sent.message.card.buttons[0].token), world.ctx)
    assert world.channel.answers[-1].text == "订单已变更，此审批已失效"
    assert (await _row(world, APPROVALS, approval_id)).status == "superseded"
    assert (await _row(world, ORDERS, order_id)).stage == "pending_confirm"
    assert "已失效" in world.channel.last_card(sent.ref).status


async def test_unanswered_request_escalates_once_to_admin_who_may_then_decide(world: World) -> None:
    _order_id, approval_id = await _setup(world)
    await world.drain()
    world.clock.advance(hours=3)
    assert await escalate_due(world.repo, world.clock) == 0
    world.clock.advance(hours=1, minutes=1)
    assert await escalate_due(world.repo, world.clock) == 1
    assert await escalate_due(world.repo, world.clock) == 0  # once per level
    await world.drain()
    to_admin = world.channel.to("900")
    assert len(to_admin) == 1 and "已升级" in to_admin[0].message.card.status
    await handle_event(_press("900", to_admin[0].message.card.buttons[0].token), world.ctx)
    assert (await _row(world, APPROVALS, approval_id)).status == "approved"
    # Both copies (manager's and admin's) now show the outcome.
    assert {r.chat_id for r, c in world.channel.updates if "已批准" in c.status} == {"101", "900"}


async def test_every_copy_on_every_platform_is_edited(world: World) -> None:
    _order_id, _approval_id = await _setup(world)
    wecom = FakeChannel("wecom")
    async with world.engine.begin() as conn:
        from storage.models import ChatIdentityRow, UserRow

        uid = (await conn.execute(select(UserRow.__table__.c.id).where(UserRow.__table__.c.name == "东区经理"))).scalar()
        await conn.execute(ChatIdentityRow.__table__.insert().values(
            user_id=uid, platform="wecom", external_id="dongqu", chat_id="dongqu", linked_at=world.clock.now()))
    channels = {"telegram": world.channel, "wecom": wecom}
    notifier = Notifier(world.repo, channels, world.clock, token_key=KEY, sleep=world.time.sleep,
                        limiter=world.notifier.limiter)
    ctx = ChatContext(channels=channels, repo=world.repo, clock=world.clock, token_key=KEY,
                      limiter=world.ctx.limiter, deadlines=world.rules, delivery=notifier)
    await notifier.run_once()
    assert len(world.channel.sent) == 1 and len(wecom.sent) == 1
    token = wecom.sent[0].message.card.buttons[0].token
    await handle_event(ButtonPressed(Sender("wecom", "dongqu", "dongqu"), token, "w1"), ctx)
    assert "已批准" in world.channel.last_card(world.channel.sent[0].ref).status
    assert "已批准" in wecom.last_card(wecom.sent[0].ref).status


async def test_english_cards(world: World) -> None:
    await _setup(world)
    world.notifier.language = "en"
    await world.drain()
    card = world.channel.sent[0].message.card
    assert [b.label for b in card.buttons] == ["Approve", "Reject", "Details"]
    assert "Approval request" in card.title


async def test_details_sends_everything_paged(world: World) -> None:
    await world.user("东区经理", "manager", ["华东"], tg="101")
    order_id = await world.order("TM-BIG", amount="99999.00", items=200)
    await world.approval(order_id)
    await world.drain()
    card = world.channel.sent[0].message.card
    assert len(card.as_text()) <= 4096 and "另有" in card.as_text()
    before = len(world.channel.sent)
    await handle_event(_press("101", card.buttons[2].token), world.ctx)
    pages = [s.text for s in world.channel.sent[before:]]
    assert len(pages) > 1 and all(len(p) <= 4096 for p in pages)
    assert sum(p.count("CUR-LINEN-") for p in pages) == 200  # every item, none dropped


async def test_escalation_interval_restarts(world: World) -> None:
    _order_id, approval_id = await _setup(world)
    world.clock.advance(hours=4)
    assert await escalate_due(world.repo, world.clock) == 1
    approval = await _row(world, APPROVALS, approval_id)
    assert approval.escalation_level == 1 and approval.escalate_at == world.clock.now() + timedelta(hours=4)


async def test_request_voided_by_intake_gets_its_card_edited_on_press(world: World) -> None:
    _order_id, approval_id = await _setup(world)
    await world.drain()
    sent = world.channel.sent[0]
    async with world.engine.begin() as conn:  # what intake does when the order changes
        await conn.execute(update(APPROVALS).where(APPROVALS.c.id == approval_id).values(status="superseded"))
    for _ in range(2):
        await handle_event(_press("101", sent.message.card.buttons[0].token), world.ctx)
        assert world.channel.answers[-1].text == "订单已变更，此审批已失效"
    assert [c.status for r, c in world.channel.updates] == [world.channel.last_card(sent.ref).status]
    assert "已失效" in world.channel.last_card(sent.ref).status
