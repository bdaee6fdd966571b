"""Reading helpers shared by the repositories: the connect-execute-convert steps written once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Executable, Row
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


async def fetch_one(engine: AsyncEngine, query: Executable, convert: Callable[[Row[Any]], T]) -> T | None:
    """The first row of `query`, converted, or None when there is none."""
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return convert(row) if row else None


async def fetch_all(engine: AsyncEngine, query: Executable, convert: Callable[[Row[Any]], T]) -> list[T]:
    """Every row of `query`, converted, in the order the query gives."""
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [convert(r) for r in rows]
