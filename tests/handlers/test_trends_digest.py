"""Trend alerts and the morning digest on the real repositories: rows first (one per run, one per person per
day, however often the checks run), then delivered by the notifier through the recording fake channel."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import insert, select, update

from handlers.digest import DigestJob, digest_key
from handlers.notes import category_names, record_note
from storage.digest_repo import SqlDigestSource
from storage.models import DeadLetterRow, OrderRow, OutboxRow
from storage.notes_repo import SqlTrendNotes
from storage.orders_repo import SqlOrders
from tests.handlers.conftest import World

OUTBOX, ORDERS = OutboxRow.__table__, OrderRow.__table__
DELAY = "快递三天没有更新"


async def outbox_rows(world: World, kind: str) -> list:
    async with world.engine.connect() as conn:
        return (await conn.execute(select(OUTBOX).where(OUTBOX.c.kind == kind).order_by(OUTBOX.c.id))).all()


async def at_base(world: World, order_id: int, base: str) -> None:
    async with world.engine.begin() as conn:
        await conn.execute(update(ORDERS).where(ORDERS.c.id == order_id).values(production_base=base))


async def note(world: World, order_id: int, text: str = DELAY) -> tuple[str, ...]:
    result = await record_note(SqlOrders(world.engine), SqlTrendNotes(world.engine), world.repo, world.rules,
                               order_id, text, "客服", world.clock.now())
    world.clock.advance(minutes=5)
    return tuple(h.spec.id for h in result.trends)


async def test_five_delays_at_one_base_alert_supply_chain_once(world: World) -> None:
    await world.user("供应链", "supply_chain", tg="501")
    await world.user("管理员", "admin", tg="502")
    orders = [await world.order(f"TM{i}", stage="in_production") for i in range(7)]
    for oid in orders:
        await at_base(world, oid, "HZ")
    fired = [await note(world, oid) for oid in orders[:4]]
    assert fired == [(), (), (), ()] and await outbox_rows(world, "trend_alert") == []
    assert await note(world, orders[4]) == ("five-in-a-row-per-base",)
    assert await note(world, orders[5]) == ()  # the 6th of the same run: no second alert
    rows = await outbox_rows(world, "trend_alert")
    assert sorted(r.recipient_role for r in rows) == ["admin", "supply_chain"]  # the rule notifies both
    assert rows[0].payload["orders"] == ["tmall:TM0", "tmall:TM1", "tmall:TM2", "tmall:TM3", "tmall:TM4"]

    await world.drain()
    text = world.channel.texts_to("501")[0]
    assert text.startswith("📈 异常趋势 · 物流延迟")
    assert "连续 5 条 · 基地 HZ" in text and "TM0（天猫）、TM1（天猫）" in text and "tmall:" not in text and "five-in-a-row-per-base" in text
    assert len(world.channel.texts_to("502")) == 1


async def test_a_run_at_another_base_or_a_break_does_not_alert(world: World) -> None:
    await world.user("供应链", "supply_chain", tg="501")
    orders = [await world.order(f"TM{i}", stage="in_production") for i in range(6)]
    for i, oid in enumerate(orders):
        await at_base(world, oid, "HZ" if i != 2 else "GZ")  # the 3rd note is another base's
    for oid in orders[:4]:
        await note(world, oid)
    await note(world, orders[4], "亚麻面料库存不足")  # a different category breaks HZ's run
    await note(world, orders[5])
    assert await outbox_rows(world, "trend_alert") == []


async def test_an_unrouted_order_counts_for_no_base(world: World) -> None:
    orders = [await world.order(f"TM{i}", stage="designing") for i in range(5)]
    assert [await note(world, oid) for oid in orders] == [()] * 5


async def seed_business(world: World) -> dict[str, int]:
    """Users of every role (one manager without a chat), stalled orders in two regions, approvals, notes."""
    ids = {
        "admin": await world.user("管理员", "admin", tg="601"),
        "sc": await world.user("供应链", "supply_chain", tg="602"),
        "east": await world.user("东区经理", "manager", ["华东"], tg="603"),
        "south": await world.user("南区经理", "manager", ["华南"]),  # not linked: nothing to send to
        "fin": await world.user("财务", "finance", tg="605"),  # not a digest recipient
    }
    past = world.clock.now() - timedelta(hours=2)
    await world.order("TM-E1", city="杭州", stage="designing", deadline=past)
    await world.order("TM-S1", city="广州", stage="in_production", deadline=past)
    await world.approval(await world.order("TM-E2", city="杭州"))
    await world.approval(await world.order("TM-S2", city="广州"), region="华南")
    await note(world, await world.order("TM-E3", city="杭州", stage="designing"))
    async with world.engine.begin() as conn:
        await conn.execute(insert(DeadLetterRow.__table__).values(
            entry_id="1-0", channel="generic", body="{}", error="bad", attempts=3, created_at=world.clock.now()))
    return ids


def digest_job(world: World) -> DigestJob:
    return DigestJob(SqlDigestSource(world.engine), world.repo, world.clock, lambda: category_names(world.rules),
                     time(8, 30), "Asia/Shanghai", "zh")


async def test_the_digest_goes_once_to_each_linked_recipient(world: World) -> None:
    ids = await seed_business(world)  # the clock reads 10:00 in Shanghai
    first = await digest_job(world).run()
    assert len(first) == 3
    assert await digest_job(world).run() == []  # again, or from a second scheduler: nothing new
    rows = await outbox_rows(world, "digest")
    day = world.clock.now().date()
    assert {r.dedup_key for r in rows} == {digest_key(day, ids[k]) for k in ("admin", "sc", "east")}
    texts = {r.recipient_user_id: r.payload["text"] for r in rows}
    everything, east = texts[ids["admin"]], texts[ids["east"]]
    assert everything == texts[ids["sc"]]
    for piece in ("☀️ 早报 · 2025-11-11", "当前超时订单：2", "· 设计中：1", "· 生产中：1", "待审批：2",
                  "· 物流延迟：1", "无法入库、等待处理的订单：1"):
        assert piece in everything, piece
    assert "早报 · 2025-11-11（华东）" in east and "当前超时订单：1" in east and "待审批：1" in east
    assert "TM-E2（天猫）" in east and "TM-S2" not in east and "tmall:" not in east

    await world.drain()

    def digests(chat: str) -> list[str]:  # the admin also hears that nobody in 华南 can be reached
        return [t for t in world.channel.texts_to(chat) if t.startswith("☀️")]

    assert digests("601") == [everything] and digests("602") == [everything]
    assert digests("603") == [east]
    assert digests("605") == []


async def test_catch_up_sends_only_after_the_digest_time(world: World) -> None:
    await seed_business(world)
    world.clock.at = datetime(2025, 11, 11, 0, 29, tzinfo=UTC)  # 08:29 in Shanghai
    assert await digest_job(world).catch_up() == []
    world.clock.at = datetime(2025, 11, 11, 0, 31, tzinfo=UTC)
    assert len(await digest_job(world).catch_up()) == 3
    assert await digest_job(world).catch_up() == []
    world.clock.at += timedelta(days=1)  # the next day is a new digest
    assert len(await digest_job(world).catch_up()) == 3


def test_trend_card_in_english_with_a_window_and_many_orders() -> None:
    from handlers.cards import trend_card

    payload = {"trend_id": "carrier-delays", "category_zh": "物流延迟", "category_en": "Logistics delay", "count": 25,
               "per": "carrier", "group": "SF", "window_s": 86400, "orders": [f"tmall:TM{i}" for i in range(25)]}
    card = trend_card(payload, "en")
    assert card.title == "📈 Anomaly trend · Logistics delay"
    text = card.as_text()
    assert "25 within 1d · carrier SF" in text and "TM0 (Tmall), TM1 (Tmall)" in text
    assert "TM19 (Tmall)" in text and "TM20" not in text and "tmall:" not in text and "… and 5 more" in text
