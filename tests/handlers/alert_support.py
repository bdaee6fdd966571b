"""Helpers for the stall-ladder and grouped-card tests: one scheduler pass as the leader runs it, and seeding a base's
stalled orders (intake writes `production_base`; the world's `order` helper does not)."""

from __future__ import annotations

from datetime import datetime

from typing import Any

from sqlalchemy import update

from engine.stall import ladder_from_rules
from handlers.alert_groups import advance_groups
from handlers.stalls import scan_stalls
from storage.models import OrderRow
from tests.handlers.conftest import KEY, T0, Clock, World, make_world
from tests.standins.smtp import SmtpStandIn


async def tick(w: World) -> list[int]:
    """The leader's stall job: the scan with the rules' ladder and grouping, then the group steps."""
    policy = w.rules.group_policy
    ids = await scan_stalls(w.repo, w.clock, ladder_from_rules(w.rules.escalation),
                            plan_for=w.rules.stage_ladder, policy=policy)
    return ids + await advance_groups(w.repo, w.clock, policy)


async def base_orders(w: World, n: int, *, owner: int, base: str = "HZ", deadline: datetime, prefix: str = "TM-HZ",
                      stage: str = "in_production", start: int = 0) -> list[int]:
    ids = []
    for i in range(start, start + n):
        oid = await w.order(f"{prefix}-{i:03d}", stage=stage, deadline=deadline, owner=owner, amount="3000")
        ids.append(oid)
    async with w.engine.begin() as conn:
        await conn.execute(update(OrderRow.__table__).where(OrderRow.__table__.c.id.in_(ids))
                           .values(production_base=base))
    return ids


async def burst(w: World, owner: int, *, n: int = 20) -> None:
    """`n` orders of base HZ stall together (3 days late); the leader's passes over group_wait; all delivered."""
    from datetime import timedelta

    await base_orders(w, n, owner=owner, deadline=w.clock.now() - timedelta(days=3, minutes=5))
    await tick(w)
    w.clock.advance(seconds=31)
    await tick(w)
    await w.drain()
    for _ in range(3):  # the leader keeps scanning: nothing more for these stalls at this level
        w.clock.advance(seconds=30)
        await tick(w)
        await w.drain()


def mailing_world(db: Any, rules: Any, channel: Any, smtp_url: str) -> World:
    """The chat core around a real platform channel, its notifier also mailing through `smtp_url`."""
    from bot.adapters.mail import SmtpMailSender
    from handlers.notifier import Notifier
    from handlers.rate_limit import ChatRateLimiter
    from tests.chatfake import FakeTime

    clock = Clock(T0)
    fake_time = FakeTime(clock=clock)
    w = make_world(db, rules, channel, clock, fake_time)
    w.notifier = Notifier(w.repo, {channel.platform: channel}, clock, token_key=KEY, sleep=fake_time.sleep,
                          limiter=ChatRateLimiter(monotonic=fake_time.monotonic, sleep=fake_time.sleep),
                          mailer=SmtpMailSender(smtp_url, "OrderHub <orderhub@localhost>", timeout=5))
    return w


def assert_one_burst_mail(smtp: SmtpStandIn, to: str) -> None:
    """The supervisor's mailbox after a burst of 20 stalls: one copy listing every order's facts, the phone masked."""
    mails = smtp.to(to)
    assert len(mails) == 1  # one copy listing the 20 orders, as the owner got one card, not 20
    body = mails[0].get_content()
    assert "20" in mails[0]["Subject"] and all(f"订单: TM-HZ-{i:03d}" in body for i in range(20))
    assert "负责人: 跟单员" in body and "生产基地: HZ" in body and "138****8000" in body
    assert all("13800138000" not in m.get_content() for m in mails)
