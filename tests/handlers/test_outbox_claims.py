"""Two live processes never both send one outbox row: the row is claimed in the database before it is sent.

The leader's sweep (`run_once`) and a decision's immediate delivery in another process (`deliver_ids`) reach for the
same pending row at the same instant. Each "process" here is a Notifier with its own engine (connection pool) and
repository on the one database, and its own channel; a gate inside one channel's send holds that process mid-send
while the other tries. A claim whose process died runs out and the row is taken over.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.mail import SmtpMailSender
from engine.stall import ladder_from_rules
from handlers.chat import ChatRef, Outgoing, RetryableSendError
from handlers.chat_ports import OutboxItem
from handlers.notifier import CLAIM_S, Notifier
from handlers.rate_limit import ChatRateLimiter
from handlers.stalls import scan_stalls
from storage.db import make_engine
from storage.chat_repo import SqlChatRepo
from storage.models import MessageRefRow, OutboxRow
from bot.settings import Settings
from tests.chatfake import FakeChannel, FakeTime
from tests.handlers.conftest import KEY, World
from tests.standins.smtp import SmtpStandIn

OUTBOX = OutboxRow.__table__


class GatedChannel(FakeChannel):
    """A fake channel whose first send stops mid-flight (`entered` set) until `release` is set; `then` is raised
    after the release instead of delivering, when given (the platform answered an error)."""

    def __init__(self, then: Exception | None = None) -> None:
        super().__init__("telegram")
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.then = then
        self._gated = False

    async def send(self, message: Outgoing) -> ChatRef:
        if not self._gated:
            self._gated = True
            self.entered.set()
            await self.release.wait()
            if self.then is not None:
                raise self.then
        return await super().send(message)


@pytest.fixture
async def other_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A second process's own engine on the same database."""
    engine = make_engine(Settings(database_url=database_url).async_database_url)
    yield engine
    await engine.dispose()


def _process(w: World, engine: AsyncEngine, channel: FakeChannel, repo: Any = None) -> Notifier:
    time = FakeTime(clock=w.clock)  # sleeping moves the clock on: a pass's waits count against its claim
    return Notifier(repo or SqlChatRepo(engine), {"telegram": channel}, w.clock, token_key=KEY, sleep=time.sleep,
                    limiter=ChatRateLimiter(monotonic=time.monotonic, sleep=time.sleep))


async def _new_card(w: World) -> int:
    """A pending approval card: a new message (not an idempotent edit), so a second send is a second card."""
    await w.user("经理", "manager", ["华东"], tg="100")
    order_id = await w.order("TM20251111-000001")
    aid = await w.approval(order_id, card=True)
    [row_id] = await w.repo.outbox_ids_for_keys([f"approval:{aid}"])
    return row_id


async def _row(w: World, row_id: int) -> Any:
    async with w.engine.connect() as conn:
        return (await conn.execute(select(OUTBOX).where(OUTBOX.c.id == row_id))).one()


async def _refs(w: World) -> list[Any]:
    async with w.engine.connect() as conn:
        return list((await conn.execute(select(MessageRefRow.__table__))).all())


async def _race(first: Callable[[], Any], second: Callable[[], Any], gate: GatedChannel) -> None:
    """`first` runs until it is mid-send; `second` runs to the end meanwhile; then `first` finishes."""
    task = asyncio.create_task(first())
    await asyncio.wait_for(gate.entered.wait(), 5)
    await asyncio.wait_for(second(), 5)
    gate.release.set()
    await asyncio.wait_for(task, 5)


@pytest.mark.parametrize("sweep_first", [True, False], ids=["sweep-mid-send", "decision-mid-send"])
async def test_the_sweep_and_an_immediate_delivery_in_two_processes_send_a_card_once(
        world: World, db: AsyncEngine, other_engine: AsyncEngine, sweep_first: bool) -> None:
    row_id = await _new_card(world)
    gate, plain = GatedChannel(), FakeChannel("telegram")
    leader = _process(world, db, gate if sweep_first else plain)
    deciding = _process(world, other_engine, plain if sweep_first else gate)
    sweep, decision = leader.run_once, (lambda: deciding.deliver_ids([row_id]))
    await _race(sweep if sweep_first else decision, decision if sweep_first else sweep, gate)

    assert len(gate.sent) + len(plain.sent) == 1  # exactly one card reached the manager
    assert len(gate.sent) == 1  # the one that claimed the row first sent it; the other left it alone
    row = await _row(world, row_id)
    assert row.status == "sent" and row.attempts == 1
    assert row.claimed_by is None and row.claimed_until is None  # marked: the claim is cleared
    assert len(await _refs(world)) == 1


class _OldCheck:
    """The repository as it was: a row "claimed" by re-reading its status, which two processes both pass."""

    def __init__(self, inner: SqlChatRepo) -> None:
        self._inner = inner

    async def claim_outbox(self, outbox_id: int, owner: str, now: datetime, until: datetime) -> OutboxItem | None:
        item = await self._inner.outbox_item(outbox_id)
        return item if item is not None and item.status == "pending" else None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_a_status_re_read_instead_of_a_claim_sends_the_card_twice(
        world: World, db: AsyncEngine, other_engine: AsyncEngine) -> None:
    """The finding as it was (and proof that the race above is really run): both processes send."""
    row_id = await _new_card(world)
    gate, plain = GatedChannel(), FakeChannel("telegram")
    leader = _process(world, db, gate, _OldCheck(SqlChatRepo(db)))
    deciding = _process(world, other_engine, plain, _OldCheck(SqlChatRepo(other_engine)))
    await _race(leader.run_once, lambda: deciding.deliver_ids([row_id]), gate)
    assert len(gate.sent) + len(plain.sent) == 2


