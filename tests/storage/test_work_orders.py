"""Production work-order numbers (issue 13.5): given when an order is confirmed, by storage's one stage writer, in the
rules' format, one running number per base and local day, unique when two workers confirm at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import BUNDLED_RULES, Settings
from engine.rules import RuleSet, load_rules
from handlers.orders import transition
from storage.db import make_engine
from storage.models import OrderRow
from storage.orders_repo import SqlOrders

NOW = datetime(2025, 11, 11, 17, 30, tzinfo=UTC)  # 01:30 on 12 November in Shanghai


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))


def _with_format(fmt: str) -> str:
    text = BUNDLED_RULES.read_text(encoding="utf-8")
    line = '  work_order_format: "{base}-{date}-{seq:04d}"'
    assert line in text
    return text.replace(line, f'  work_order_format: "{fmt}"', 1)


async def _orders(db: AsyncEngine, n: int, base: str | None = "HZ", start: int = 0) -> list[int]:
    async with db.begin() as conn:
        res = await conn.execute(insert(OrderRow).returning(OrderRow.id), [dict(
            channel="generic", external_id=f"W{base}{start + i:05d}", created_at=NOW - timedelta(hours=1),
            received_at=NOW, updated_at=NOW, customer_id=f"C{i}", customer_name="王女士",
            customer_phone="13800138000", customer_city="杭州", customer_tier="normal", region="华东",
            amount=Decimal("3000.00"), currency="CNY", items=[], custom_fields={}, notes="", payload_hash="h",
            stage="pending_confirm", stage_entered_at=NOW, stage_deadline=None, priority=50, flagged=False,
            production_base=base, manual_intervention=False) for i in range(n)])
        return list(res.scalars())


async def _numbers(db: AsyncEngine) -> dict[int, str | None]:
    async with db.connect() as conn:
        return dict((await conn.execute(select(OrderRow.id, OrderRow.work_order_no))).all())


async def test_confirming_gives_the_next_number_of_the_base_and_local_day(db: AsyncEngine, rules: RuleSet) -> None:
    store = SqlOrders(db)
    hz = await _orders(db, 2, "HZ")
    gz = await _orders(db, 1, "GZ")
    none = await _orders(db, 1, None)
    for oid in [*hz, *gz, *none]:
        await transition(store, rules, str(oid), "designing", "", "ops", NOW)
    numbers = await _numbers(db)
    assert [numbers[i] for i in hz] == ["HZ-20251112-0001", "HZ-20251112-0002"]  # the day in the rules' zone
    assert numbers[gz[0]] == "GZ-20251112-0001"  # each base counts on its own
    assert numbers[none[0]] is None  # no production base: nothing to number
    await transition(store, rules, str(hz[0]), "ordered", "", "ops", NOW + timedelta(days=1))
    assert (await _numbers(db))[hz[0]] == "HZ-20251112-0001"  # later moves keep the number
    later = await _orders(db, 1, "HZ", start=50)
    await transition(store, rules, str(later[0]), "designing", "", "ops", NOW + timedelta(days=1))
    assert (await _numbers(db))[later[0]] == "HZ-20251113-0001"  # a new day starts at 1


async def test_the_format_comes_from_the_rules(db: AsyncEngine, rules: RuleSet) -> None:
    text = _with_format("WO/{base}/{date}/{seq:06d}")
    custom = load_rules(text, "custom.yaml")
    [oid] = await _orders(db, 1, "HZ")
    await transition(SqlOrders(db), custom, str(oid), "designing", "", "ops", NOW)
    assert (await _numbers(db))[oid] == "WO/HZ/20251112/000001"


@pytest.mark.parametrize("fmt", ["{base}-{date}", "{base}-{seq}", "{date}{seq}", "{base.upper}-{date}-{seq}",
                                 "{base}-{date}-{seq}-{x}", "{base}-{date}-{seq:04d}" + "X" * 60])
def test_a_format_without_base_date_and_seq_is_refused(fmt: str) -> None:
    from engine.rules import RulesError

    text = _with_format(fmt)
    with pytest.raises(RulesError):
        load_rules(text, "bad.yaml")


async def _confirm_all(url: str, rules: RuleSet, ids: list[int]) -> None:
    """One worker: its own engine (connection pool), confirming its share 20 at a time."""
    engine = make_engine(Settings(_env_file=None, database_url=url).async_database_url)
    store = SqlOrders(engine)
    try:
        for i in range(0, len(ids), 20):
            await asyncio.gather(*(transition(store, rules, str(oid), "designing", "", "w", NOW)
                                   for oid in ids[i:i + 20]))
    finally:
        await engine.dispose()


async def _concurrent(db: AsyncEngine, database_url: str, rules: RuleSet, n: int) -> None:
    ids = await _orders(db, n, "HZ")
    await asyncio.gather(_confirm_all(database_url, rules, ids[0::2]), _confirm_all(database_url, rules, ids[1::2]))
    numbers = [v for k, v in (await _numbers(db)).items() if k in set(ids)]
    assert None not in numbers and len(set(numbers)) == n
    assert sorted(numbers) == [f"HZ-20251112-{i:04d}" for i in range(1, n + 1)]  # no gaps, no duplicates


async def test_two_workers_confirming_at_once_never_share_a_number(db: AsyncEngine, database_url: str,
                                                                   rules: RuleSet) -> None:
    await _concurrent(db, database_url, rules, 200)


@pytest.mark.slow
async def test_2000_orders_confirmed_by_two_workers_get_2000_distinct_numbers(db: AsyncEngine, database_url: str,
                                                                            rules: RuleSet) -> None:
    await _concurrent(db, database_url, rules, 2000)
