"""The chat part of `orderhub demo`: after the day's intake, the transcript of what people see and do in chat —
approval cards, a refused and an accepted press, a rejection with its reason, a stall alert acknowledged, a
customer's status query and (given the refund use cases) the refund button under it, a reason, and finance's
approval — all through the real chat core and the console channel.

    await run_chat_demo(rt.db, rt.redis, rt.current_rules, rt.clock, console, prefix=prefix, language=...,
                        refunds=rt.refund_deps())
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from rich.console import Console
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.wiring.chat import build_chat_core
from bot.demo.console_channel import ConsoleChannel
from engine.refund_text import rt
from engine.refunds import RefundState
from engine.rules import RuleSet
from engine.stall import ladder_from_rules
from engine.text import mask_phone
from engine.text_cli import tc
from engine.tokens import Action, sign
from handlers.cards import approval_card, stall_card
from handlers.chat import Button, ButtonPressed, CommandReceived, ContactShared, Sender, TextReceived
from handlers.ports import Clock
from handlers.refunds import RefundDeps
from handlers.rate_limit import ChatRateLimiter
from handlers.stalls import scan_stalls
from storage.models import ApprovalRow, OrderRow
from storage.users_repo import SqlUsers, UserError

PLATFORM = "console"


async def _refund(core: Any, refunds: RefundDeps, view: Any, press: Callable[[str, Button], ButtonPressed],
                  key: bytes, language: str, console: Console) -> bool:
    """The status reply's refund button, a reason button, and — the amount being over the finance threshold —
    finance's approval card pressed; True when the refund ends approved. The buttons are the ones the core sent
    (same tokens: the core signs them with this key)."""
    console.rule(f"[bold]{tc('d.c_refund', language)}")
    oid = view.order.id
    await core.handle(press("customer-1", Button(rt("btn.refund", language), sign(key, Action.REFUND_START, oid))))
    reason = Button(rt("reason.changed_mind", language), sign(key, Action.REFUND_START, oid, "changed_mind"))
    await core.handle(press("customer-1", reason))
    mine = await refunds.refunds.of_order(oid)
    if not mine:
        return False
    refund = mine[-1]
    if refund.state is RefundState.WAITING_FINANCE and refund.approval_id is not None:
        await core.notifier.run_once(limit=100)
        approval = await core.repo.approval(refund.approval_id)
        card = approval_card(approval, await core.repo.order(oid), key, language)
        await core.handle(press("finance", card.buttons[0]))
        refund = await refunds.refunds.refund(refund.id)
    return refund is not None and refund.state is RefundState.APPROVED


async def _ensure_user(users: SqlUsers, name: str, role: str, regions: list[str], chat_id: str, clock: Clock) -> None:
    try:
        await users.add(name, role, regions, None, None, clock.now())
    except UserError:
        pass  # a previous demo run made them
    await users.link(name, PLATFORM, chat_id, clock.now())


async def run_chat_demo(db: AsyncEngine, redis: aioredis.Redis, rules: Callable[[], RuleSet], clock: Clock,
                        console: Console, *, prefix: str, language: str = "zh",
                        refunds: RefundDeps | None = None) -> bool:
    """Returns True when every step behaved as it should (the demo doubles as a smoke test)."""
    rs = rules()
    names: dict[str, str] = {"ops-admin": "运营主管 (admin)", "owner": "跟单员小李", "finance": "财务小王"}
    users = SqlUsers(db)
    for region in rs.model.regions:
        names[f"mgr-{region}"] = f"{region}经理"
        await _ensure_user(users, f"{region}经理", "manager", [region], f"mgr-{region}", clock)
    await _ensure_user(users, "运营主管", "admin", [], "ops-admin", clock)
    await _ensure_user(users, "跟单员小李", "supply_chain", [], "owner", clock)
    await _ensure_user(users, "财务小王", "finance", [], "finance", clock)

    channel = ConsoleChannel(console, platform=PLATFORM, names=names, show_at_most=3, language=language)
    key = secrets.token_bytes(32)
    core = build_chat_core(db, redis, {PLATFORM: channel}, clock, rules, token_key=key, language=language,
                           refunds=refunds)
    core.notifier.limiter = ChatRateLimiter(interval_s=0, group_per_minute=10**9)  # a terminal has no flood limit
    ok = True

    console.rule(f"[bold]{tc('d.c_requests', language)}")
    await core.notifier.run_once(limit=5000)
    channel.summarise_hidden(tc("d.c_cards", language))
    async with db.connect() as conn:
        rows = (await conn.execute(
            select(ApprovalRow.id, ApprovalRow.region).join(OrderRow, OrderRow.id == ApprovalRow.order_id).where(
                OrderRow.external_id.like(f"{prefix}%"), ApprovalRow.status == "pending").order_by(ApprovalRow.id)
        )).all()
    if len(rows) < 2:
        console.print(f"[yellow]{tc('d.c_few', language)}[/]")
        return ok
    channel.show_at_most = None

    def press(chat: str, button: Button) -> ButtonPressed:
        channel.said(names.get(chat, chat), tc("d.pressed", language, button=button.label))
        return ButtonPressed(Sender(PLATFORM, chat, chat, names.get(chat, chat)), button.token,
                             f"cb-{secrets.token_hex(3)}")

    async def card_of(approval_id: int):
        approval = await core.repo.approval(approval_id)
        view = await core.repo.order(approval.order_id)
        return approval, view, approval_card(approval, view, key, language)

    first_id, region = rows[0]
    _approval, view, card = await card_of(first_id)
    right = f"mgr-{region}"
    wrong = next((c for c in names if c.startswith("mgr-") and c != right), None)
    console.rule(f"[bold]{tc('d.c_wrong_right', language, order=view.order.data.external_id, region=region)}")
    if wrong:
        await core.handle(press(wrong, card.buttons[0]))
    await core.handle(press(right, card.buttons[0]))
    ok &= (await core.repo.approval(first_id)).status.value == "approved"

    second_id, region2 = rows[1]
    _approval2, view2, card2 = await card_of(second_id)
    console.rule(f"[bold]{tc('d.c_reject', language, order=view2.order.data.external_id)}")
    await core.handle(press(f"mgr-{region2}", card2.buttons[1]))
    reason = tc("d.c_reason", language)
    channel.said(names[f"mgr-{region2}"], reason)
    await core.handle(TextReceived(Sender(PLATFORM, f"mgr-{region2}", f"mgr-{region2}"), reason))
    ok &= (await core.repo.approval(second_id)).status.value == "rejected"

    console.rule(f"[bold]{tc('d.c_stall', language)}")
    owner = next(u for u, _ in await users.list() if u.name == "跟单员小李")
    async with db.begin() as conn:
        stalled_id = (await conn.execute(select(OrderRow.id).where(
            OrderRow.external_id.like(f"{prefix}%"), OrderRow.stage == "designing").limit(1))).scalar()
        if stalled_id is not None:  # pretend the design work ran an hour past its deadline
            await conn.execute(update(OrderRow).where(OrderRow.id == stalled_id).values(
                stage_deadline=clock.now() - timedelta(hours=1), owner_user_id=owner.id))
    for alert_id in await scan_stalls(core.repo, clock, ladder_from_rules(rs.escalation)):
        await core.notifier.deliver_ids([alert_id])
        refs = await core.repo.refs_of_outbox(alert_id)
        item = await core.repo.outbox_item(alert_id)
        if not refs or item is None or int(item.payload["order_id"]) != stalled_id:
            continue
        sview = await core.repo.order(stalled_id)
        scard = stall_card(sview, alert_id, int(item.payload["level"]),
                           timedelta(seconds=int(item.payload["overdue_s"])), key, language)
        await core.handle(press(refs[0].chat_id, scard.buttons[0]))
        ok &= stalled_id in await core.repo.acked_stages([stalled_id])

    console.rule(f"[bold]{tc('d.c_customer', language)}")
    phone = view.order.data.customer.phone
    customer = tc("d.customer", language)
    cust = Sender(PLATFORM, "customer-1", "customer-1", customer)
    channel.names["customer-1"] = f"{customer} {mask_phone(phone)}"
    channel.said(customer, "/start")
    await core.handle(CommandReceived(cust, "start"))
    channel.said(customer, tc("d.shared_other", language))
    await core.handle(ContactShared(cust, "13912345678", "someone-else"))
    channel.said(customer, tc("d.shared_own", language))
    await core.handle(ContactShared(cust, phone, "customer-1"))
    typo = tc("d.where_is", language, order=view.order.data.external_id[:-1])
    channel.said(customer, typo)
    await core.handle(TextReceived(cust, typo))
    if refunds is not None:
        ok &= await _refund(core, refunds, view, press, key, language, console)
    await core.close()
    console.print(f"[green]{tc('d.chat_ok', language)}[/]" if ok else f"[red]{tc('d.chat_bad', language)}[/]")
    return ok
