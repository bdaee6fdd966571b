"""Intake decides on the same history facts that `rules explain` and `rules diff` load (issue 8.2).

Before, intake evaluated every order with empty `Facts()`: `repeat-customer` and `complaints` never fired at intake,
while explain and diff showed them firing — a world intake never saw.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.cli.rules import _explain
from bot.wiring.runtime import Runtime
from engine.rules import evaluate
from storage.models import ExceptionNoteRow, OrderRow
from storage.rules_repo import RulesRepo
from tests.bot.test_intake_flow import post
from tests.factories import order_json


def _order(i: int, customer: str, created: datetime, **kw: Any) -> dict[str, Any]:
    o = order_json(i, **kw)
    o["external_id"] = f"F{i:05d}"
    o["customer"]["id"] = customer
    o["created_at"] = created.isoformat()
    o["notes"] = ""  # no "加急" weight: only history changes the priority
    return o


async def _stored(db: AsyncEngine, external_id: str) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(select(OrderRow).where(OrderRow.external_id == external_id))).one()


async def test_intake_explain_and_diff_see_the_same_history(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    start = (now - timedelta(days=2)).replace(hour=4)  # 12:00 in Shanghai: no night-order weight
    earlier = [_order(i, "REPEAT", start + timedelta(minutes=i), city="北京") for i in range(3)]
    assert (await post(client, {"orders": earlier})).status_code == 202
    await runtime.intake_worker().run(burst=True)
    first = await _stored(db, "F00000")
    async with db.begin() as conn:  # two complaints about the customer's first order, this week
        await conn.execute(insert(ExceptionNoteRow), [
            {"order_id": first.id, "at": now - timedelta(days=1, hours=h), "author": "客服", "text": "投诉",
             "kind": "complaint"} for h in (1, 2)])
    assert (await post(client, _order(9, "REPEAT", start + timedelta(hours=1), city="北京"))).status_code == 202
    await runtime.intake_worker().run(burst=True)

    row = await _stored(db, "F00009")
    fired = set(row.decisions["fired"])
    assert {"repeat-customer", "complaints"} <= fired  # intake saw 3 earlier orders and 2 complaints
    assert row.decisions["inputs"]["history"] == {"complaints_30d": 2, "previous_orders": 3, "exception_notes_30d": 0}

    repo = RulesRepo(async_sessionmaker(db, expire_on_commit=False))
    rules = runtime.current_rules()
    # what `rules diff` evaluates: the recent orders with their facts, as loaded by the repository
    recent = {o.data.external_id: o for o in await repo.orders_created_since(now - timedelta(days=30))}
    facts = await repo.facts_for(list(recent.values()), now)
    diff_view = evaluate(recent["F00009"], facts[recent["F00009"].id], rules, now).to_json(trace=False)
    assert diff_view["priority"] == row.priority
    assert diff_view["fired"] == row.decisions["fired"]
    assert diff_view["inputs"]["history"] == row.decisions["inputs"]["history"]
    # what `rules explain` prints, and `explain --stored` reproduces the stored decision from its recorded inputs
    lines = "\n".join(await _explain(runtime.settings, rules, "generic:F00009", False, "en"))
    assert "repeat-customer — matched" in lines and "complaints — matched" in lines
    stored_lines = "\n".join(await _explain(runtime.settings, rules, "generic:F00009", True, "en"))
    assert "repeat-customer — matched" in stored_lines and "could not be" not in stored_lines


async def test_earlier_orders_of_the_same_batch_count_as_history(
    client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine
) -> None:
    start = (datetime.now(UTC) - timedelta(days=1)).replace(hour=4)
    batch = [_order(i, "NEWBIE", start + timedelta(minutes=i), city="北京") for i in range(4)]
    assert (await post(client, {"orders": batch})).status_code == 202
    await runtime.intake_worker().run(burst=True)
    firsts = [await _stored(db, f"F{i:05d}") for i in range(3)]
    last = await _stored(db, "F00003")
    assert all("repeat-customer" not in r.decisions["fired"] for r in firsts)
    assert "repeat-customer" in last.decisions["fired"]
    assert last.decisions["inputs"]["history"]["previous_orders"] == 3


async def test_the_history_of_a_batch_is_one_query(runtime: Runtime, db: AsyncEngine) -> None:
    from sqlalchemy import event

    from handlers.intake import FACTS_WINDOW
    from storage.intake_store import SqlIntakeStore

    store = SqlIntakeStore(db, runtime.clock)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(db.sync_engine, "before_cursor_execute", count)
    try:
        asked = [(f"C{i}", datetime.now(UTC), "generic", f"X{i}") for i in range(300)]
        assert await store.history(asked, datetime.now(UTC) - FACTS_WINDOW) == {}
    finally:
        event.remove(db.sync_engine, "before_cursor_execute", count)
    assert len([s for s in statements if "exception_notes" in s]) == 1
