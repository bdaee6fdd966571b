"""Issue 11: the business metrics move with the acts they count — chat sends by platform, approvals requested and
decided (with the time to decision), stall alerts and their buttons, refunds requested and decided — and only once
per act, however often a scan runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.stall import ladder_from_rules
from handlers import metrics
from handlers.chat import ButtonPressed, Sender
from handlers.dispatch import handle_event
from handlers.refunds import RefundDeps, request_refund
from handlers.stalls import scan_stalls
from storage.proof_files import ProofDirectory
from storage.refunds_repo import SqlRefunds
from tests.handlers.conftest import World


def value(metric, **labels: str) -> float:
    return (metric.labels(**labels) if labels else metric)._value.get()


def decisions_seen() -> float:
    return next(s.value for m in metrics.APPROVAL_DECISION_SECONDS.collect() for s in m.samples
                if s.name.endswith("_count"))


def _press(user: str, token: str) -> ButtonPressed:
    return ButtonPressed(Sender("telegram", user, user, user), token, "cb")


async def test_approval_sends_and_decision_are_counted(world: World) -> None:
    await world.user("东区经理", "manager", ["华东"], tg="101")
    order_id = await world.order("TM-M1", amount="8000.00", city="杭州")
    await world.approval(order_id, region="华东")
    sent, decided, seen = value(metrics.NOTIFY_SENT, platform="telegram"), \
        value(metrics.APPROVALS_DECIDED, outcome="approved"), decisions_seen()
    await world.drain()
    assert value(metrics.NOTIFY_SENT, platform="telegram") == sent + 1  # the request card
    await handle_event(_press("101", world.channel.sent[0].message.card.buttons[0].token), world.ctx)
    await handle_event(_press("101", world.channel.sent[0].message.card.buttons[0].token), world.ctx)  # again
    assert value(metrics.APPROVALS_DECIDED, outcome="approved") == decided + 1
    assert decisions_seen() == seen + 1


async def test_a_stall_alert_is_counted_once_however_often_the_scan_runs(world: World) -> None:
    owner = await world.user("跟单员", "supply_chain", [], tg="200")
    await world.order("TM-M2", stage="designing", deadline=world.clock.now(), owner=owner)
    alerts, acks = value(metrics.STALL_ALERTS, level="0"), value(metrics.STALL_ACTIONS, action="ack")
    world.clock.advance(minutes=1)
    for _ in range(3):
        await scan_stalls(world.repo, world.clock, ladder_from_rules(world.rules.escalation))
    assert value(metrics.STALL_ALERTS, level="0") == alerts + 1
    await world.drain()
    await handle_event(_press("200", world.channel.sent[0].message.card.buttons[0].token), world.ctx)
    assert value(metrics.STALL_ACTIONS, action="ack") == acks + 1


async def test_refunds_requested_and_decided_are_counted(world: World, tmp_path: Path) -> None:
    repo = SqlRefunds(world.engine)
    deps = RefundDeps(repo, repo, lambda: world.rules, ProofDirectory(tmp_path), None, None, world.notifier)
    await world.order("TM-M3", amount="1500.00", stage="designing")
    requested, approved = value(metrics.REFUNDS_REQUESTED), value(metrics.REFUNDS_DECIDED, outcome="approved")
    await request_refund(deps, "tmall:TM-M3", amount="100", reason="少一件", requested_by="user:1", source="api",
                         now=world.clock.now())  # not shipped: approved at once by the default matrix
    assert value(metrics.REFUNDS_REQUESTED) == requested + 1
    assert value(metrics.REFUNDS_DECIDED, outcome="approved") == approved + 1


async def test_retried_and_failed_sends_are_counted_by_platform(world: World) -> None:
    from handlers.chat import PermanentSendError, RetryableSendError
    from handlers.chat_ports import NewOutbox

    await world.user("东区经理", "manager", ["华东"], tg="101")
    await world.repo.enqueue([NewOutbox("notice:m", "notice", world.clock.now(), {"text": "提醒"},
                                        recipient_role="manager", recipient_region="华东")], world.clock.now())
    retried, failed = value(metrics.NOTIFY_RETRIED, platform="telegram"), value(metrics.NOTIFY_FAILED,
                                                                                  platform="telegram")
    world.channel.script = [RetryableSendError("Bad Gateway"), PermanentSendError("bot was blocked by the user")]
    await world.notifier.run_once()
    assert value(metrics.NOTIFY_RETRIED, platform="telegram") == retried + 1
    assert value(metrics.NOTIFY_FAILED, platform="telegram") == failed + 1


async def test_approval_requests_are_counted_when_intake_commits(runtime: Any) -> None:
    import json
    from decimal import Decimal

    from tests.factories import order_json

    asked = value(metrics.APPROVALS_REQUESTED)
    big = order_json(1, amount=Decimal("8000.00"), city="杭州")  # over the bundled rules' manager threshold
    await runtime.queue.enqueue("generic", [json.dumps(big).encode(), json.dumps(order_json(2)).encode()])
    await runtime.intake_worker().run(burst=True)
    assert value(metrics.APPROVALS_REQUESTED) == asked + 1
    await runtime.queue.enqueue("generic", [json.dumps(big).encode()])  # the same order again: nothing new asked
    await runtime.intake_worker().run(burst=True)
    assert value(metrics.APPROVALS_REQUESTED) == asked + 1
