"""Escalated stall alerts also go by e-mail (a real SMTP client against a local SMTP server): once per row and
recipient, across failures and restarts; a 550 is recorded and an admin told; a server that is down is retried."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from bot.mail import SmtpMailSender
from engine.stall import ladder_from_rules
from handlers.chat import RetryableSendError
from handlers.notifier import Notifier
from handlers.rate_limit import ChatRateLimiter
from handlers.stalls import scan_stalls
from storage.models import MessageRefRow, OutboxRow
from tests.handlers.conftest import KEY, World
from tests.standins.smtp import SmtpStandIn, free_port

OUTBOX, REFS = OutboxRow.__table__, MessageRefRow.__table__
FROM = "OrderHub <orderhub@localhost>"
BOSS = "boss@example.com"


def _mailing(w: World, url: str) -> Notifier:
    """The world's notifier, now with a mail sender (a fresh one: like a process (re)started with SMTP)."""
    limiter = ChatRateLimiter(monotonic=w.time.monotonic, sleep=w.time.sleep)
    w.notifier = Notifier(w.repo, {"telegram": w.channel}, w.clock, token_key=KEY, limiter=limiter,
                          sleep=w.time.sleep, mailer=SmtpMailSender(url, FROM, timeout=5))
    return w.notifier


async def _stalled(w: World, *, boss_tg: str | None = "300") -> int:
    await w.user("管理员", "admin", [], tg="900")
    boss = await w.user("主管", "manager", ["华东"], tg=boss_tg, email=BOSS)
    owner = await w.user("跟单员", "supply_chain", [], tg="200", supervisor_id=boss, email="owner@example.com")
    return await w.order("TM-STALL", stage="designing", deadline=w.clock.now(), owner=owner)


async def _scan(w: World) -> list[int]:
    return await scan_stalls(w.repo, w.clock, ladder_from_rules(w.rules.escalation))


async def _escalate(w: World) -> int:
    """The owner's alert (level 0) delivered, then the supervisor rung queued; returns its outbox id."""
    w.clock.advance(minutes=1)
    await _scan(w)
    await w.drain()
    w.clock.advance(hours=4)
    [row_id] = await _scan(w)
    return row_id


async def _row(w: World, row_id: int):
    async with w.engine.connect() as conn:
        return (await conn.execute(select(OUTBOX).where(OUTBOX.c.id == row_id))).one()


async def test_escalation_goes_by_chat_and_email_to_the_supervisor(world: World, smtp_server: SmtpStandIn) -> None:
    _mailing(world, smtp_server.url)
    await _stalled(world)
    row_id = await _escalate(world)
    await world.drain()
    assert [s.message.chat_id for s in world.channel.sent] == ["200", "300"]
    [mail] = smtp_server.messages
    assert mail["To"] == BOSS and mail["From"] == FROM
    assert mail["Subject"] == "【OrderHub】订单超时升级 TM-STALL · 设计中 · 超时 4小时1分"
    body = mail.get_content()
    assert "⏰ 订单超时 · TM-STALL" in body and "升级级别: 已升级到主管" in body and "阶段: 设计中" in body
    assert "用卡片上的按钮处理" in body
    async with world.engine.connect() as conn:
        refs = (await conn.execute(select(REFS).where(REFS.c.outbox_id == row_id, REFS.c.platform == "email"))).all()
    assert len(refs) == 1  # the e-mail is recorded like a chat delivery


async def test_the_owners_first_alert_sends_no_email(world: World, smtp_server: SmtpStandIn) -> None:
    _mailing(world, smtp_server.url)
    await _stalled(world)
    world.clock.advance(minutes=1)
    await _scan(world)
    await world.drain()
    assert [s.message.chat_id for s in world.channel.sent] == ["200"]
    assert smtp_server.messages == []  # the owner has an address, but level 0 is chat only


async def test_english_mail(world: World, smtp_server: SmtpStandIn) -> None:
    _mailing(world, smtp_server.url).language = "en"
    await _stalled(world)
    await _escalate(world)
    await world.drain()
    [mail] = smtp_server.messages
    assert mail["Subject"] == "[OrderHub] Order escalated TM-STALL · Designing · overdue by 4h1m"
    assert "Open this alert in Telegram or WeCom" in mail.get_content()


class _Crash(BaseException):
    """The process dies (not an error the notifier handles)."""


