"""A stall's breach sends one copy to the owner's supervisor's mailbox (a real SMTP client against a local SMTP
server; the business's "抄送主管邮箱"): once per order and stage, across rescans, failures and restarts, with the order's
facts and never an unmasked phone; a 550 is recorded and an admin told; a server that is down is retried."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from bot.adapters.mail import SmtpMailSender
from engine.stall import ladder_from_rules
from handlers.notifier import Notifier
from handlers.rate_limit import ChatRateLimiter
from handlers.stalls import scan_stalls
from storage.models import MessageRefRow, OutboxRow, UserRow
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
    return await w.order("TM-STALL", stage="designing", deadline=w.clock.now(), owner=owner, phone="13812345678")


async def _scan(w: World) -> list[int]:
    return await scan_stalls(w.repo, w.clock, ladder_from_rules(w.rules.escalation))


async def _breach(w: World) -> int:
    """A minute past the deadline: the owner's alert and the e-mail copy queued; returns the copy's outbox id."""
    w.clock.advance(minutes=1)
    await _scan(w)
    [row_id] = await w.repo.outbox_ids_for_keys([k for k in await _all_keys(w) if k.startswith("stallmail:")])
    return row_id


async def _all_keys(w: World) -> list[str]:
    async with w.engine.connect() as conn:
        return [r.dedup_key for r in (await conn.execute(select(OUTBOX))).all()]


async def _row(w: World, row_id: int):
    async with w.engine.connect() as conn:
        return (await conn.execute(select(OUTBOX).where(OUTBOX.c.id == row_id))).one()


async def test_the_breach_tells_the_owner_in_chat_and_copies_the_supervisor_once(world: World,
                                                                                smtp_server: SmtpStandIn) -> None:
    _mailing(world, smtp_server.url)
    order_id = await _stalled(world)
    row_id = await _breach(world)
    await world.drain()
    assert [s.message.chat_id for s in world.channel.sent] == ["200"]  # the owner in chat; the supervisor by mail
    [mail] = smtp_server.messages
    assert mail["To"] == BOSS and mail["From"] == FROM
    assert mail["Subject"] == "【OrderHub】订单超时抄送 TM-STALL · 设计中 · 超时 1分"
    body = mail.get_content()
    for fact in ("订单: TM-STALL", "阶段: 设计中", "负责人: 跟单员", "金额: ¥8,000.00", "城市: 杭州", "客户: 王** 138****5678",
                 "用卡片上的按钮处理"):
        assert fact in body, (fact, body)
    assert "13812345678" not in body and "13812345678" not in mail["Subject"]
    # rescans, the supervisor's own rung (chat only) and the region head's: still that one e-mail
    for hours in (1, 4, 4):
        world.clock.advance(hours=hours)
        await _scan(world)
        await world.drain()
    assert len(smtp_server.to(BOSS)) == 1 and len(smtp_server.messages) == 1
    assert world.channel.to("300")  # the supervisor's rung came in chat
    assert await world.repo.outbox_ids_for_keys([f"stallmail:{order_id}:designing"]) == [row_id]
    async with world.engine.connect() as conn:
        refs = (await conn.execute(select(REFS).where(REFS.c.outbox_id == row_id, REFS.c.platform == "email"))).all()
    assert len(refs) == 1  # the e-mail is recorded like a chat delivery


async def test_english_mail(world: World, smtp_server: SmtpStandIn) -> None:
    _mailing(world, smtp_server.url).language = "en"
    await _stalled(world)
    await _breach(world)
    await world.drain()
    [mail] = smtp_server.messages
    assert mail["Subject"] == "[OrderHub] Overdue order (copy) TM-STALL · Designing · overdue by 1m"
    assert "Open this alert in Telegram or WeCom" in mail.get_content()


async def test_a_restarted_notifier_sends_no_second_copy(world: World, smtp_server: SmtpStandIn) -> None:
    _mailing(world, smtp_server.url)
    await _stalled(world)
    await _breach(world)
    await world.drain()
    _mailing(world, smtp_server.url)  # the restarted process
    await world.notifier.run_once()
    await _scan(world)
    await world.drain()
    assert len(smtp_server.to(BOSS)) == 1


async def test_a_supervisor_without_chat_still_gets_the_email(world: World, smtp_server: SmtpStandIn) -> None:
    _mailing(world, smtp_server.url)
    await _stalled(world, boss_tg=None)
    row_id = await _breach(world)
    await world.drain()
    assert len(smtp_server.to(BOSS)) == 1
    assert (await _row(world, row_id)).status == "sent"
    assert world.channel.to("900") == []  # nobody unreachable: no admin notice


async def test_quiet_hours_never_hold_the_email_copy(world: World, smtp_server: SmtpStandIn) -> None:
    _mailing(world, smtp_server.url)
    await _stalled(world)
    async with world.engine.begin() as conn:  # everyone asleep all day long
        await conn.execute(UserRow.__table__.update().values(quiet_hours="00:00-23:59"))
    await _breach(world)
    await world.notifier.run_once()
    assert len(smtp_server.to(BOSS)) == 1 and world.channel.to("200") == []  # the chat alert waits, the copy not


async def test_unknown_mailbox_is_recorded_and_an_admin_told(world: World, smtp_server: SmtpStandIn) -> None:
    smtp_server.refuse[BOSS] = "550 5.1.1 unknown mailbox"
    _mailing(world, smtp_server.url)
    await _stalled(world)
    row_id = await _breach(world)
    await world.drain()
    assert smtp_server.messages == []
    assert len(world.channel.to("200")) == 1  # the owner's chat alert still delivered
    row = await _row(world, row_id)
    assert row.status == "failed" and "550" in row.last_error and BOSS in row.last_error
    [notice] = world.channel.texts_to("900")
    assert "email:boss@example.com" in notice and "550 5.1.1 unknown mailbox" in notice


async def test_smtp_down_is_retried_then_delivered_once(world: World) -> None:
    down = SmtpStandIn(free_port())  # nothing listens there yet: connection refused
    _mailing(world, down.url)
    await _stalled(world)
    row_id = await _breach(world)
    await world.notifier.run_once()
    assert len(world.channel.to("200")) == 1  # chat does not wait for the mail server
    row = await _row(world, row_id)
    assert row.status == "pending" and row.attempts == 1 and "e-mail" in row.last_error
    assert row.due_at.replace(tzinfo=None) > world.clock.now().replace(tzinfo=None)  # the row's backoff
    down.start()
    try:
        await world.drain()
        await world.notifier.run_once()
        assert len(down.to(BOSS)) == 1
        assert (await _row(world, row_id)).status == "sent"
    finally:
        down.stop()


async def test_without_smtp_the_copy_is_skipped_and_chat_unchanged(world: World) -> None:
    assert world.notifier.mailer is None
    await _stalled(world)
    row_id = await _breach(world)
    world.clock.advance(hours=4)
    await _scan(world)
    await world.drain()
    assert [s.message.chat_id for s in world.channel.sent] == ["200", "300"]
    row = await _row(world, row_id)
    assert row.status == "sent" and "no SMTP" in row.last_error
    assert world.channel.to("900") == []  # not an error an admin must chase
    async with world.engine.connect() as conn:
        assert (await conn.execute(select(REFS).where(REFS.c.platform == "email"))).all() == []


async def test_the_smtp_password_never_reaches_rows_notices_or_logs(world: World, caplog: pytest.LogCaptureFixture
                                                                    ) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    _mailing(world, f"smtp://orderhub:Pa55-w0rd-s3cret@127.0.0.1:{port}")  # down: refused, retried, given up
    await _stalled(world)
    row_id = await _breach(world)
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


async def test_a_supervisor_without_an_address_is_no_error(world: World, smtp_server: SmtpStandIn) -> None:
    _mailing(world, smtp_server.url)
    await world.user("管理员", "admin", [], tg="900")
    boss = await world.user("主管", "manager", ["华东"], tg="300")
    owner = await world.user("跟单员", "supply_chain", [], tg="200", supervisor_id=boss)
    await world.order("TM-NOMAIL", stage="designing", deadline=world.clock.now(), owner=owner)
    row_id = await _breach(world)
    await world.drain()
    row = await _row(world, row_id)
    assert row.status == "sent" and "no e-mail address" in row.last_error
    assert smtp_server.messages == [] and world.channel.to("900") == []  # no admin notice per breach


async def test_copies_due_together_are_one_email_retried_as_one_and_sent_once(world: World) -> None:
    """A burst (three orders of one owner breach in one scan): one e-mail listing all three; the server down at first
    → every row waits for its backoff; once up → still one e-mail, and a restarted notifier sends nothing more."""
    down = SmtpStandIn(free_port())
    _mailing(world, down.url)
    await world.user("管理员", "admin", [], tg="900")
    boss = await world.user("主管", "manager", ["华东"], tg="300", email=BOSS)
    owner_id = await world.user("跟单员", "supply_chain", [], tg="200", supervisor_id=boss)
    for ext in ("TM-B1", "TM-B2", "TM-B3"):
        await world.order(ext, stage="designing", deadline=world.clock.now(), owner=owner_id, phone="13812345678")
    world.clock.advance(minutes=1)
    await _scan(world)
    copies = await world.repo.outbox_ids_for_keys([k for k in await _all_keys(world) if k.startswith("stallmail:")])
    assert len(copies) == 3
    await world.notifier.run_once()
    assert {(await _row(world, i)).status for i in copies} == {"pending"}
    down.start()
    try:
        world.clock.advance(minutes=5)
        await world.notifier.run_once()
        [mail] = down.to(BOSS)
        body = mail.get_content()
        assert all(f"订单: {ext}\n" in body for ext in ("TM-B1", "TM-B2", "TM-B3")) and "3" in mail["Subject"]
        assert "13812345678" not in body and "138****5678" in body
        assert {(await _row(world, i)).status for i in copies} == {"sent"}
        _mailing(world, down.url)  # a restarted process
        world.clock.advance(minutes=5)
        await world.drain()
        assert len(down.to(BOSS)) == 1
    finally:
        down.stop()
