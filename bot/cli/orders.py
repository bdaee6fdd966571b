"""`orderhub orders assign ORDER NAME --as WHO`: reassign an order's owner without a chat app.

The same use case as `POST /api/orders/{ref}/assign` and the chat command `/assign` (handlers.owners.assign): WHO
must be an admin or a manager of the order's region; NAME an active staff user allowed there. Audited as WHO.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from bot.cli.runtime import run_user_command
from bot.cli.tracking import orders_app

console = Console()


@orders_app.command("assign")
def assign_cmd(
    order: Annotated[str, typer.Argument(help="order id or channel:external_id")],
    name: Annotated[str, typer.Argument(help="the new owner's user name")],
    actor: Annotated[str, typer.Option("--as", help="who reassigns: an admin or a manager of the order's region")],
) -> None:
    """Make NAME the owner of ORDER (the next stall alert goes to them)."""
    from handlers.owners import Assigner, AssignRefused, assign
    from storage.owners import SqlOwners

    async def _run(rt) -> str | None:  # type: ignore[no-untyped-def]
        u = await rt.users.by_name(actor)
        try:
            done = await assign(SqlOwners(rt.db, rt.order_events()), Assigner(u.id, u.name, u.role, tuple(u.regions)), order, name,
                                rt.clock.now())
        except AssignRefused as exc:
            return f"{exc.code}: {exc}"
        console.print(escape(f"order {done.order_key} (#{done.order_id}): owner {done.previous or '-'} → {done.owner}"),
                      soft_wrap=True, highlight=False)
        return None

    refused = run_user_command(_run)
    if refused is not None:
        console.print(f"[red]refused:[/] {escape(refused)}", soft_wrap=True, highlight=False)
        raise typer.Exit(1)
