"""`orderhub priority refresh`: what the nightly job does, on demand (after a rules change, or to see the top)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Priority scores and the flagged top of open orders.", no_args_is_help=True)
console = Console()


@app.command("refresh")
def refresh(show: Annotated[int, typer.Option(help="List this many flagged orders, highest first.")] = 10) -> None:
    """Re-score every open order on its current history facts and flag the rules' top `top_fraction`.

    The same pass the scheduler's leader runs nightly at 00:00 local time; never moves an order."""
    from bot.cli.runtime import run_with_runtime
    from bot.wiring.runtime import Runtime
    from handlers.priority import RefreshResult, refresh_priorities
    from storage.priority_repo import SqlPriorities

    async def _run(rt: Runtime) -> RefreshResult:
        await rt.start_rules(watch=False)
        return await refresh_priorities(SqlPriorities(rt.db), rt.current_rules(), rt.clock.now())

    res = run_with_runtime(_run, upgrade=True)
    console.print(f"{res.open_orders} open orders re-scored, {res.flagged} flagged, {res.changed} rows changed")
    top = sorted(res.flagged_ids, key=lambda oid: (-res.scores[oid], oid))[:max(show, 0)]
    for oid in top:
        console.print(f"  #{oid}  {res.scores[oid]}")
