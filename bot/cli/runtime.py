"""How a CLI command runs: a Runtime built from the settings, closed afterwards; an operator's mistake is one line.

Its own module so the command groups (bot/cli/approvals.py, refunds.py, tracking.py, …) and the root app
(bot/cli/main.py) that mounts them both use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from bot.processes import event_loop
from bot.settings import Settings
from bot.wiring.runtime import Runtime
from storage.users_repo import UserError

T = TypeVar("T")
console = Console()


def run_with_runtime(fn: Callable[[Runtime], Awaitable[T]], *, upgrade: bool = False) -> T:
    async def _main() -> T:
        runtime = Runtime.build(Settings())
        try:
            if upgrade:
                await runtime.upgrade_db()
            return await fn(runtime)
        finally:
            await runtime.close()

    return event_loop.run(_main())


def run_user_command(fn: Callable[[Runtime], Awaitable[T]]) -> T:
    """run_with_runtime after migrating; a UserError is the operator's mistake: said in one line, exit code 2."""
    try:
        return run_with_runtime(fn, upgrade=True)
    except UserError as exc:
        user_error(str(exc))


def user_error(sentence: str) -> NoReturn:
    """The operator's mistake: one line (never wrapped, never a traceback), exit code 2."""
    console.print(f"[red]error:[/] {escape(sentence)}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)