async def test_no_second_email_after_a_crash_between_mail_and_chat(world: World, smtp_server: SmtpStandIn) -> None:
    _mailing(world, smtp_server.url)
    await _stalled(world)
    await _escalate(world)
    healthy_send = world.channel.send

    async def die(message):
        raise _Crash()

    world.channel.send = die  # type: ignore[method-assign]
    with pytest.raises(_Crash):
        await world.notifier.run_once()
    assert len(smtp_server.to(BOSS)) == 1 and world.channel.to("300") == []
    world.channel.send = healthy_send  # type: ignore[method-assign]
    _mailing(world, smtp_server.url)  # the restarted process
    await world.drain()
    await world.notifier.run_once()  # and once more: nothing left to do
    assert len(smtp_server.to(BOSS)) == 1 and len(world.channel.to("300")) == 1


async def test_chat_retries_do_not_resend_the_email(world: World, smtp_server: SmtpStandIn) -> None:
    _mailing(world, smtp_server.url)
    await _stalled(world)
    row_id = await _escalate(world)
    world.channel.script = [RetryableSendError("Bad Gateway")] * 6  # chat down for a pass: the row is retried
    await world.notifier.run_once()
    assert (await _row(world, row_id)).status == "pending" and world.channel.to("300") == []
    world.time.now_s += 60  # the chat's backoff is over (drain moves the wall clock, not the limiter's)
    await world.drain()
    assert len(smtp_server.to(BOSS)) == 1 and len(world.channel.to("300")) == 1


async def test_a_supervisor_without_chat_still_gets_the_email(world: World, smtp_server: SmtpStandIn) -> None:
    _mailing(world, smtp_server.url)
    await _stalled(world, boss_tg=None)
    row_id = await _escalate(world)
    await world.drain()
    assert len(smtp_server.to(BOSS)) == 1
    assert (await _row(world, row_id)).status == "sent"
    assert world.channel.to("900") == []  # nobody unreachable: no admin notice


async def test_unknown_mailbox_is_recorded_and_an_admin_told(world: World, smtp_server: SmtpStandIn) -> None:
    smtp_server.refuse[BOSS] = "550 5.1.1 unknown mailbox"
    _mailing(world, smtp_server.url)
    await _stalled(world)
    row_id = await _escalate(world)
    await world.drain()
    assert smtp_server.messages == []
    assert len(world.channel.to("300")) == 1  # chat still delivered
    row = await _row(world, row_id)
    assert row.status == "sent" and "550" in row.last_error and BOSS in row.last_error
    [notice] = world.channel.texts_to("900")
    assert "email:boss@example.com" in notice and "550 5.1.1 unknown mailbox" in notice


async def test_smtp_down_is_retried_then_delivered_once(world: World) -> None:
    down = SmtpStandIn(free_port())  # nothing listens there yet: connection refused
    _mailing(world, down.url)
    await _stalled(world)
    row_id = await _escalate(world)
    await world.notifier.run_once()
    assert len(world.channel.to("300")) == 1  # chat does not wait for the mail server
    row = await _row(world, row_id)
    assert row.status == "pending" and row.attempts == 1 and "e-mail" in row.last_error
    assert row.due_at.replace(tzinfo=None) > world.clock.now().replace(tzinfo=None)  # the row's backoff
    down.start()
    try:
        await world.drain()
        await world.notifier.run_once()
        assert len(down.to(BOSS)) == 1 and len(world.channel.to("300")) == 1
        assert (await _row(world, row_id)).status == "sent"
    finally:
        down.stop()


async def test_without_smtp_nothing_changes(world: World) -> None:
    assert world.notifier.mailer is None
    await _stalled(world)
    row_id = await _escalate(world)
    await world.drain()
    assert [s.message.chat_id for s in world.channel.sent] == ["200", "300"]
    assert (await _row(world, row_id)).status == "sent"
    async with world.engine.connect() as conn:
        assert (await conn.execute(select(REFS).where(REFS.c.platform == "email"))).all() == []


async def test_the_smtp_password_never_reaches_rows_notices_or_logs(world: World, caplog: pytest.LogCaptureFixture
                                                                    ) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    _mailing(world, f"smtp://orderhub:Pa55-w0rd-s3cret@127.0.0.1:{port}")  # down: refused, retried, given up
    await _stalled(world)
    row_id = await _escalate(world)
    for _ in range(25):
        await world.notifier.run_once()
        world.clock.advance(seconds=301)
    row = await _row(world, row_id)
    assert row.status == "failed" and "e-mail" in row.last_error
    async with world.engine.connect() as conn:
        rows = (await conn.execute(select(OUTBOX))).all()
    stored = " ".join(f"{r.last_error} {r.payload}" for r in rows)
    assert world.channel.texts_to("900")  # the admin was told it was given up
    for text in (stored, caplog.text, " ".join(world.channel.texts_to("900"))):
        assert "Pa55-w0rd-s3cret" not in text
