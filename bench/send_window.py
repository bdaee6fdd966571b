"""How long a killed leader can leave a chat message in doubt (issue 9.7), beside the same sends without records.

Each run sends N outbox rows through the real notifier and the real Telegram adapter to the local Telegram stand-in,
on SQLite (a temp file) and, when ORDERHUB_TEST_DATABASE_URL is set, on a fresh PostgreSQL database. Measured per
message, from timestamps taken as each step returns:
- `attempt open` (begin committed → completion committed): a kill here leaves an unfinished attempt; the new leader
  resends, WeCom drops the resend as a duplicate, Telegram's is counted as a possible duplicate;
- `duplicate window` (platform answered → completion committed): a kill here is the remaining Telegram duplicate,
  resent and counted. The baseline (no attempt records) has the same gap up to its message-ref commit, but a
  resend after it is silent: nothing tells it from a first send;
- `per message`: the whole send, to show what the two extra commits cost.

    .venv/bin/python bench/send_window.py [--messages 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from bot.settings import Settings  # noqa: E402
from bot.platforms.telegram.channel import TelegramChannel  # noqa: E402
from handlers.chat import ChatRef, Outgoing  # noqa: E402
from handlers.notifier import Notifier  # noqa: E402
from storage import migrate  # noqa: E402
from storage.chat_repo import SqlChatRepo  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.models import OutboxRow  # noqa: E402
from storage.send_attempts import SqlSendAttempts  # noqa: E402
from tests.standins.telegram_api import running_standin  # noqa: E402


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class _Marks:
    """perf_counter stamps per message, in the order the steps return."""

    def __init__(self) -> None:
        self.begun: list[float] = []
        self.answered: list[float] = []
        self.completed: list[float] = []
        self.started: list[float] = []


class _TimedChannel:
    def __init__(self, inner: TelegramChannel, marks: _Marks) -> None:
        self.inner, self.platform, self.marks = inner, inner.platform, marks

    async def send(self, message: Outgoing) -> ChatRef:
        ref = await self.inner.send(message)
        self.marks.answered.append(time.perf_counter())
        return ref


class _TimedAttempts(SqlSendAttempts):
    def __init__(self, engine: Any, marks: _Marks) -> None:
        super().__init__(engine)
        self.marks = marks

    async def begin(self, *args: Any, **kw: Any) -> int:
        attempt = await super().begin(*args, **kw)
        self.marks.begun.append(time.perf_counter())
        return attempt

    async def finish(self, *args: Any, **kw: Any) -> None:
        await super().finish(*args, **kw)
        self.marks.completed.append(time.perf_counter())


class _TimedRepo(SqlChatRepo):
    def __init__(self, engine: Any, marks: _Marks, completes: bool) -> None:
        super().__init__(engine)
        self.marks, self.completes = marks, completes

    async def outbox_item(self, outbox_id: int) -> Any:
        self.marks.started.append(time.perf_counter())
        return await super().outbox_item(outbox_id)

    async def record_sent(self, *args: Any, **kw: Any) -> None:
        await super().record_sent(*args, **kw)
        if self.completes:  # the baseline's completion record is the message ref
            self.marks.completed.append(time.perf_counter())


async def _measure(url: str, n: int, with_attempts: bool, channel: TelegramChannel) -> _Marks:
    engine = make_engine(Settings(database_url=url).async_database_url)
    try:
        await migrate.upgrade(engine)
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM send_attempts"))
            await conn.execute(text("DELETE FROM message_refs"))
            await conn.execute(text("DELETE FROM outbox"))
            await conn.execute(insert(OutboxRow.__table__), [dict(
                dedup_key=f"bench:{uuid.uuid4().hex}", kind="admin_notice", created_at=now, due_at=now,
                payload={"text": f"提醒 {i}", "platform": "telegram", "chat_id": str(5550000 + i % 50)},
                status="pending", attempts=0) for i in range(n)])
        marks = _Marks()
        repo = _TimedRepo(engine, marks, completes=not with_attempts)
        notifier = Notifier(repo, {"telegram": _TimedChannel(channel, marks)}, _Clock(), token_key=b"bench",
                            attempts=_TimedAttempts(engine, marks) if with_attempts else None)
        notifier.limiter.acquire = _no_wait  # type: ignore[method-assign]  # the stand-in has no flood limits
        notifier.limiter.wait_needed = lambda *_: 0.0  # type: ignore[method-assign]
        while await notifier.run_once(limit=100):
            pass
        if len(marks.answered) != n:
            raise SystemExit(f"expected {n} sends, got {len(marks.answered)}")
        return marks
    finally:
        await engine.dispose()


async def _no_wait(*_: Any) -> None:
    return None


def _pct(values: list[float]) -> tuple[float, float]:
    ms = sorted(v * 1000 for v in values)
    return statistics.median(ms), ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]


def _diff(a: list[float], b: list[float]) -> list[float]:
    return [y - x for x, y in zip(a, b, strict=True)]


async def _pg_database(base: str) -> tuple[str, Callable[[], Any]]:
    """A fresh database next to ORDERHUB_TEST_DATABASE_URL's, dropped afterwards."""
    name = f"bench_send_window_{os.getpid()}"
    admin = create_async_engine(Settings(database_url=base).async_database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))

    async def drop() -> None:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    return make_url(base).set(database=name).render_as_string(hide_password=False), drop


async def main(n: int) -> None:
    console = Console(width=150)
    table = Table(title=f"send window, {n} Telegram messages each (local stand-in), ms")
    for col in ("database", "mode", "attempt open p50", "p95", "duplicate window p50", "p95", "per message p50",
                "p95"):
        table.add_column(col, justify="right" if col not in ("database", "mode") else "left")
    targets: list[tuple[str, str, Callable[[], Any] | None]] = []
    tmp = tempfile.TemporaryDirectory()
    targets.append(("sqlite", f"sqlite:///{Path(tmp.name) / 'bench.db'}", None))
    pg = os.environ.get("ORDERHUB_TEST_DATABASE_URL")
    if pg:
        url, drop = await _pg_database(pg)
        targets.append(("postgresql", url, drop))
    with running_standin() as api:
        channel = TelegramChannel(api.token, api.url, connect_timeout=5.0, read_timeout=5.0)
        await channel.start()
        try:
            for label, url, drop in targets:
                for with_attempts in (False, True):
                    await _measure(url, min(n, 30), with_attempts, channel)  # warm-up
                    m = await _measure(url, n, with_attempts, channel)
                    per = _diff(m.started, m.completed)
                    if with_attempts:
                        opened = _pct(_diff(m.begun, m.completed))
                        window = _pct(_diff(m.answered, m.completed))
                        table.add_row(label, "attempt records", f"{opened[0]:.2f}", f"{opened[1]:.2f}",
                                      f"{window[0]:.2f}", f"{window[1]:.2f}", *(f"{v:.2f}" for v in _pct(per)))
                    else:
                        window = _pct(_diff(m.answered, m.completed))
                        table.add_row(label, "baseline (no record)", "—", "—", f"{window[0]:.2f}",
                                      f"{window[1]:.2f}", *(f"{v:.2f}" for v in _pct(per)))
                if drop is not None:
                    await drop()
        finally:
            await channel.close()
            tmp.cleanup()
    console.print(table)
    console.print("attempt open: a kill here → resend (WeCom: deduplicated; Telegram: counted as possible duplicate). "
                  "duplicate window: a kill here → the Telegram message twice (baseline: twice and undetected).")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    asyncio.run(main(parser.parse_args().messages))
