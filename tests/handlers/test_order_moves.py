"""The one order-move use case (issue 8 #1): every entry point gets the same checks and the same side effects."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from engine.order import OrderData
from engine.stages import Stage
from engine.tokens import Action, sign
from handlers.chat import ButtonPressed, Sender
from handlers.dispatch import handle_event
from handlers.intake import StoredOrderStamp, plan_update
from handlers.orders import MoveRefused, transition
from handlers.stalls import scan_stalls
from storage.intake_store import SqlIntakeStore
from storage.models import ApprovalRow, AuditRow, OrderRow, OutboxRow, StageTransitionRow
from tests.handlers.conftest import KEY, T0, World

ORDERS, APPROVALS, AUDIT, OUTBOX, TRANSITIONS = (OrderRow.__table__, ApprovalRow.__table__, AuditRow.__table__,
                                                 OutboxRow.__table__, StageTransitionRow.__table__)


async def _order(w: World, order_id: int):
    async with w.engine.connect() as conn:
        return (await conn.execute(select(ORDERS).where(ORDERS.c.id == order_id))).one()


async def _all(w: World, table, *where):
    async with w.engine.connect() as conn:
        return (await conn.execute(select(table).where(*where).order_by(table.c.id))).all()


async def test_a_move_is_audited_resets_the_snooze_and_completes(world: World) -> None:
    w = world
    oid = await w.order("M1", amount="3000.00", stage="awaiting_install", deadline=T0 - timedelta(hours=1))
    async with w.engine.begin() as conn:
        await conn.execute(update(ORDERS).where(ORDERS.c.id == oid).values(snoozed_until=T0 + timedelta(hours=4)))
    detail = await transition(w.repo, w.rules, str(oid), "completed", "", "跟单", w.clock.now())
    row = await _order(w, oid)
    assert (row.stage, row.snoozed_until, row.completed_at, row.manual_intervention) == (
        "completed", None, T0, False)  # a routine step forward is no manual intervention
    assert detail.completed_at == T0
    [audit] = await _all(w, AUDIT, AUDIT.c.action == "order.moved")
    assert (audit.actor, audit.detail["from"], audit.detail["to"]) == ("跟单", "awaiting_install", "completed")


async def test_the_guard_refuses_designing_while_a_confirmation_is_pending(world: World) -> None:
    w = world
    oid = await w.order("M2")
    await w.approval(oid)
    with pytest.raises(MoveRefused) as exc:
        await transition(w.repo, w.rules, str(oid), "designing", "", "东区经理", w.clock.now())
    assert exc.value.code == "awaiting_approval"
    assert (await _order(w, oid)).stage == "pending_confirm"


async def test_a_pending_refund_approval_does_not_hold_an_order_in_confirmation(world: World) -> None:
    w = world
    oid = await w.order("M3")
    await w.approval(oid, kind="refund", role="finance", region=None)
    await transition(w.repo, w.rules, str(oid), "designing", "", "东区经理", w.clock.now())
    assert (await _order(w, oid)).stage == "designing"


async def test_stall_advance_goes_through_the_guard(world: World) -> None:
    w = world
    await w.user("东区经理", "manager", ["华东"], tg="101")
    oid = await w.order("M4", deadline=T0 - timedelta(hours=2))
    await w.approval(oid)
    [alert_id] = [i for i in await scan_stalls(w.repo, w.clock)]
    token = sign(KEY, Action.ADVANCE, alert_id, "pending_confirm")
    await handle_event(ButtonPressed(Sender("telegram", "101", "101", "101"), token, "cb"), w.ctx)
    assert w.channel.answers[-1].text == "无法推进：订单正在等待审批，只能由审批决定"
    assert (await _order(w, oid)).stage == "pending_confirm"
    assert await _all(w, TRANSITIONS, TRANSITIONS.c.order_id == oid) == []


async def test_cancelling_closes_the_pending_approvals_and_edits_their_cards(world: World) -> None:
    w = world
    await w.user("东区经理", "manager", ["华东"], tg="101")
    oid = await w.order("M5")
    aid = await w.approval(oid)
    await w.drain()
    ref = w.channel.sent[0].ref
    with pytest.raises(MoveRefused):  # a cancellation needs its reason
        await transition(w.repo, w.rules, str(oid), "cancelled", " ", "管理员", w.clock.now())
    await transition(w.repo, w.rules, str(oid), "cancelled", "客户撤单", "管理员", w.clock.now())
    [approval] = await _all(w, APPROVALS, APPROVALS.c.id == aid)
    assert (approval.status, approval.reason) == ("superseded", "order cancelled")
    assert (await _order(w, oid)).manual_intervention is True
    await w.drain()
    edited = w.channel.last_card(ref)
    assert edited is not None and [b.label for b in edited.buttons] == ["详情"]


@pytest.mark.parametrize("now_in", ["designing", "cancelled"])
async def test_an_intake_update_never_undoes_a_move_made_meanwhile(world: World, now_in: str) -> None:
    """Intake read the order in pending_confirm; a person moved it before the update was written. The update
    stores the content but the auto-confirmation's compare-and-set finds the stage changed: the move stands."""
    w = world
    oid = await w.order("M6", stage="pending_confirm")
    row = await _order(w, oid)
    known = StoredOrderStamp(oid, row.payload_hash, Stage.PENDING_CONFIRM, row.stage_entered_at)
    data = OrderData.model_validate({
        "external_id": "M6", "channel": "tmall", "created_at": T0.isoformat(),
        "customer": {"id": "C-M6", "name": "王女士", "phone": "13800138000", "city": "杭州"},
        "items": [{"sku": "CUR-1", "name": "窗帘", "qty": 1, "unit_price": "1000.00"}], "amount": "1000.00"})
    plan = plan_update("tmall", data, "new-hash", T0, known, w.rules, T0)
    assert plan.stage is Stage.DESIGNING  # it would auto-confirm: 1,000 needs no approval
    async with w.engine.begin() as conn:
        await conn.execute(update(ORDERS).where(ORDERS.c.id == oid).values(stage=now_in))
    store = SqlIntakeStore(w.engine, w.clock)
    async with store.unit() as unit:
        await unit.apply_update(plan, supersede_pending=True)
    row = await _order(w, oid)
    assert (row.stage, row.amount, row.payload_hash) == (now_in, Decimal("1000.00"), "new-hash")
    assert await _all(w, TRANSITIONS, TRANSITIONS.c.order_id == oid) == []


async def test_stall_advance_refused_by_a_concurrent_move_says_so(world: World,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Every refusal of the move use case has its own words on the stall card (`move.<code>`), the lost race too."""
    w = world
    await w.user("东区经理", "manager", ["华东"], tg="101")
    await w.order("M6", deadline=T0 - timedelta(hours=2))
    [alert_id] = [i for i in await scan_stalls(w.repo, w.clock)]

    async def lost_race(*_: object) -> None:
        raise MoveRefused("changed", "the order changed while you were moving it; look again and retry")

    monkeypatch.setattr("handlers.stalls.transition", lost_race)
    token = sign(KEY, Action.ADVANCE, alert_id, "pending_confirm")
    await handle_event(ButtonPressed(Sender("telegram", "101", "101", "101"), token, "cb"), w.ctx)
    assert w.channel.answers[-1].text == "订单刚刚被改动，请刷新后重试"
