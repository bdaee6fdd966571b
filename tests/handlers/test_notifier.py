"""The outbox notifier: exactly once under flaky sends, 429 waits honoured, permanent errors recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from handlers.chat import Card, PermanentSendError, RetryableSendError
from handlers.chat_ports import NewOutbox, OutboxItem
from handlers.notifier import MAX_ROW_ATTEMPTS, RENDERERS, Notifier, RenderContext, Rendered
from handlers.rate_limit import ChatRateLimiter
from storage.models import OutboxRow
from tests.chatfake import FakeTime
from tests.handlers.conftest import KEY, World

OUTBOX = OutboxRow.__table__


async def _alerts(w: World, n: int, recipients: int = 3) -> None:
    for i in range(recipients):
        await w.user(f"经理{i}", "manager", ["华东"], tg=str(100 + i))
    await w.user("管理员", "admin", [], tg="900")
    rows = [NewOutbox(f"notice:{i}", "notice", w.clock.now(), {"text": f"提醒 {i}"}, recipient_role="manager",
                      recipient_region="华东") for i in range(n)]
    await w.repo.enqueue(rows, w.clock.now())


async def _statuses(w: World) -> list[tuple[str, str]]:
    async with w.engine.connect() as conn:
        return [(r.dedup_key, r.status) for r in (await conn.execute(select(OUTBOX).order_by(OUTBOX.c.id))).all()]


async def test_every_alert_arrives_exactly_once_despite_429s_and_5xx(world: World) -> None:
    await _alerts(world, 40)
    world.channel.retry_rate, world.channel.server_error_rate = 0.30, 0.10
    await world.drain()
    delivered = [(s.message.chat_id, s.message.text) for s in world.channel.sent]
    assert len(delivered) == 40 * 3 == len(set(delivered))  # every alert to every manager, none twice
    assert all(status == "sent" for _, status in await _statuses(world))
    assert world.channel.calls > len(delivered)  # the failures really happened
    assert any(s == world.channel.retry_after for s in world.time.sleeps)  # 429s were waited out


async def test_retry_after_is_honoured_exactly(world: World) -> None:
    await _alerts(world, 1, recipients=1)
    world.channel.script = [RetryableSendError("Too Many Requests", retry_after=7)]
    await world.notifier.run_once()
    assert world.time.sleeps == [7]
    assert len(world.channel.sent) == 1


async def test_5xx_backs_off_then_row_waits_for_a_later_pass(world: World) -> None:
    await _alerts(world, 1, recipients=1)
    world.channel.script = [RetryableSendError("Bad Gateway")] * 6
    await world.notifier.run_once()
    assert world.time.sleeps == [1, 2, 4, 8]  # exponential backoff; a longer wait defers the row instead
    assert world.channel.sent == []
    async with world.engine.connect() as conn:
        row = (await conn.execute(select(OUTBOX))).one()
    assert row.status == "pending" and row.attempts == 1 and row.due_at > world.clock.now()
    assert "Bad Gateway" in row.last_error
    await world.drain()
    assert len(world.channel.sent) == 1


async def test_nothing_is_lost_or_doubled_across_a_restart(world: World) -> None:
    await _alerts(world, 1, recipients=3)
    # First process: reaches two managers, then the third send keeps failing and the process "dies".
    original_send = world.channel.send
    count = 0

    async def flaky(message):
        nonlocal count
        count += 1
        if count >= 3:
            raise RetryableSendError("timeout")
        return await original_send(message)

    world.channel.send = flaky  # type: ignore[method-assign]
    await world.notifier.run_once()
    assert len(world.channel.sent) == 2
    world.channel.send = original_send  # type: ignore[method-assign]
    # A new process, a new notifier, same rows.
    fresh = Notifier(world.repo, {"telegram": world.channel}, world.clock, token_key=KEY,
                     limiter=ChatRateLimiter(monotonic=world.time.monotonic, sleep=world.time.sleep),
                     sleep=world.time.sleep)
    world.clock.advance(minutes=10)
    await fresh.run_once()
    assert sorted(s.message.chat_id for s in world.channel.sent) == ["100", "101", "102"]


async def test_permanent_error_is_recorded_and_an_admin_told(world: World) -> None:
    await _alerts(world, 1, recipients=1)
    world.channel.permanent_chats = {"100"}
    await world.drain()
    statuses = dict(await _statuses(world))
    assert statuses["notice:0"] == "failed"
    async with world.engine.connect() as conn:
        row = (await conn.execute(select(OUTBOX).where(OUTBOX.c.dedup_key == "notice:0"))).one()
    assert "blocked" in row.last_error
    admin = world.channel.texts_to("900")
    assert len(admin) == 1 and "经理0（Telegram）" in admin[0] and "blocked" in admin[0]  # the person, not an id
    assert "telegram:" not in admin[0] and "notice" not in admin[0]


async def test_no_recipient_tells_admin_waits_for_a_link_then_fails(world: World) -> None:
    await world.user("管理员", "admin", [], tg="900")
    await world.repo.enqueue([NewOutbox("x", "notice", world.clock.now(), {"text": "hi"},
                                        recipient_role="manager", recipient_region="西南")], world.clock.now())
    await world.notifier.run_once()
    await world.notifier.run_once()
    assert dict(await _statuses(world))["x"] == "pending"
    admin = world.channel.texts_to("900")
    assert len(admin) == 1 and "没有在聊天中绑定账号的经理 · 西南" in admin[0] and "manager" not in admin[0]
    uid = await world.user("西南经理", "manager", ["西南"], tg="404")  # links in time
    assert uid
    await world.drain()
    assert world.channel.texts_to("404") == ["hi"]


async def test_no_recipient_ever_fails_in_the_end(world: World) -> None:
    await world.repo.enqueue([NewOutbox("x", "notice", world.clock.now(), {"text": "hi"},
                                        recipient_role="manager", recipient_region="西南")], world.clock.now())
    await world.drain()
    assert dict(await _statuses(world))["x"] == "failed"


async def test_no_channels_touches_nothing(world: World) -> None:
    await _alerts(world, 1, recipients=1)
    idle = Notifier(world.repo, {}, world.clock, token_key=KEY)
    assert await idle.run_once() == 0
    assert dict(await _statuses(world))["notice:0"] == "pending"


async def test_per_chat_rate_limit() -> None:
    ft = FakeTime()
    limiter = ChatRateLimiter(monotonic=ft.monotonic, sleep=ft.sleep)
    for _ in range(3):
        await limiter.acquire("telegram:1")
    assert ft.sleeps == [1.0, 1.0]  # ~1 message per second per chat
    await limiter.acquire("telegram:2")  # another chat is not held up
    assert ft.sleeps == [1.0, 1.0]


async def test_group_rate_limit_20_per_minute() -> None:
    ft = FakeTime()
    limiter = ChatRateLimiter(monotonic=ft.monotonic, sleep=ft.sleep)
    start = ft.now_s
    for _ in range(21):
        await limiter.acquire("telegram:-100", group=True)
    assert ft.now_s - start == pytest.approx(60.0)  # the 21st waits for the minute window


async def test_block_honours_retry_after() -> None:
    ft = FakeTime()
    limiter = ChatRateLimiter(monotonic=ft.monotonic, sleep=ft.sleep)
    await limiter.acquire("c")
    limiter.block("c", 12)
    await limiter.acquire("c")
    assert ft.sleeps == [12]


async def test_decided_request_is_not_sent(world: World) -> None:
    await world.user("东区经理", "manager", ["华东"], tg="101")
    order_id = await world.order("TM1")
    approval_id = await world.approval(order_id)
    from sqlalchemy import update

    from storage.models import ApprovalRow

    async with world.engine.begin() as conn:
        await conn.execute(update(ApprovalRow.__table__).values(status="approved"))
    await world.notifier.run_once()
    assert world.channel.sent == [] and dict(await _statuses(world))[f"approval:{approval_id}"] == "sent"


async def test_update_errors_are_retried(world: World) -> None:
    from handlers.approvals import outcome_outbox

    await world.user("东区经理", "manager", ["华东"], tg="101")
    order_id = await world.order("TM1")
    approval_id = await world.approval(order_id)
    await world.drain()
    world.channel.script = [RetryableSendError("flood", retry_after=2), PermanentSendError("message to edit not found")]
    ids = await world.repo.enqueue([outcome_outbox(approval_id, world.clock.now())], world.clock.now())
    await world.notifier.deliver_ids(ids)
    assert world.time.sleeps[-1] == 2
    assert dict(await _statuses(world))[f"approval_outcome:{approval_id}"] == "sent"


async def test_approval_cards_and_stall_alerts_exactly_once_on_a_flaky_channel(world: World) -> None:
    from handlers.stalls import scan_stalls

    await world.user("东区经理", "manager", ["华东"], tg="101")
    await world.user("东区经理二", "manager", ["华东"], tg="102")
    await world.user("南区经理", "manager", ["华南"], tg="202")
    approvals = []
    for i in range(15):
        city, region = ("杭州", "华东") if i % 3 else ("广州", "华南")
        approvals.append((await world.approval(await world.order(f"TM-A{i}", city=city), region=region), region))
    for i in range(15):
        await world.order(f"TM-S{i}", stage="ordered", deadline=world.clock.now(), city="上海")
    world.clock.advance(minutes=1)
    world.channel.retry_rate, world.channel.server_error_rate = 0.30, 0.10
    await scan_stalls(world.repo, world.clock)
    await world.drain()
    cards = [(s.message.chat_id, s.message.card.title) for s in world.channel.sent]
    assert len(cards) == len(set(cards))  # nothing twice
    expected_approvals = sum(2 if region == "华东" else 1 for _, region in approvals)
    assert sum("审批请求" in title for _, title in cards) == expected_approvals
    stall_cards = [c for c in cards if "订单超时" in c[1]]
    assert len(stall_cards) == 15 * 2  # no owner: the region's managers (华东 has two)
    assert all(status == "sent" for _, status in await _statuses(world))


async def test_long_flood_wait_defers_the_row_exactly_and_does_not_block_others(world: World) -> None:
    await _alerts(world, 2, recipients=1)
    world.channel.script = [RetryableSendError("Too Many Requests", retry_after=60)]
    await world.notifier.run_once()
    assert world.time.sleeps == []  # nobody held up for a minute
    async with world.engine.connect() as conn:
        first = (await conn.execute(select(OUTBOX).where(OUTBOX.c.dedup_key == "notice:0"))).one()
    assert first.status == "pending" and first.due_at == world.clock.now() + timedelta(seconds=60)
    world.clock.advance(seconds=59)
    await world.notifier.run_once()
    assert [s.text for s in world.channel.sent] == []  # not a second early (the chat is blocked as well)
    world.clock.advance(seconds=1)
    world.time.now_s += 60
    await world.notifier.run_once()
    assert sorted(s.text for s in world.channel.sent) == ["提醒 0", "提醒 1"]


async def test_a_broken_row_does_not_block_the_others(world: World) -> None:
    await _alerts(world, 1, recipients=1)
    await world.repo.enqueue([NewOutbox("broken", "stall_alert", world.clock.now() - timedelta(minutes=1),
                                        {"no_order_id": True}, recipient_role="admin")], world.clock.now())
    await world.notifier.run_once()
    assert [s.text for s in world.channel.sent] == ["提醒 0"]
    async with world.engine.connect() as conn:
        broken = (await conn.execute(select(OUTBOX).where(OUTBOX.c.dedup_key == "broken"))).one()
    assert broken.status == "pending" and "KeyError" in broken.last_error and broken.attempts == 1


async def test_storage_alerts_are_worded_for_the_admin(world: World) -> None:
    """Dead letters and rejected rules files are queued by storage as facts; the admin reads sentences."""
    await world.user("管理员", "admin", [], tg="900")
    now = world.clock.now()
    await world.repo.enqueue([
        NewOutbox("dead_letter:1-0", "dead_letter", now, {"entry_id": "1-0", "channel": "tmall",
                                                         "error": "KeyError: 'tid'", "attempts": 3},
                  recipient_role="admin"),
        NewOutbox("rules_invalid:ab", "rules_invalid", now, {"path": "rules.yaml", "error": "line 3: bad",
                                                             "error_zh": "第 3 行：错误"}, recipient_role="admin"),
    ], now)
    await world.notifier.run_once()
    texts = [s.message.text for s in world.channel.sent]
    assert len(texts) == 2
    assert "暂停处理" in texts[0] and "死信" not in texts[0] and "来自天猫" in texts[0] and "KeyError: 'tid'" in texts[0] and "replay-dead" in texts[0]
    assert "rules.yaml" in texts[1] and "第 3 行：错误" in texts[1] and "上一个有效版本" in texts[1]


async def test_a_row_with_nothing_to_say_is_never_sent_empty(world: World) -> None:
    await world.user("管理员", "admin", [], tg="900")
    await world.repo.enqueue([NewOutbox("odd:1", "mystery", world.clock.now(), {}, recipient_role="admin")],
                             world.clock.now())
    await world.notifier.run_once()
    assert world.channel.sent == []
    assert await _statuses(world) == [("odd:1", "pending")]  # retried later, then failed with an admin notice


def _notifier_with(world: World, renderers: dict) -> Notifier:
    return Notifier(world.repo, {"telegram": world.channel}, world.clock, token_key=KEY, renderers=renderers,
                    limiter=ChatRateLimiter(monotonic=world.time.monotonic, sleep=world.time.sleep),
                    sleep=world.time.sleep)


async def test_a_kind_registered_in_the_renderer_table_renders_and_sends_once(world: World) -> None:
    """A new kind is one constructor and one table entry: its card goes to the row's role, recorded, never twice."""
    seen: list[int] = []

    async def render_refund_ping(item: OutboxItem, ctx: RenderContext) -> Rendered | None:
        seen.append(item.id)
        if item.payload.get("stale"):
            return None  # no longer needs sending
        return Rendered(Card(f"退款 #{item.payload['refund_id']}", fields=(("金额", "¥12.00"),)))

    await world.user("经理", "manager", ["华东"], tg="100")
    now = world.clock.now()
    await world.repo.enqueue([
        NewOutbox("refund_ping:7", "refund_ping", now, {"refund_id": 7}, recipient_role="manager",
                  recipient_region="华东"),
        NewOutbox("refund_ping:8", "refund_ping", now, {"refund_id": 8, "stale": True}, recipient_role="manager",
                  recipient_region="华东")], now)
    notifier = _notifier_with(world, {"refund_ping": render_refund_ping})
    await notifier.run_once()
    await notifier.run_once()
    assert [s.message.card.title for s in world.channel.sent if s.message.card] == ["退款 #7"]
    assert world.channel.sent[0].message.chat_id == "100" and len(world.channel.sent) == 1
    assert await _statuses(world) == [("refund_ping:7", "sent"), ("refund_ping:8", "sent")]
    assert len(seen) == 2  # each rendered once: a sent row is not picked up again
    # Without the table entry the same kind is a plain-text row: no text, nothing is sent (see below).
    assert "refund_ping" not in RENDERERS and "refund_ping" in notifier.renderers