async def test_a_dead_process_claim_runs_out_and_the_row_is_taken_over(world: World, other_engine: AsyncEngine) -> None:
    row_id = await _new_card(world)
    now = world.clock.now()
    assert await world.repo.claim_outbox(row_id, "dead-process", now, now + timedelta(seconds=CLAIM_S)) is not None

    survivor_channel = FakeChannel("telegram")
    survivor = _process(world, other_engine, survivor_channel)
    assert await survivor.run_once() == 0  # due, but held by the dead process: not handled here
    await survivor.deliver_ids([row_id])
    assert survivor_channel.sent == [] and (await _row(world, row_id)).status == "pending"

    world.clock.advance(seconds=CLAIM_S + 1)  # the dead process never renews: its claim runs out
    await survivor.run_once()
    assert len(survivor_channel.sent) == 1
    row = await _row(world, row_id)
    assert row.status == "sent" and row.claimed_by is None


async def test_a_pass_that_lost_its_claim_while_waiting_sends_nothing_more(
        world: World, db: AsyncEngine, other_engine: AsyncEngine) -> None:
    """The claim is renewed before every try: a process whose claim ran out (stuck in a slow call that then failed)
    and was taken over does not send on its retry."""
    row_id = await _new_card(world)
    slow = GatedChannel(then=RetryableSendError("Bad Gateway"))
    other = FakeChannel("telegram")
    stuck = _process(world, db, slow)
    taker = _process(world, other_engine, other)

    async def take_over() -> None:
        world.clock.advance(seconds=CLAIM_S + 1)
        await taker.run_once()
    await _race(stuck.run_once, take_over, slow)

    assert slow.sent == [] and len(other.sent) == 1
    assert slow.calls == 0  # the retry stopped at the claim, before the platform
    row = await _row(world, row_id)
    assert row.status == "sent" and row.attempts == 1 and row.last_error is None  # the taker's outcome stands


async def test_a_claim_is_renewed_by_its_holder_and_cleared_by_every_mark_and_deferral(world: World) -> None:
    row_id = await _new_card(world)
    repo, now = world.repo, world.clock.now()
    later = now + timedelta(seconds=CLAIM_S)
    assert await repo.claim_outbox(row_id, "a", now, later) is not None
    assert await repo.claim_outbox(row_id, "b", now, later) is None  # held by another
    renewed = await repo.claim_outbox(row_id, "a", now + timedelta(seconds=20), later + timedelta(seconds=20))
    assert renewed is not None and renewed.id == row_id
    assert await repo.claim_outbox(row_id, "b", later + timedelta(seconds=1), later) is None  # renewal counts

    await repo.mark_retry(row_id, now, "Bad Gateway")
    assert (await _row(world, row_id)).claimed_by is None
    assert await repo.claim_outbox(row_id, "b", now, later) is not None  # free again at once
    await repo.defer_outbox(row_id, now + timedelta(seconds=5), "quiet hours")  # quiet hours ending in 5 s
    assert (await _row(world, row_id)).claimed_by is None
    assert await repo.claim_outbox(row_id, "c", now + timedelta(seconds=5), later) is not None  # not held till 30 s
    await repo.mark_failed(row_id, "gave up", now)
    row = await _row(world, row_id)
    assert row.status == "failed" and row.claimed_by is None and row.claimed_until is None
    assert await repo.claim_outbox(row_id, "c", later + timedelta(days=1), later) is None  # not pending


async def test_breach_copies_batched_into_one_email_leave_out_a_row_another_process_holds(
        world: World, smtp_server: SmtpStandIn) -> None:
    """The batched e-mail path claims each row too: a copy held by another process is not in this process's e-mail;
    it goes once that claim has run out."""
    time = FakeTime(clock=world.clock)
    notifier = Notifier(world.repo, {"telegram": world.channel}, world.clock, token_key=KEY, sleep=time.sleep,
                        limiter=ChatRateLimiter(monotonic=time.monotonic, sleep=time.sleep),
                        mailer=SmtpMailSender(smtp_server.url, "OrderHub <orderhub@localhost>", timeout=5))
    boss = await world.user("主管", "manager", ["华东"], tg="300", email="boss@example.com")
    owner = await world.user("跟单员", "supply_chain", [], tg="200", supervisor_id=boss)
    for ext in ("TM-B1", "TM-B2", "TM-B3"):
        await world.order(ext, stage="designing", deadline=world.clock.now(), owner=owner)
    world.clock.advance(minutes=1)
    await scan_stalls(world.repo, world.clock, ladder_from_rules(world.rules.escalation))
    async with world.engine.connect() as conn:
        copies = [r.id for r in (await conn.execute(select(OUTBOX).where(OUTBOX.c.kind == "stall_mail")
                                                    .order_by(OUTBOX.c.id))).all()]
    assert len(copies) == 3
    now = world.clock.now()
    assert await world.repo.claim_outbox(copies[0], "other-process", now, now + timedelta(seconds=CLAIM_S))

    await notifier.run_once()
    [first] = smtp_server.to("boss@example.com")
    assert "TM-B1" not in first.get_content() and "TM-B2" in first.get_content()
    assert [(await _row(world, i)).status for i in copies] == ["pending", "sent", "sent"]

    world.clock.advance(seconds=CLAIM_S + 1)
    await notifier.run_once()
    mails = smtp_server.to("boss@example.com")
    assert len(mails) == 2 and "TM-B1" in mails[1].get_content() and "TM-B2" not in mails[1].get_content()
    assert [(await _row(world, i)).status for i in copies] == ["sent"] * 3
