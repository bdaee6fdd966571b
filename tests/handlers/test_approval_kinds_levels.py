"""Approvals: who caused a request (four-eyes), levels in order, outcomes by kind (issue 8 #6, #7, #8)."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from sqlalchemy import select

from bot.settings import BUNDLED_RULES
from engine.channels import default_adapters
from engine.rules import load_rules
from engine.approvals import Verdict
from engine.tokens import Action, sign, version_ref
from handlers.approvals import Deciders, FollowUpMissing, decide, deciders
from handlers.chat import ButtonPressed, CommandReceived, Sender, TextReceived
from handlers.dispatch import handle_event
from handlers.intake import IntakeProcessor
from handlers.ports import IntakeEntry
from storage.intake_queue import RedisIntakeQueue
from storage.intake_store import SqlIntakeStore
from storage.models import ApprovalRow, OrderRow, OutboxRow
from tests.factories import order_json
from tests.handlers.conftest import KEY, World

APPROVALS, ORDERS, OUTBOX = ApprovalRow.__table__, OrderRow.__table__, OutboxRow.__table__


async def _row(w: World, table, id_: int):
    async with w.engine.connect() as conn:
        return (await conn.execute(select(table).where(table.c.id == id_))).one()


def _press(user: str, action: Action, approval: object) -> ButtonPressed:
    token = sign(KEY, action, approval.id, version_ref(approval.order_version))  # type: ignore[attr-defined]
    return ButtonPressed(Sender("telegram", user, user, user), token, f"cb-{user}")


# --- four-eyes on the person who caused the request ------------------------------------------------------------------

async def test_an_imported_orders_approval_names_the_importer_who_cannot_decide_it(world: World, rules) -> None:
    w = world
    importer = await w.user("东区经理", "manager", ["华东"], tg="101")
    await w.user("东区副经理", "manager", ["华东"], tg="102")
    raw = order_json(1, amount=Decimal("8000.00"), city="杭州")
    processor = IntakeProcessor(SqlIntakeStore(w.engine, w.clock), default_adapters(), lambda: rules)
    result = await processor.process(
        [IntakeEntry("1-0", "generic", orjson.dumps(raw), requested_by=f"user:{importer}")], w.clock.now())
    assert result.inserted == 1
    async with w.engine.connect() as conn:
        approval = (await conn.execute(select(APPROVALS))).one()
    assert approval.requested_by == f"user:{importer}"

    await handle_event(_press("101", Action.APPROVE, approval), w.ctx)  # the importer: four-eyes
    assert w.channel.answers[-1].text == "不能审批自己提交的申请"
    assert (await _row(w, APPROVALS, approval.id)).status == "pending"
    await handle_event(_press("102", Action.APPROVE, approval), w.ctx)  # a second person may
    assert (await _row(w, APPROVALS, approval.id)).status == "approved"


async def test_a_plain_webhook_order_is_requested_by_system(world: World, rules) -> None:
    w = world
    raw = order_json(2, amount=Decimal("8000.00"), city="杭州")
    processor = IntakeProcessor(SqlIntakeStore(w.engine, w.clock), default_adapters(), lambda: rules)
    await processor.process([IntakeEntry("1-0", "generic", orjson.dumps(raw))], w.clock.now())
    async with w.engine.connect() as conn:
        assert (await conn.execute(select(APPROVALS.c.requested_by))).scalar_one() == "system"


async def test_the_requester_survives_the_queue_its_retries_and_dead_letters(redis) -> None:
    queue = RedisIntakeQueue(redis)
    await queue.ensure_group()
    await queue.enqueue("generic", [b'{"a": 1}'], "user:7")
    await queue.enqueue("generic", [b'{"a": 2}'])
    first, plain = await queue.read("t", 10, None)
    assert (first.requested_by, plain.requested_by) == ("user:7", "system")
    await queue.retry_later(first, 0)
    assert await queue.promote_due(10**10) == 1
    [again] = await queue.read("t", 10, None)
    assert (again.requested_by, again.attempts) == ("user:7", 1)
    await queue.dead_letter(again, "boom")
    assert await queue.replay_dead() == 1
    [replayed] = await queue.read("t", 10, None)
    assert replayed.requested_by == "user:7"


# --- levels run in order ---------------------------------------------------------------------------------------------

async def test_level_two_card_goes_out_only_after_level_one_approved(world: World) -> None:
    w = world
    await w.user("东区经理", "manager", ["华东"], tg="101")
    await w.user("财务", "finance", [], tg="300")
    oid = await w.order("L1", amount="60000.00")
    a1 = await w.approval(oid, level=1)
    a2 = await w.approval(oid, level=2, role="finance", region=None)
    await w.drain()
    assert [s.message.chat_id for s in w.channel.sent] == ["101"]  # only level 1's card

    await handle_event(CommandReceived(Sender("telegram", "300", "300"), "pending"), w.ctx)
    assert w.channel.sent[-1].message.text.count("L2") == 0  # not finance's to decide yet

    level2 = await _row(w, APPROVALS, a2)
    await handle_event(_press("300", Action.APPROVE, level2), w.ctx)  # too early: refused, nothing changes
    assert w.channel.answers[-1].text == "上一级审批尚未通过，请稍后"
    assert (await _row(w, APPROVALS, a2)).status == "pending"
    await handle_event(_press("300", Action.REJECT, level2), w.ctx)  # neither may it reject yet
    assert w.channel.answers[-1].text == "上一级审批尚未通过，请稍后"

    await handle_event(_press("101", Action.APPROVE, await _row(w, APPROVALS, a1)), w.ctx)
    assert (await _row(w, ORDERS, oid)).stage == "pending_confirm"  # level 2 still to come
    await w.drain()
    assert [s.message.chat_id for s in w.channel.sent if s.message.card] == ["101", "300"]  # now level 2's card
    await handle_event(CommandReceived(Sender("telegram", "300", "300"), "pending"), w.ctx)
    assert "L2" in w.channel.sent[-1].message.text

    await handle_event(_press("300", Action.APPROVE, level2), w.ctx)
    assert (await _row(w, APPROVALS, a2)).status == "approved"
    assert (await _row(w, ORDERS, oid)).stage == "designing"


def _two_level_rules():
    text = BUNDLED_RULES.read_text(encoding="utf-8")
    block = text[text.index("  # - id: order-over-50000"):text.index("  - id: refund-over-2000")]
    return load_rules(text.replace(block, block.replace("  # ", "  ").replace("  #   ", "    ")), "two-levels")


async def test_intake_sends_only_the_first_levels_card(world: World) -> None:
    w = world
    rules = _two_level_rules()
    processor = IntakeProcessor(SqlIntakeStore(w.engine, w.clock), default_adapters(), lambda: rules)
    bodies = [orjson.dumps(order_json(i, amount=Decimal("60000.00"), city="杭州")) for i in (1, 2)]
    # one batch of two (the multi-row statements) and one of one (the single-order path)
    await processor.process([IntakeEntry(f"{i}-0", "generic", b) for i, b in enumerate(bodies)], w.clock.now())
    await processor.process([IntakeEntry("9-0", "generic", orjson.dumps(order_json(3, amount=Decimal("60000.00"),
                                                                                   city="杭州")))], w.clock.now())
    async with w.engine.connect() as conn:
        approvals = (await conn.execute(select(APPROVALS).order_by(APPROVALS.c.id))).all()
        cards = (await conn.execute(select(OUTBOX.c.payload).where(OUTBOX.c.kind == "approval_request"))).all()
    # per order: L1 manager (both rules ask for it: once) and L2 finance
    assert sorted((a.order_id, a.level, a.required_role) for a in approvals) == [
        (o, lvl, role) for o in sorted({a.order_id for a in approvals}) for lvl, role in ((1, "manager"), (2, "finance"))]
    first = {a.id for a in approvals if a.level == 1}
    assert {c.payload["approval_id"] for c in cards} == first


async def test_a_later_level_does_not_escalate_before_its_card_went_out(world: World) -> None:
    from datetime import timedelta

    from handlers.approvals import escalate_due

    w = world
    oid = await w.order("L2", amount="60000.00")
    await w.approval(oid, level=1, escalate_after=timedelta(hours=1))
    a2 = await w.approval(oid, level=2, role="finance", region=None, escalate_after=timedelta(hours=1))
    w.clock.advance(hours=2)
    assert await escalate_due(w.repo, w.clock) == 1  # level 1 only
    assert (await _row(w, APPROVALS, a2)).escalation_level == 0

    # level 1 approved by the escalation's admin: level 2's card goes out and its clock starts now, not at intake
    await w.user("管理员", "admin", [], tg="900")
    a1 = (await w.repo.approvals_of_order(oid))[0]
    await handle_event(_press("900", Action.APPROVE, await _row(w, APPROVALS, a1.id)), w.ctx)
    assert (await _row(w, APPROVALS, a1.id)).status == "approved"
    assert (await _row(w, APPROVALS, a2)).escalate_at == w.clock.now() + timedelta(hours=1)
    assert await escalate_due(w.repo, w.clock) == 0


# --- outcomes by kind ------------------------------------------------------------------------------------------------

async def _carry_on(approval, left, now) -> None:  # type: ignore[no-untyped-def]
    """The refund kind's follow-up stand-in: these tests are about the decision, not the refund flow after it."""


