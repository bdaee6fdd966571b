"""The "申请退款" button under a customer's order-status reply, on both platforms (the recording fake of each): shown
only for a refundable order of their own; pressing it offers reason buttons; a reason starts the refund through the
one request use case. Someone else's press, a staff press or a forged reason changes nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.refunds import RefundState
from engine.rules import RuleSet
from engine.tokens import Action, sign
from handlers.chat import ButtonPressed, Sender, TextReceived
from handlers.dispatch import handle_event
from handlers.refunds import RefundDeps
from storage.models import ChatIdentityRow, StageTransitionRow
from storage.proof_files import ProofDirectory
from storage.refunds_repo import SqlRefunds
from tests.chatfake import FakeChannel, FakeTime
from tests.handlers.conftest import KEY, Clock, World, make_world

CUSTOMER = "4242"


@pytest.fixture(params=["telegram", "wecom"])
async def bw(request: pytest.FixtureRequest, db: AsyncEngine, rules: RuleSet, tmp_path: Path
             ) -> tuple[World, RefundDeps, str]:
    platform = request.param
    clock = Clock()
    w = make_world(db, rules, FakeChannel(platform), clock, FakeTime(clock=clock))
    repo = SqlRefunds(db)
    deps = RefundDeps(repo, repo, lambda: rules, ProofDirectory(tmp_path / "proofs"), None, None, w.notifier,
                      after_sales="400-800-1234")
    w.ctx.refunds = deps
    return w, deps, platform


def _me(platform: str, who: str = CUSTOMER) -> Sender:
    return Sender(platform, who, who)


async def _own(w: World, platform: str, ext: str, stage: str, delivered_days_ago: float | None = None) -> int:
    oid = await w.order(ext, amount="1500.00", stage=stage)
    if delivered_days_ago is not None:
        async with w.engine.begin() as conn:
            for to, days in (("shipped", delivered_days_ago + 3), ("awaiting_install", delivered_days_ago)):
                await conn.execute(insert(StageTransitionRow.__table__).values(
                    order_id=oid, at=w.clock.now() - timedelta(days=days), from_stage="in_production",
                    to_stage=to, actor="system", reason=""))
    await w.repo.grant_order_access(platform, CUSTOMER, CUSTOMER, oid, w.clock.now())
    return oid


async def test_button_reason_and_refund(bw) -> None:
    w, deps, platform = bw
    oid = await _own(w, platform, "TM20251111-000101", "designing")
    await handle_event(TextReceived(_me(platform), "TM20251111-000101 到哪了"), w.ctx)
    reply = w.channel.to(CUSTOMER)[-1].message
    assert "TM20251111-000101" in reply.text and reply.card is not None  # the status, and the button under it
    [button] = reply.card.buttons
    assert button.label == "申请退款"

    await handle_event(ButtonPressed(_me(platform), button.token, "cb-1"), w.ctx)
    reasons = w.channel.to(CUSTOMER)[-1].message.card
    assert reasons is not None and [b.label for b in reasons.buttons] == ["不想要了", "尺寸不符", "质量问题",
                                                                          "等待时间太长"]
    assert await deps.refunds.of_order(oid) == []  # nothing requested yet

    await handle_event(ButtonPressed(_me(platform), reasons.buttons[1].token, "cb-2"), w.ctx)
    [refund] = await deps.refunds.of_order(oid)
    assert (refund.state, refund.reason, refund.source) == (RefundState.APPROVED, "尺寸不符", "chat")
    assert (refund.notify_platform, refund.notify_chat_id) == (platform, CUSTOMER)
    assert "已通过" in w.channel.texts_to(CUSTOMER)[-1]

    await handle_event(TextReceived(_me(platform), "TM20251111-000101"), w.ctx)
    assert w.channel.to(CUSTOMER)[-1].message.card is None  # cancelled by the refund: no button any more


async def test_no_button_for_what_the_matrix_refuses_or_a_refund_in_progress(bw) -> None:
    w, deps, platform = bw
    await _own(w, platform, "TM20251111-000102", "awaiting_install", delivered_days_ago=20)
    await handle_event(TextReceived(_me(platform), "TM20251111-000102"), w.ctx)
    assert w.channel.to(CUSTOMER)[-1].message.card is None  # > 7 days after delivery: refused, so no button
    await _own(w, platform, "TM20251111-000103", "awaiting_install", delivered_days_ago=2)
    await handle_event(TextReceived(_me(platform), "TM20251111-000103"), w.ctx)
    assert w.channel.to(CUSTOMER)[-1].message.card is not None  # within 7 days: proof asked, so offered
    await handle_event(TextReceived(_me(platform), "我要退款 TM20251111-000103 坏了"), w.ctx)
    await handle_event(TextReceived(_me(platform), "TM20251111-000103"), w.ctx)
    assert w.channel.to(CUSTOMER)[-1].message.card is None  # waiting for its proof: not a second one


async def test_other_people_and_forged_reasons_change_nothing(bw) -> None:
    w, deps, platform = bw
    oid = await _own(w, platform, "TM20251111-000104", "designing")
    stranger = _me(platform, "666")
    await handle_event(ButtonPressed(stranger, sign(KEY, Action.REFUND_START, oid, "quality"), "cb-3"), w.ctx)
    assert w.channel.answers[-1].text == "找不到该记录"
    staff = await w.user("华东经理", "manager", ["华东"])
    async with w.engine.begin() as conn:
        await conn.execute(insert(ChatIdentityRow.__table__).values(
            user_id=staff, platform=platform, external_id="900", chat_id="900", linked_at=w.clock.now()))
    await handle_event(ButtonPressed(_me(platform, "900"), sign(KEY, Action.REFUND_START, oid, "quality"), "cb-4"),
                       w.ctx)
    assert w.channel.answers[-1].alert
    await handle_event(ButtonPressed(_me(platform), sign(KEY, Action.REFUND_START, oid, "free_money"), "cb-5"),
                       w.ctx)
    assert w.channel.answers[-1].alert
    forged = sign(b"another key", Action.REFUND_START, oid, "quality")
    await handle_event(ButtonPressed(_me(platform), forged, "cb-6"), w.ctx)
    assert w.channel.answers[-1].alert
    assert await deps.refunds.of_order(oid) == []
