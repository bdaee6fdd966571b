"""`orderhub db upgrade` and the upgrade `serve` does on start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@dataclass(frozen=True, slots=True)
class Upgraded:
    """What `upgrade` did: the revision before and after, and the migrations applied (revision, title) in order."""

    before: str | None
    after: str | None
    applied: tuple[tuple[str, str], ...]


async def upgrade(engine: AsyncEngine, revision: str = "head") -> Upgraded:
    """Upgrade on an engine the caller owns (so tests and `serve` reuse their own connection settings)."""

    def _do(conn: Any) -> Upgraded:
        cfg = alembic_config(str(engine.url))
        cfg.attributes["connection"] = conn
        before = _current(conn)
        command.upgrade(cfg, revision)
        after = _current(conn)
        script = ScriptDirectory.from_config(cfg)
        applied = [] if before == after or after is None else [
            (rev.revision, (rev.doc or "").strip()) for rev in script.iterate_revisions(after, before)]
        return Upgraded(before, after, tuple(reversed(applied)))

    async with engine.begin() as conn:
        return await conn.run_sync(_do)


def _current(conn: Any) -> str | None:
    heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads)) or None
