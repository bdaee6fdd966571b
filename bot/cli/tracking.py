"""`orderhub orders ship ORDER --carrier C [--waybill W]` and `orderhub orders track ORDER`: the same use cases
as the API (handlers.tracking), for operators without a chat app."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from engine.stages import TransitionError
from handlers.orders import MoveRefused, OrderNotFound
from handlers.tracking import ShipRefused
from bot.cli.runtime import run_with_runtime

orders_app = typer.Typer(help="Work on one order: ship it, see its tracking.", no_args_is_help=True)
console = Console()


@orders_app.command("ship")
def ship(
    order: Annotated[str, typer.Argument(help="order id or channel:external_id")],
    carrier: Annotated[str | None, typer.Option(help="sf | deppon | kuaidi100; omitted: the rules' choice")] = None,
    waybill: Annotated[str | None, typer.Option(help="a waybill you already have; omitted: OrderHub creates one")]
    = None,
    company: Annotated[str | None, typer.Option(help="Kuaidi100 company code (with --carrier kuaidi100)")] = None,
    actor: Annotated[str, typer.Option("--as", help="who ships (recorded in the order's history)")] = "cli",
) -> None:
    """Hand an order to a carrier: moves it to `shipped` and tells the customer the waybill."""
    from bot.wiring.runtime import Runtime

    if waybill and not carrier:
        console.print("[red]error:[/] --waybill needs --carrier")
        raise typer.Exit(2)

    async def _run(rt: Runtime) -> dict[str, object]:
        await rt.start_rules(watch=False)
        return await rt.tracking_service().ship(order, carrier, waybill, company, actor)

    try:
        result = run_with_runtime(_run, upgrade=True)
    except (OrderNotFound, TransitionError, MoveRefused, ShipRefused) as exc:
        console.print(f"[red]error:[/] {'no order ' + repr(order) if isinstance(exc, OrderNotFound) else exc}")
        raise typer.Exit(2) from None
    failed = result["failed_carriers"]
    console.print(f"shipped with {result['carrier']}" + (f" (failed first: {', '.join(failed)})" if failed else ""))
    console.print(str(result["waybill"]))


@orders_app.command("track")
def track(order: Annotated[str, typer.Argument(help="order id or channel:external_id")]) -> None:
    """The order's tracking timeline, newest scan first."""
    from bot.wiring.runtime import Runtime

    async def _run(rt: Runtime) -> dict[str, object]:
        return await rt.tracking_service().timeline(order)

    try:
        tl = run_with_runtime(_run, upgrade=True)
    except OrderNotFound:
        console.print(f"[red]error:[/] no order {order!r}")
        raise typer.Exit(2) from None
    if not tl["waybill"]:
        console.print("no shipment yet")
        return
    console.print(f"{tl['carrier']} {tl['waybill']} · {tl['status']}")
    for e in tl["events"]:  # type: ignore[attr-defined]
        console.print(f"{e['at']:%Y-%m-%d %H:%M} UTC  {e['status']:<16} {e['text']} {e['place']}")
