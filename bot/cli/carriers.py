"""`orderhub carriers switch REGION CARRIER --as NAME | undo SWITCH_ID --as NAME`: the degradation card's Switch and
Undo buttons without a chat app — the same use case (handlers.carrier_switch), the same permission check (an admin
or that region's manager), the same new rules version and audit entry."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from bot.cli.runtime import run_user_command

app = typer.Typer(help="Switch a region's carrier (a new rules version), or undo a switch.", no_args_is_help=True)
console = Console()

AsUser = Annotated[str, typer.Option("--as", help="Who switches: an admin or a manager of the region (recorded).")]


def _run(as_user: str, fn: Any) -> None:
    from engine.access import Viewer
    from engine.carriers.switch import SwitchRefused

    async def wrapped(rt: Any) -> Any:
        await rt.start_rules(watch=False)
        u = await rt.users.by_name(as_user)  # an unknown name is a UserError: one line, exit 2
        try:
            return await fn(rt, rt.carrier_switch_deps(), Viewer(u.id, u.role, u.regions), u.name)
        except SwitchRefused as exc:
            return exc.message(rt.settings.language)

    out = run_user_command(wrapped)
    if isinstance(out, str):
        console.print(f"[red]refused:[/] {escape(out)}", soft_wrap=True, highlight=False)
        raise typer.Exit(1)
    console.print(escape(out.text), soft_wrap=True, highlight=False)
    if out.undo_of is None:
        console.print(f"switch {out.switch_id} · undo: orderhub carriers undo {out.switch_id} --as …",
                      soft_wrap=True, highlight=False)


@app.command("switch")
def carriers_switch(
    region: Annotated[str, typer.Argument(help="A region of the rules file, e.g. 华南.")],
    carrier: Annotated[str, typer.Argument(help="sf, deppon or kuaidi100: the region's new primary carrier.")],
    as_user: AsUser,
) -> None:
    """Make CARRIER the region's primary (the old one becomes its backup), as a new rules version."""
    from handlers.carrier_switch import switch_carrier

    async def go(rt: Any, deps: Any, viewer: Any, name: str) -> Any:
        return await switch_carrier(deps, viewer, name, region, carrier, rt.clock.now(), source="cli")

    _run(as_user, go)


@app.command("undo")
def carriers_undo(
    switch_id: Annotated[int, typer.Argument(min=1, max=2**31 - 1, help="The switch id `carriers switch` printed.")],
    as_user: AsUser,
) -> None:
    """Restore the region's carrier from before the switch, as another new rules version."""
    from handlers.carrier_switch import undo_switch

    async def go(rt: Any, deps: Any, viewer: Any, name: str) -> Any:
        return await undo_switch(deps, viewer, name, switch_id, rt.clock.now(), source="cli")

    _run(as_user, go)
