"""Database engines and sessions. Created by the composition root at start-up, never at import."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine


def _json_dumps(value: Any) -> str:
    # orjson, much faster than the stdlib, on the JSON columns (items, custom fields, the rules' decisions) of every
    # stored order.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False, connect_timeout_s: float = 10.0,
                statement_timeout_s: float = 60.0) -> AsyncEngine:
    """An async engine with the per-backend settings that matter for a busy intake.

    PostgreSQL gets a connect timeout and a statement timeout (server side, and the same on the client for a frozen
    connection): a database that stops answering raises (TimeoutError, a cancelled query) rather than hanging a
    worker forever; the worker treats that as an outage and retries."""
    json_args: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30}, **json_args)
        _tune_sqlite(engine)
        return engine
    connect_args = {"timeout": connect_timeout_s, "command_timeout": statement_timeout_s + 5,
                    "server_settings": {"statement_timeout": str(int(statement_timeout_s * 1000))}}
    return create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                               pool_timeout=connect_timeout_s * 3, connect_args=connect_args, **json_args)


def _tune_sqlite(engine: AsyncEngine) -> None:
    # WAL lets readers run beside the single writer; NORMAL sync is durable at commit under WAL for app crashes.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)
