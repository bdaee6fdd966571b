"""The Alembic migrations produce exactly the schema the models describe, on the session's backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import Base


async def test_models_and_migrations_agree(db: AsyncEngine) -> None:
    def diff(conn: object) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return compare_metadata(ctx, Base.metadata)

    async with db.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == [], f"run alembic revision --autogenerate: {changes}"
