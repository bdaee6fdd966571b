"""Issue 9.7: a leader killed mid-send. The kill is simulated by a `Killed` (a BaseException, like the process
ending) raised right after the platform delivered, so neither the attempt's completion nor the message ref is
written; a fresh notifier (the new leader) then sweeps the same database. Both real adapters, both stand-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.platforms.telegram.channel import TelegramChannel
from bot.platforms.wecom.channel import WecomChannel
from engine.rules import RuleSet
from handlers import metrics
from handlers.chat import Capabilities, ChatRef, Outgoing
from handlers.notifier import Notifier
from handlers.stalls import scan_stalls
from storage.models import ChatIdentityRow, MessageRefRow, OutboxRow, SendAttemptRow
from storage.send_attempts import SqlSendAttempts
from tests.chatfake import FakeTime, PassThroughChannel
from tests.handlers.conftest import KEY, T0, Clock, World, make_world
from tests.bot.conftest import open_telegram, open_wecom
from tests.standins.telegram_api import TelegramStandIn
from tests.standins.wecom_api import WecomStandIn


class Killed(BaseException):
    """The process ending between the platform's answer and the next database write."""


class KilledAfterSend(PassThroughChannel):
    """The real channel; the first send is delivered, then the 'process' dies before anything is recorded."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.kills = 1
        self.dedup_window_s = getattr(inner, "dedup_window_s", 0)

    async def send(self, message: Outgoing) -> ChatRef:
        ref = await self.inner.send(message)
        if self.kills:
            self.kills -= 1
            raise Killed()
        return ref


@pytest.fixture
async def wecom(wecom_api: WecomStandIn) -> AsyncIterator[WecomChannel]:
    async with open_wecom(wecom_api, timeout=5.0) as ch:
        yield ch


@pytest.fixture
async def telegram(telegram_api: TelegramStandIn) -> AsyncIterator[TelegramChannel]:
    async with open_telegram(telegram_api, timeout=5.0) as ch:
        yield ch


def _notifier(w: World, channel: Any, *, attempts: bool = True) -> Notifier:
    return Notifier(w.repo, {channel.platform: channel}, w.clock, token_key=KEY, sleep=w.time.sleep,
                    attempts=SqlSendAttempts(w.engine) if attempts else None)


async def _stall_alert(db: AsyncEngine, rules: RuleSet, platform: str, chat: str) -> World:
    clock = Clock(T0)
    w = make_world(db, rules, KilledAfterSend(_Placeholder(platform)), clock, FakeTime(clock=clock))
    owner = await w.user("跟单甲", "supply_chain", [])
    async with w.engine.begin() as conn:
        await conn.execute(insert(ChatIdentityRow.__table__).values(
            user_id=owner, platform=platform, external_id=chat, chat_id=chat, linked_at=clock.now()))
    await w.order("TM20251111-000001", stage="in_production", deadline=T0 - timedelta(hours=1), owner=owner,
                  amount="3000")
    assert len(await scan_stalls(w.repo, w.clock)) == 1
    return w


class _Placeholder:
    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.capabilities = Capabilities()


async def _kill_mid_send(w: World, channel: Any, *, attempts: bool = True) -> None:
    with pytest.raises(Killed):
        await _notifier(w, KilledAfterSend(channel), attempts=attempts).run_once()


async def _rows(w: World, table: Any) -> list[Any]:
    """The table's rows; for the outbox, the chat rows (not the breach's e-mail copy, `stall_mail`)."""
    query = select(table).order_by(table.c.id)
    if table is OutboxRow.__table__:
        query = query.where(table.c.kind != "stall_mail")
    async with w.engine.connect() as conn:
        return list((await conn.execute(query)).all())


def _resent(platform: str, outcome: str) -> float:
    return metrics.NOTIFY_RESENT.labels(platform=platform, outcome=outcome)._value.get()


async def test_wecom_takeover_resends_with_duplicate_check_and_exactly_one_is_delivered(
        db: AsyncEngine, rules: RuleSet, wecom: WecomChannel, wecom_api: WecomStandIn) -> None:
    w = await _stall_alert(db, rules, "wecom", "gendan1")
    await _kill_mid_send(w, wecom)
    [attempt] = await _rows(w, SendAttemptRow.__table__)
    assert attempt.finished_at is None and attempt.started_at is not None  # committed before the call, never completed
    assert len(wecom_api.delivered()) == 1 and not await _rows(w, MessageRefRow.__table__)

    before = _resent("wecom", "deduplicated")
    leader = _notifier(w, wecom)
    w.clock.advance(seconds=40)  # the lease runs out, the new leader sweeps
    await leader.run_once()

    calls = wecom_api.ok_calls("message/send")
    assert len(calls) == 2 and calls[0] == calls[1]  # resent: the identical request, duplicate check on
    assert calls[1]["enable_duplicate_check"] == 1 and calls[1]["duplicate_check_interval"] == 1800
    assert len(wecom_api.delivered()) == 1 and wecom_api.duplicates == [1]  # exactly one reached the person
    assert leader.attempts is not None and leader.attempts.resent == 1 and leader.attempts.possible_duplicates == 0
    assert _resent("wecom", "deduplicated") == before + 1
    [ref] = await _rows(w, MessageRefRow.__table__)
    assert ref.message_id == "oh-" + attempt.send_key == calls[0]["template_card"]["task_id"]
    attempts = await _rows(w, SendAttemptRow.__table__)
    assert len(attempts) == 2 and attempts[1].resend and attempts[1].finished_at is not None
    assert attempts[1].message_id == ref.message_id
    assert [r.status for r in await _rows(w, OutboxRow.__table__)] == ["sent"]


async def test_wecom_resend_after_the_duplicate_check_interval_is_counted_as_possible_duplicate(
        db: AsyncEngine, rules: RuleSet, wecom: WecomChannel, wecom_api: WecomStandIn) -> None:
    w = await _stall_alert(db, rules, "wecom", "gendan1")
    await _kill_mid_send(w, wecom)
    wecom_api.now = lambda: 1e12  # WeCom's interval is over: it would deliver the same request again
    w.clock.advance(seconds=1800)
    leader = _notifier(w, wecom)
    await leader.run_once()
    assert leader.attempts is not None and leader.attempts.possible_duplicates == 1  # no longer deduplicated
    # the card still lands once: the resend keeps its task_id, which WeCom refuses a second time
    assert len(wecom_api.delivered()) == 1
    assert [c.errcode for c in wecom_api.all_calls("message/send")] == [0, 40058]


async def test_telegram_takeover_resends_once_and_counts_a_possible_duplicate(
        db: AsyncEngine, rules: RuleSet, telegram: TelegramChannel,
        telegram_api: TelegramStandIn) -> None:
    w = await _stall_alert(db, rules, "telegram", "5550001")
    await _kill_mid_send(w, telegram)
    assert len(telegram_api.ok_calls("sendMessage")) == 1
    [attempt] = await _rows(w, SendAttemptRow.__table__)
    assert attempt.finished_at is None

    before = _resent("telegram", "possible_duplicate")
    leader = _notifier(w, telegram)
    w.clock.advance(seconds=40)
    await leader.run_once()
    await leader.run_once()  # nothing more: the resend was recorded

    assert len(telegram_api.ok_calls("sendMessage")) == 2  # resent once (no idempotency key on Telegram)
    assert leader.attempts is not None and leader.attempts.resent == 1 and leader.attempts.possible_duplicates == 1
    assert _resent("telegram", "possible_duplicate") == before + 1
    assert len(await _rows(w, MessageRefRow.__table__)) == 1
    assert [r.status for r in await _rows(w, OutboxRow.__table__)] == ["sent"]


async def test_a_send_completed_but_not_recorded_is_adopted_not_resent(
        db: AsyncEngine, rules: RuleSet, telegram: TelegramChannel,
        telegram_api: TelegramStandIn) -> None:
    """Killed after the attempt's completion but before the message ref: the new leader checks and sends nothing."""
    w = await _stall_alert(db, rules, "telegram", "5550001")
    dying = _notifier(w, telegram)

    async def record_sent_then_die(*_: Any) -> None:
        raise Killed()

    dying.repo = _Patched(w.repo, record_sent=record_sent_then_die)  # type: ignore[assignment]
    with pytest.raises(Killed):
        await dying.run_once()
    [attempt] = await _rows(w, SendAttemptRow.__table__)
    assert attempt.finished_at is not None and attempt.message_id

    leader = _notifier(w, telegram)
    w.clock.advance(seconds=40)  # the dead leader's lease and its claim on the row run out
    await leader.run_once()
    assert len(telegram_api.ok_calls("sendMessage")) == 1  # no second message
    [ref] = await _rows(w, MessageRefRow.__table__)
    assert ref.message_id == attempt.message_id
    assert leader.attempts is not None and leader.attempts.resent == 0
    assert [r.status for r in await _rows(w, OutboxRow.__table__)] == ["sent"]


async def test_without_attempt_records_the_takeover_doubles_the_message(
        db: AsyncEngine, rules: RuleSet, wecom: WecomChannel, wecom_api: WecomStandIn) -> None:
    """The finding as it was: no record before the call → the new leader's send is a second delivered message."""
    w = await _stall_alert(db, rules, "wecom", "gendan1")
    await _kill_mid_send(w, wecom, attempts=False)
    w.clock.advance(seconds=40)  # the dead leader's claim on the row runs out
    await _notifier(w, wecom, attempts=False).run_once()
    assert len(wecom_api.delivered()) == 2


class _Patched:
    def __init__(self, inner: Any, **overrides: Any) -> None:
        self._inner, self._overrides = inner, overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides.get(name) or getattr(self._inner, name)
