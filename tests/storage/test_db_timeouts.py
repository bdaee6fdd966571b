"""Issue 9 item 6: a database call has a statement timeout, so a frozen query is noticed (an error the loops treat
as an outage) instead of hanging a worker; the Runtime passes the configured timeouts. PostgreSQL only: SQLite has
no server to freeze."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.settings import Settings
from bot.wiring.runtime import Runtime
from storage.db import make_engine
from storage.intake_unit import is_unavailable
from tests.conftest import TEST_DATABASE_URL

PG_ONLY = pytest.mark.skipif(not TEST_DATABASE_URL, reason="statement timeouts are PostgreSQL's")


class PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(("sqlstate", "outage"), [
    ("57014", True), ("08006", True), ("57P01", True), ("53300", True),  # timeout, connection lost, shutdown, full
    ("23505", False), ("22021", False), ("42P01", False),  # a duplicate, bad bytes, a missing table: not outages
])
def test_server_trouble_is_an_outage_and_bad_data_is_not(sqlstate: str, outage: bool) -> None:
    assert is_unavailable(DBAPIError("SELECT", {}, PgError(sqlstate))) is outage


@PG_ONLY
async def test_a_query_longer_than_the_statement_timeout_is_cancelled(database_url: str) -> None:
    engine = make_engine(Settings(_env_file=None, database_url=database_url).async_database_url,
                         statement_timeout_s=0.3)
    try:
        async with engine.connect() as conn:
            with pytest.raises(Exception) as caught:
                await conn.execute(text("SELECT pg_sleep(3)"))
        assert "statement timeout" in str(caught.value) or "canceling statement" in str(caught.value)
        assert is_unavailable(caught.value)  # the workers back off and retry rather than dead-letter
    finally:
        await engine.dispose()


@PG_ONLY
async def test_the_runtime_uses_the_configured_timeouts(settings: Settings) -> None:
    rt = Runtime.build(settings.model_copy(update={"db_statement_timeout_s": 7.0}))
    try:
        async with rt.db.connect() as conn:
            assert (await conn.execute(text("SHOW statement_timeout"))).scalar_one() == "7s"
    finally:
        await rt.close()
