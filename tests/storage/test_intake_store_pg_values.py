"""The PostgreSQL intake unit's value conversion and statement building (no database needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from storage.intake_store import ORDERS, TRANSITIONS
from storage.intake_store_pg import UnnestInsert, _naive_utc


def test_naive_utc_memo_converts_instants_and_still_refuses_naive_values() -> None:
    at = datetime(2025, 11, 11, 2, 0, tzinfo=UTC)
    assert _naive_utc(at) == datetime(2025, 11, 11, 2, 0)
    same_instant = datetime(2025, 11, 11, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    assert _naive_utc(same_instant) == datetime(2025, 11, 11, 2, 0)
    with pytest.raises(ValueError, match="naive"):
        _naive_utc(datetime(2025, 11, 11, 2, 0))  # equal wall time to a cached key, still refused
    assert _naive_utc(None) is None


def test_shared_values_and_defaults_are_sent_once() -> None:
    stmt = UnnestInsert(ORDERS, ["channel", "external_id", "created_at"], shared=["updated_at"])
    now = datetime(2025, 11, 11, 2, 0, tzinfo=UTC)
    rows = [{"channel": "generic", "external_id": f"E{i}",
             "created_at": now - timedelta(hours=i)} for i in range(3)]
    params = stmt.params(rows, {"updated_at": now})
    assert params[:3] == (["generic"] * 3, ["E0", "E1", "E2"], [_naive_utc(r["created_at"]) for r in rows])
    assert stmt.scalars[0] == "updated_at" and params[3] == datetime(2025, 11, 11, 2, 0)
    assert "flagged" in stmt.scalars and params[3 + stmt.scalars.index("flagged")] is False  # a model default
    assert "$4::timestamp" in stmt.sql and "$1::text[]" in stmt.sql and "unnest($1::text[], $2::text[], " in stmt.sql
    child = UnnestInsert(TRANSITIONS, ["channel", "external_id", "at", "to_stage", "actor"], start=9, via_orders=True)
    assert child.sql.startswith("INSERT INTO stage_transitions (order_id, at, to_stage, actor, reason) SELECT o.id")
    assert "$12::text" in child.sql  # `reason`'s default: one scalar after the five arrays