async def test_an_unknown_kind_with_nothing_to_say_ends_failed_and_an_admin_is_told(world: World) -> None:
    await world.user("管理员", "admin", [], tg="900")
    await world.user("经理", "manager", ["华东"], tg="100")
    now = world.clock.now()
    await world.repo.enqueue([
        NewOutbox("odd:1", "mystery", now, {"order_id": 1}, recipient_role="manager", recipient_region="华东"),
        NewOutbox("odd:2", "mystery", now, {"text": "纯文本"}, recipient_role="manager", recipient_region="华东"),
    ], now)
    await world.drain()
    assert dict(await _statuses(world))["odd:1"] == "failed"
    assert world.channel.texts_to("100") == ["纯文本"]  # an unknown kind with a text goes out as that text
    async with world.engine.connect() as conn:
        row = (await conn.execute(select(OUTBOX).where(OUTBOX.c.dedup_key == "odd:1"))).one()
    assert row.attempts == MAX_ROW_ATTEMPTS and "nothing to say" in row.last_error  # retried, then given up
    admin = world.channel.texts_to("900")
    assert len(admin) == 1 and "mystery" in admin[0] and "nothing to say" in admin[0]


def test_every_kind_a_producer_writes_has_a_renderer() -> None:
    """Kinds built by their constructors (and the producers' KIND constants) are in the table, not left to the
    plain-text fallback by accident."""
    from handlers import carrier_switch, carrier_trends, digest, notes, outbox_kinds, refunds, stalls, tracking

    written = {outbox_kinds.APPROVAL_REQUEST, outbox_kinds.ADMIN_NOTICE, outbox_kinds.DEAD_LETTER,
               outbox_kinds.RULES_INVALID, stalls.KIND, digest.KIND, notes.KIND, notes.REVIEW_KIND,
               carrier_trends.KIND, carrier_switch.KIND, carrier_switch.NOTICE, refunds.UPDATE_KIND,
               tracking.UPDATE_KIND, tracking.STALL_KIND}
    assert written <= set(RENDERERS)
    assert outbox_kinds.APPROVAL_OUTCOME not in RENDERERS  # it edits the copies sent, it renders nothing new
