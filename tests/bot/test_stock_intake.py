"""Intake routes by the stock table (`routing.use_stock`), and an order whose SKU is short at every base gets one
automatic 库存不足 note through the note use case — classified, counted by trends, never doubled on redelivery."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli.rules import _explain
from bot.wiring.runtime import Runtime
from handlers.stock import AUTHOR
from storage.notes_repo import SqlTrendNotes
from storage.models import ExceptionNoteRow, OrderRow
from storage.stock_repo import SqlStock, StockLevel
from tests.bot.test_intake_flow import post
from tests.factories import order_json

NOW = datetime(2025, 11, 11, 4, tzinfo=UTC)


def _order(i: int, sku: str, qty: int = 2, note: str = "") -> dict[str, Any]:
    o = order_json(i, city="杭州")
    o["external_id"] = f"STK{i:03d}"
    o["items"] = [{**o["items"][0], "sku": sku, "qty": qty, "unit_price": "100.00"}]
    o["amount"] = f"{100 * qty}.00"
    o["notes"] = note
    return o


async def _row(db: AsyncEngine, ext: str) -> Any:
    async with db.connect() as conn:
        return (await conn.execute(select(OrderRow).where(OrderRow.external_id == ext))).one()


async def _notes(db: AsyncEngine, order_id: int) -> list[Any]:
    async with db.connect() as conn:
        return list((await conn.execute(select(ExceptionNoteRow).where(ExceptionNoteRow.order_id == order_id))).all())


async def _deliver(client: httpx.AsyncClient, runtime: Runtime, payload: Any) -> None:
    assert (await post(client, {"orders": payload} if isinstance(payload, list) else payload)).status_code == 202
    await runtime.intake_worker().run(burst=True)


async def test_intake_routes_to_the_nearest_base_with_stock(client: httpx.AsyncClient, runtime: Runtime,
                                                            db: AsyncEngine) -> None:
    await SqlStock(db).write([StockLevel("CUR-STK-A", "HZ", 1), StockLevel("CUR-STK-A", "FS", 5)], NOW)
    await _deliver(client, runtime, [_order(1, "CUR-STK-A", qty=2), _order(2, "CUR-STK-A", qty=1),
                                     _order(3, "CUR-STK-UNKNOWN", qty=2)])
    assert (await _row(db, "STK001")).production_base == "FS"  # Hangzhou has 1 of the 2 ordered
    assert (await _row(db, "STK002")).production_base == "HZ"  # 1 is enough: the nearest
    assert (await _row(db, "STK003")).production_base == "HZ"  # no stock known: distance alone
    for ext in ("STK001", "STK002", "STK003"):
        assert await _notes(db, (await _row(db, ext)).id) == []
    # the stock it saw is recorded with the decision: `rules explain --stored` replays the routing
    assert (await _row(db, "STK001")).decisions["inputs"]["stock"] == {"HZ:CUR-STK-A": 1, "FS:CUR-STK-A": 5}
    lines = "\n".join(await _explain(runtime.settings, runtime.current_rules(), "generic:STK001", True, "en"))
    assert "could not be" not in lines and "FS" in lines
    # a live explain reads the stock table as intake does: Hangzhou short of the 2 ordered
    live = "\n".join(await _explain(runtime.settings, runtime.current_rules(), "generic:STK001", False, "en"))
    assert "HZ (short of CUR-STK-A)" in live


async def test_out_of_stock_everywhere_notes_once(client: httpx.AsyncClient, runtime: Runtime,
                                                  db: AsyncEngine) -> None:
    await SqlStock(db).write([StockLevel("CUR-STK-Z", b, 0) for b in ("HZ", "FS", "LF", "CD")], NOW)
    order = _order(7, "CUR-STK-Z")
    await _deliver(client, runtime, order)
    row = await _row(db, "STK007")
    assert row.production_base is None and row.decisions["out_of_stock"] == ["CUR-STK-Z"]
    notes = await _notes(db, row.id)
    assert [(n.author, n.category, n.kind) for n in notes] == [(AUTHOR, "stock_shortage", "exception")]
    assert "库存不足" in notes[0].text and "CUR-STK-Z" in notes[0].text

    await _deliver(client, runtime, order)  # redelivered: a duplicate
    await _deliver(client, runtime, {**order, "notes": "改了备注"})  # changed: an update, still out of stock
    assert len(await _notes(db, row.id)) == 1
    fact = await SqlTrendNotes(db).note_fact(notes[0].id)  # what trend counting reads
    assert fact is not None and fact.category == "stock_shortage"


async def test_a_note_a_crash_left_unwritten_is_written_once_by_the_leaders_sweep(
        client: httpx.AsyncClient, runtime: Runtime, db: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The note follows intake's commit: the database going away in between leaves the order stored (and
    acknowledged) without it, and the redelivery is a duplicate. The leader's `stock_notes` job writes it, once."""
    await SqlStock(db).write([StockLevel("CUR-STK-C", b, 0) for b in ("HZ", "FS", "LF", "CD")], NOW)

    async def database_gone(*_: object) -> int:
        raise ConnectionError("the database went away after the intake commit")

    monkeypatch.setattr("bot.wiring.stock.note_out_of_stock", database_gone)
    order = _order(9, "CUR-STK-C")
    await _deliver(client, runtime, order)
    monkeypatch.undo()
    await _deliver(client, runtime, order)  # redelivered: a duplicate, nothing planned
    row = await _row(db, "STK009")
    assert row.decisions["out_of_stock"] == ["CUR-STK-C"] and await _notes(db, row.id) == []

    sweep = {name: job for name, _every, job in runtime.housekeeping_jobs()}["stock_notes"]
    assert await sweep() == 1
    assert await sweep() == 0  # one note per order, ever
    notes = await _notes(db, row.id)
    assert [(n.author, n.category) for n in notes] == [(AUTHOR, "stock_shortage")]


async def test_stock_restocked_routes_again_without_a_note(client: httpx.AsyncClient, runtime: Runtime,
                                                           db: AsyncEngine) -> None:
    stock = SqlStock(db)
    await stock.write([StockLevel("CUR-STK-R", b, 0) for b in ("HZ", "FS", "LF", "CD")], NOW)
    await stock.write([StockLevel("CUR-STK-R", "LF", 10)], NOW)  # merged: LF restocked, the others kept at 0
    assert await stock.levels(["CUR-STK-R"]) == {"HZ:CUR-STK-R": 0, "FS:CUR-STK-R": 0, "LF:CUR-STK-R": 10,
                                                  "CD:CUR-STK-R": 0}
    await _deliver(client, runtime, _order(8, "CUR-STK-R"))
    row = await _row(db, "STK008")
    assert row.production_base == "LF" and "out_of_stock" not in row.decisions
    assert await _notes(db, row.id) == []


def test_the_note_is_filed_under_stock_shortage_in_either_language() -> None:
    from bot.settings import BUNDLED_RULES
    from engine.rules import load_rules
    from handlers.notes import classify_text
    from handlers.stock import note_text

    rules = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
    for lang in ("zh", "en"):
        text = note_text(["CUR-A-280", "SOFA-9"], lang)
        assert "CUR-A-280" in text and "SOFA-9" in text
        assert classify_text(text, rules).category == "stock_shortage", lang
