"""The PostgreSQL intake unit's value conversion and statement building, and (on PostgreSQL) that it stores exactly
the rows the SQLAlchemy Core unit stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import BUNDLED_RULES
from engine.channels import default_adapters
from engine.rules import load_rules
from handlers.intake import IntakePlan, payload_hash, plan_new_order
from storage.intake_unit import APPROVALS, ORDERS, OUTBOX, TRANSITIONS, SqlIntakeUnit
from storage.intake_store_pg import PgIntakeUnit, RecordsInsert, _naive_utc
from tests.factories import order_json

NOW = datetime(2025, 11, 11, 2, 0, 0, 123456, tzinfo=UTC)
RULES = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))


def test_naive_utc_memo_converts_instants_and_still_refuses_naive_values() -> None:
    at = datetime(2025, 11, 11, 2, 0, tzinfo=UTC)
    assert _naive_utc(at) == datetime(2025, 11, 11, 2, 0)
    same_instant = datetime(2025, 11, 11, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    assert _naive_utc(same_instant) == datetime(2025, 11, 11, 2, 0)
    with pytest.raises(ValueError, match="naive"):
        _naive_utc(datetime(2025, 11, 11, 2, 0))  # equal wall time to a cached key, still refused
    assert _naive_utc(None) is None


def test_rows_travel_as_one_json_text_with_shared_values_and_defaults_sent_once() -> None:
    stmt = RecordsInsert(ORDERS, ["channel", "external_id", "created_at", "amount", "items"], shared=["updated_at"])
    plus8 = timezone(timedelta(hours=8))
    rows = [{"channel": "generic", "external_id": f"E{i}", "created_at": datetime(2025, 11, 11, 10, i, tzinfo=plus8),
             "amount": Decimal("12.34") * i, "items": [{"sku": "S", "unit_price": Decimal("1.50")}]} for i in range(3)]
    params = stmt.params(rows, {"updated_at": NOW})
    sent = orjson.loads(params[0])
    assert [r["created_at"] for r in sent] == ["2025-11-11T02:00:00", "2025-11-11T02:01:00", "2025-11-11T02:02:00"]
    assert [r["amount"] for r in sent] == [0, 1234, 2468]  # fen
    assert sent[0]["items"] == [{"sku": "S", "unit_price": "1.50"}]  # nested JSON, a Decimal as its text
    assert stmt.scalars[0] == "updated_at" and params[1] == datetime(2025, 11, 11, 2, 0, 0, 123456)
    assert "flagged" in stmt.scalars and params[1 + stmt.scalars.index("flagged")] is False  # a model default
    assert "json_to_recordset(convert_from($1::bytea, 'UTF8')::json)" in stmt.sql and "$2::timestamp" in stmt.sql and "ORDER BY u.n" in stmt.sql
    assert '"created_at" timestamp' in stmt.sql and '"amount" int8' in stmt.sql and '"items" JSON' in stmt.sql
    assert '"channel" text' in stmt.sql  # never varchar(n): the INSERT's assignment cast refuses over-long values
    with pytest.raises(ValueError, match="naive"):
        stmt.params([{**rows[0], "created_at": datetime(2025, 11, 11, 2, 0)}])
    child = RecordsInsert(TRANSITIONS, ["channel", "external_id", "at", "to_stage", "actor"], start=9, via_orders=True)
    assert child.sql.startswith("INSERT INTO stage_transitions (order_id, at, to_stage, actor, reason) SELECT o.id")
    assert "json_to_recordset(convert_from($9::bytea, 'UTF8')::json)" in child.sql and "$10::text" in child.sql  # `reason`'s default
    assert 'JOIN o ON o.channel = u."channel" AND o.external_id = u."external_id"' in child.sql


# --- on PostgreSQL: the same rows as the Core unit -------------------------------------------------------------------


def _plans(channel: str) -> list[IntakePlan]:
    plus8 = timezone(timedelta(hours=8))
    raws: list[dict[str, Any]] = [order_json(i) for i in range(6)]
    raws[0] |= {"amount": "9800.50", "notes": "含中文和 \"引号\" \\ 反斜杠", "custom_fields": {"install_date": "2025-11-20",
                "nested": {"x": [1, 2.5, None, True], "名": "值"}, "big": 12345678901234}}  # needs approval
    raws[1] |= {"created_at": datetime(2025, 11, 11, 9, 30, 15, 500, tzinfo=plus8).isoformat(), "notes": ""}
    raws[2] |= {"amount": "0.01"}
    plans = []
    for i, raw in enumerate(raws):
        data = default_adapters()["generic"].to_order({**raw, "external_id": f"E{i}"})
        received = NOW - timedelta(seconds=i, microseconds=7)
        plans.append(plan_new_order(channel, data, payload_hash(data), received, RULES, NOW))
    assert any(p.approvals for p in plans) and any(not p.approvals for p in plans)
    return plans


async def _stored(db: AsyncEngine, channel: str) -> list[tuple[Any, ...]]:
    """Every row written for the orders of `channel`, without ids (and the channel itself)."""
    async with db.connect() as conn:
        orders = (await conn.execute(select(ORDERS).where(ORDERS.c.channel == channel)
                                     .order_by(ORDERS.c.external_id))).all()
        ids = {r.id: r.external_id for r in orders}
        transitions = (await conn.execute(select(TRANSITIONS).where(TRANSITIONS.c.order_id.in_(ids))
                                          .order_by(TRANSITIONS.c.id))).all()
        approvals = (await conn.execute(select(APPROVALS).where(APPROVALS.c.order_id.in_(ids))
                                        .order_by(APPROVALS.c.id))).all()
        outbox = (await conn.execute(select(OUTBOX).where(OUTBOX.c.kind == "approval_request")
                                     .order_by(OUTBOX.c.id))).all()
    approval_ext = {a.id: ids[a.order_id] for a in approvals}
    out: list[tuple[Any, ...]] = []
    for r in orders:
        out.append(("order", *(v for k, v in r._mapping.items() if k not in ("id", "channel"))))
    for t in transitions:
        out.append(("transition", ids[t.order_id], *(v for k, v in t._mapping.items() if k not in ("id", "order_id"))))
    for a in approvals:
        out.append(("approval", ids[a.order_id], *(v for k, v in a._mapping.items() if k not in ("id", "order_id"))))
    for o in outbox:
        payload = o.payload
        if payload["approval_id"] in approval_ext:
            rest = {k: v for k, v in o._mapping.items() if k not in ("id", "dedup_key", "payload")}
            out.append(("outbox", approval_ext[payload["approval_id"]], *rest.values()))
    return out


async def test_pg_unit_stores_the_same_rows_as_core(db: AsyncEngine) -> None:
    if db.dialect.name != "postgresql":
        pytest.skip("the array-free PostgreSQL unit runs on PostgreSQL only")
    async with db.begin() as conn:
        assert await SqlIntakeUnit(conn, NOW).insert_new(_plans("core")) == {("core", f"E{i}") for i in range(6)}
    async with db.begin() as conn:
        unit = PgIntakeUnit(conn, NOW)
        assert await unit.insert_new(_plans("pg")) == {("pg", f"E{i}") for i in range(6)}
        assert await unit.insert_new(_plans("pg")) == set()  # all stored already: nothing, and no children twice
    core, pg = await _stored(db, "core"), await _stored(db, "pg")
    assert len(pg) == len(core) > 12 and pg == core  # in id order too: an order's history reads in it
    async with db.connect() as conn:  # the JSON columns hold the same documents
        (fields,) = (await conn.execute(select(ORDERS.c.custom_fields)
                                        .where(ORDERS.c.channel == "pg", ORDERS.c.external_id == "E0"))).one()
    assert fields["nested"] == {"x": [1, 2.5, None, True], "名": "值"} and fields["big"] == 12345678901234


async def test_pg_unit_refuses_an_over_long_value_as_core_does(db: AsyncEngine) -> None:
    if db.dialect.name != "postgresql":
        pytest.skip("the array-free PostgreSQL unit runs on PostgreSQL only")
    plan = _plans("long")[3]
    plan.rules_version = "v" * 65  # the column is varchar(64): never truncated silently
    with pytest.raises(Exception, match="too long"):
        async with db.begin() as conn:
            await PgIntakeUnit(conn, NOW).insert_new([plan])


def test_the_bulk_approval_outbox_sql_is_the_constructors_row() -> None:
    """The PG unit's one-statement outbox rows come from `handlers.outbox_kinds.approval_request`: its dedup key,
    payload and recipients become the SELECT list; literals are quoted, other values refused."""
    from datetime import datetime

    from handlers.chat_ports import NewOutbox
    from storage.intake_store_pg import _OUTBOX_FOR_APPROVALS, _Col, _outbox_select

    assert _OUTBOX_FOR_APPROVALS.startswith(
        "INSERT INTO outbox (dedup_key, kind, created_at, due_at, recipient_role, recipient_region, payload, status, "
        "attempts) SELECT 'approval:' || (a.id)::text, 'approval_request', ${now}::timestamp, ${now}::timestamp, "
        "a.required_role, a.region, json_build_object('approval_id', a.id, 'order_id', a.order_id), 'pending', 0 "
        "FROM a WHERE")
    row = NewOutbox(f"x:{_Col('a.id')}:o'k", "k", _Col("now()"), {"n": 3, "s": "it's", "id": _Col("a.id")},
                    recipient_user_id=_Col("a.user_id"))
    sql = _outbox_select(row, _Col("now()"))
    assert sql == ("INSERT INTO outbox (dedup_key, kind, created_at, due_at, recipient_user_id, payload, status, "
                   "attempts) SELECT 'x:' || (a.id)::text || ':o''k', 'k', now(), now(), a.user_id, "
                   "json_build_object('n', 3, 's', 'it''s', 'id', a.id), 'pending', 0")
    with pytest.raises(TypeError):
        _outbox_select(NewOutbox("k", "k", _Col("now()"), {"at": datetime(2025, 1, 1)}), _Col("now()"))