async def _confirmation_and_refund(w: World, ref: str) -> tuple[int, int, int]:
    """An order with a pending confirmation (a manager's) and a pending refund approval (finance, tg 300)."""
    w.ctx.follow_ups = {"refund": _carry_on}
    await w.user("财务", "finance", [], tg="300")
    oid = await w.order(ref)
    return oid, await w.approval(oid), await w.approval(oid, kind="refund", role="finance", region=None)


async def test_a_rejected_refund_approval_neither_cancels_nor_supersedes(world: World) -> None:
    w = world
    await w.user("东区经理", "manager", ["华东"], tg="101")
    oid, confirm, refund = await _confirmation_and_refund(w, "K1")
    await handle_event(_press("300", Action.REJECT, await _row(w, APPROVALS, refund)), w.ctx)
    await handle_event(TextReceived(Sender("telegram", "300", "300"), "凭证不全"), w.ctx)
    assert (await _row(w, APPROVALS, refund)).status == "rejected"
    assert (await _row(w, ORDERS, oid)).stage == "pending_confirm"  # not cancelled
    assert (await _row(w, APPROVALS, confirm)).status == "pending"  # not superseded

    await handle_event(_press("101", Action.APPROVE, await _row(w, APPROVALS, confirm)), w.ctx)
    assert (await _row(w, ORDERS, oid)).stage == "designing"


