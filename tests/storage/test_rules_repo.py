"""The rules repository: versions stored once, one admin alert per broken content, orders read back as engine types."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.rules import evaluate
from engine.stages import Stage
from storage.models import OutboxRow, RuleVersionRow
from storage.rules_repo import RulesRepo, invalid_dedup_key
from tests.engine.rules_support import EXAMPLE, T0, order
from tests.storage.rules_db_support import add_note, store_order, temp_db


@pytest.mark.asyncio
async def test_versions_are_stored_once_and_read_back(tmp_path: Path) -> None:
    async with temp_db(tmp_path / "db.sqlite") as sessions:
        repo = RulesRepo(sessions)
        assert await repo.latest_version() is None
        assert await repo.record_version(version="a" * 64, text="x: 1", source_path="/r.yaml", loaded_by="host:1", now=T0)
        assert not await repo.record_version(version="a" * 64, text="x: 1", source_path="/r.yaml", loaded_by="host:2", now=T0)
        assert await repo.record_version(version="b" * 64, text="y: 2", source_path="/r.yaml", loaded_by="host:1",
                                         now=T0 + timedelta(minutes=1))
        latest = await repo.latest_version()
        assert latest is not None and (latest.hash, latest.text, latest.loaded_by) == ("b" * 64, "y: 2", "host:1")
        got = await repo.get_version("a" * 64)
        assert got is not None and got.text == "x: 1" and got.loaded_at == T0
        assert [v.hash[0] for v in await repo.list_versions()] == ["a", "b"]
        assert [v.hash for v in await repo.find_version("aaaa")] == ["a" * 64]
        assert [v.hash for v in await repo.find_version("AAAA")] == ["a" * 64]
        assert await repo.find_version("c") == [] and await repo.find_version("") == []
        assert await repo.find_version("a%") == []  # not a LIKE pattern
        async with sessions() as s:
            assert await s.scalar(select(func.count(RuleVersionRow.id))) == 2


@pytest.mark.asyncio
async def test_invalid_alert_is_one_outbox_row_per_content(tmp_path: Path) -> None:
    async with temp_db(tmp_path / "db.sqlite") as sessions:
        repo = RulesRepo(sessions)
        assert await repo.record_invalid(sha256="c" * 64, error="1 problem", path="/r.yaml", now=T0)
        assert not await repo.record_invalid(sha256="c" * 64, error="1 problem", path="/r.yaml", now=T0)
        assert await repo.record_invalid(sha256="d" * 64, error="2 problems", path="/r.yaml", now=T0)
        async with sessions() as s:
            rows = list(await s.scalars(select(OutboxRow).order_by(OutboxRow.id)))
        assert [(r.dedup_key, r.kind, r.recipient_role, r.status) for r in rows] == [
            (invalid_dedup_key("c" * 64), "rules_invalid", "admin", "pending"),
            (invalid_dedup_key("d" * 64), "rules_invalid", "admin", "pending"),
        ]
        assert rows[0].payload == {"error": "1 problem", "error_zh": "1 problem", "path": "/r.yaml"}
        assert rows[0].dedup_key == "rules_invalid:" + "c" * 64


@pytest.mark.asyncio
async def test_orders_round_trip_and_history_facts(tmp_path: Path) -> None:
    async with temp_db(tmp_path / "db.sqlite") as sessions:
        repo = RulesRepo(sessions)
        first = order(id=1, amount="6800.00", created=T0 - timedelta(days=40))
        second = order(id=2, amount="120.50", created=T0 - timedelta(days=2), stage=Stage.SHIPPED)
        # both orders belong to different customer ids in the builder; give the second the first's customer
        second.data = second.data.model_copy(update={"customer": first.data.customer})
        id1 = await store_order(sessions, first, now=T0)
        id2 = await store_order(sessions, second, now=T0)
        await add_note(sessions, id1, T0 - timedelta(days=3))
        await add_note(sessions, id2, T0 - timedelta(days=1))
        await add_note(sessions, id2, T0 - timedelta(days=45))  # too old to count
        await add_note(sessions, id2, T0 - timedelta(days=1), kind="exception")

        by_id = await repo.find_order(str(id1))
        by_key = await repo.find_order(f"tmall:{first.data.external_id}")
        assert by_id is not None and by_key is not None and by_id.id == by_key.id == id1
        assert by_id.data == first.data and by_id.stage is Stage.DESIGNING and by_id.data.amount == Decimal("6800.00")
        assert await repo.find_order("999") is None and await repo.find_order("nonsense") is None
        assert await repo.find_order("tmall:none") is None

        recent = await repo.orders_created_since(T0 - timedelta(days=30))
        assert [o.id for o in recent] == [id2]
        facts = await repo.facts_for([by_id, recent[0]], T0)
        assert (facts[id1].complaints_30d, facts[id1].previous_orders, facts[id1].exception_notes_30d) == (2, 0, 1)
        assert (facts[id2].complaints_30d, facts[id2].previous_orders, facts[id2].exception_notes_30d) == (2, 1, 2)
        # and they drive the rules: two complaints cost ten priority points
        assert evaluate(by_id, facts[id1], EXAMPLE, T0).priority == 40
        assert await repo.facts_for([], T0) == {}


@pytest.mark.asyncio
async def test_repository_on_the_session_backend(db) -> None:  # type: ignore[no-untyped-def]
    """The same calls on the migrated session database (PostgreSQL when ORDERHUB_TEST_DATABASE_URL is set)."""
    from sqlalchemy.ext.asyncio import async_sessionmaker

    sessions = async_sessionmaker(db, expire_on_commit=False)
    repo = RulesRepo(sessions)
    assert await repo.record_version(version="e" * 64, text="x: 1", source_path="/r.yaml", loaded_by="h", now=T0)
    assert not await repo.record_version(version="e" * 64, text="x: 1", source_path="/r.yaml", loaded_by="h", now=T0)
    assert [v.hash for v in await repo.find_version("eee")] == ["e" * 64]
    assert await repo.record_invalid(sha256="f" * 64, error="e", error_zh="中", path="/r.yaml", now=T0)
    assert not await repo.record_invalid(sha256="f" * 64, error="e", path="/r.yaml", now=T0)
    first = order(id=1, amount="6800.00", created=T0 - timedelta(days=3))
    oid = await store_order(sessions, first, now=T0)
    await add_note(sessions, oid, T0 - timedelta(days=1))
    got = await repo.find_order(f"tmall:{first.data.external_id}")
    assert got is not None and got.data == first.data
    facts = await repo.facts_for([got], T0)
    assert facts[oid].complaints_30d == 1
    assert [o.id for o in await repo.orders_created_since(T0 - timedelta(days=5))] == [oid]