async def test_an_approved_refund_does_not_confirm_the_order(world: World) -> None:
    w = world
    oid, confirm, refund = await _confirmation_and_refund(w, "K2")
    await handle_event(_press("300", Action.APPROVE, await _row(w, APPROVALS, refund)), w.ctx)
    assert (await _row(w, APPROVALS, refund)).status == "approved"
    assert (await _row(w, ORDERS, oid)).stage == "pending_confirm"
    assert (await _row(w, APPROVALS, confirm)).status == "pending"


async def test_a_rejected_order_approval_cancels_and_closes_the_other_levels(world: World) -> None:
    w = world
    await w.user("东区经理", "manager", ["华东"], tg="101")
    oid = await w.order("K3", amount="60000.00")
    a1 = await w.approval(oid, level=1)
    a2 = await w.approval(oid, level=2, role="finance", region=None)
    await handle_event(_press("101", Action.REJECT, await _row(w, APPROVALS, a1)), w.ctx)
    await handle_event(TextReceived(Sender("telegram", "101", "101"), "价格有误"), w.ctx)
    assert (await _row(w, ORDERS, oid)).stage == "cancelled"
    assert (await _row(w, APPROVALS, a2)).status == "superseded"


async def test_follow_ups_run_by_kind_once_for_the_winning_decision(world: World) -> None:
    """What a kind does after its decision is looked up by kind: `decide` itself knows no kind's continuation."""
    w = world
    oid, confirm, refund = await _confirmation_and_refund(w, "K9")
    calls: list[tuple[str, int, int]] = []

    async def record(approval, left, now) -> None:  # type: ignore[no-untyped-def]
        calls.append((approval.kind, approval.id, left))

    async def broken(approval, left, now) -> None:  # type: ignore[no-untyped-def]
        await record(approval, left, now)
        raise RuntimeError("the follow-up's store is away")

    w.ctx.follow_ups = {"refund": record}
    await handle_event(_press("300", Action.APPROVE, await _row(w, APPROVALS, refund)), w.ctx)
    await handle_event(_press("300", Action.APPROVE, await _row(w, APPROVALS, refund)), w.ctx)  # a second press
    assert calls == [("refund", refund, 0)]  # once, for the refund kind only

    await w.user("东区经理", "manager", ["华东"], tg="101")
    w.ctx.follow_ups = {"order": broken}
    await handle_event(_press("101", Action.APPROVE, await _row(w, APPROVALS, confirm)), w.ctx)
    assert calls[1:] == [("order", confirm, 0)]
    assert (await _row(w, APPROVALS, confirm)).status == "approved"  # a failing follow-up leaves the decision
    assert (await _row(w, ORDERS, oid)).stage == "designing"


async def test_a_refund_approval_is_not_decided_through_wiring_without_its_follow_up(world: World) -> None:
    """An entry point that forgot the refund follow-up would leave the refund waiting for finance for good: deciding
    through it fails loudly and stores nothing, so the next press (through proper wiring) still decides."""
    w = world
    oid, _confirm, refund = await _confirmation_and_refund(w, "K10")
    fin = await w.ctx.repo.user_by_identity("telegram", "300")
    bare = Deciders(w.ctx.repo, w.ctx.deadlines, w.ctx.delivery)
    with pytest.raises(FollowUpMissing, match="refund"):
        await decide(bare, refund, fin, Verdict.APPROVE, "", w.clock.now())
    assert (await _row(w, APPROVALS, refund)).status == "pending"
    assert await decide(deciders(w.ctx), refund, fin, Verdict.APPROVE, "", w.clock.now())
    assert (await _row(w, APPROVALS, refund)).status == "approved"
    assert (await _row(w, ORDERS, oid)).stage == "pending_confirm"
