"""`orderhub refunds request ORDER --as NAME --reason R [--amount A] [--item SKU]… | list [--status S] | show ID |
decide ID --as NAME approve|reject [--reason R] | refunded ID --as NAME`: the refund use cases without a chat app
or the API (handlers.refunds), with the same checks."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from bot.cli.runtime import run_user_command

app = typer.Typer(help="Refunds: request, list, show, decide.", no_args_is_help=True)
console = Console()


def _user(rt: Any, name: str, *, finance: bool = False) -> Any:
    async def get() -> Any:
        u = await rt.users.by_name(name)  # raises UserError for an unknown name
        if finance and u.role not in ("admin", "finance"):
            from storage.users_repo import UserError

            raise UserError(f"{name} is a {u.role}; only finance or an admin decides refunds")
        return u
    return get()


def _run(fn: Any) -> Any:
    from handlers.refunds import RefundError

    async def wrapped(rt: Any) -> Any:
        await rt.start_rules(watch=False)
        try:
            return await fn(rt, rt.refund_deps())
        except RefundError as exc:
            return f"{exc.code}: {exc}"

    out = run_user_command(wrapped)
    if isinstance(out, str):
        console.print(f"[red]refused:[/] {out}")
        raise typer.Exit(1)
    return out


def _print(r: Any, history: list[dict[str, Any]] | None = None) -> None:
    console.print(f"refund {r.id} · order {r.order_id} · {r.state.value} · ¥{r.amount} · rule {r.rule_id}"
                  f"{' · automatic' if r.automatic else ''}")
    console.print(f"  reason: {r.reason}  decision: {r.decision.get('message', '')}")
    if r.approval_id:
        console.print(f"  finance approval: {r.approval_id} (`orderhub approvals approve {r.approval_id} --as …`)")
    if r.proof:
        p = r.proof
        console.print(f"  proof: {p.get('type')} · waybill {p.get('waybill')} ({p.get('carrier')}) · tracking "
                      f"{p.get('tracking_status')} · {p.get('verdict')}")
    for h in history or []:
        console.print(f"  {str(h['at'])[:19]}  {h['action']:<22} {h['by']}  {h.get('to') or h.get('state') or ''}")


@app.command("request")
def refunds_request(
    order: Annotated[str, typer.Argument(help="Internal id or channel:external_id.")],
    as_user: Annotated[str, typer.Option("--as", help="The staff user asking (recorded; four eyes apply).")],
    reason: Annotated[str, typer.Option(help="Why the customer wants the money back.")],
    amount: Annotated[str | None, typer.Option(help="e.g. 1200.00; default: the items' value or what is left.")]
    = None,
    item: Annotated[list[str] | None, typer.Option("--item", help="SKU to refund (repeat).")] = None,
) -> None:
    """A refund request, decided at once by the rules' refund matrix."""
    from handlers.refunds import request_refund

    async def go(rt: Any, deps: Any) -> None:
        u = await _user(rt, as_user)
        r = await request_refund(deps, order, amount=amount, reason=reason, items=item or None,
                                 requested_by=f"user:{u.id}", actor=u.name, source="cli", now=rt.clock.now())
        _print(r, await deps.refunds.history(r.id))

    _run(go)


@app.command("list")
def refunds_list(
    status: Annotated[str | None, typer.Option(help="requested, waiting_proof, verifying, waiting_finance, "
                                                    "approved, rejected or refunded.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    """Refunds, newest first."""
    async def go(rt: Any, deps: Any) -> None:
        rows = await deps.refunds.refunds(status, limit)
        table = Table(title=f"{len(rows)} refund(s)")
        for col in ("id", "order", "state", "amount", "rule", "requested", "by", "auto"):
            table.add_column(col)
        for r in rows:
            table.add_row(str(r.id), str(r.order_id), r.state.value, str(r.amount), r.rule_id or "-",
                          str(r.requested_at)[:16], r.requested_by, "yes" if r.automatic else "")
        Console(width=max(console.width, 120)).print(table)

    _run(go)


@app.command("show")
def refunds_show(refund_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """One refund: state, the rule that decided, the proof and its audited history."""
    async def go(rt: Any, deps: Any) -> None:
        r = await deps.refunds.refund(refund_id)
        if r is None:
            from handlers.refunds import RefundError

            raise RefundError("refund_not_found", f"no refund {refund_id}")
        _print(r, await deps.refunds.history(r.id))

    _run(go)


@app.command("decide")
def refunds_decide(
    refund_id: Annotated[int, typer.Argument(min=1)],
    verdict: Annotated[str, typer.Argument(help="approve or reject")],
    as_user: Annotated[str, typer.Option("--as", help="A finance user or an admin.")],
    reason: Annotated[str, typer.Option(help="Required to reject.")] = "",
) -> None:
    """A person's decision on a refund being verified (doubtful proof)."""
    from handlers.refunds import decide_refund

    if verdict not in ("approve", "reject"):
        raise typer.BadParameter("approve or reject")

    async def go(rt: Any, deps: Any) -> None:
        u = await _user(rt, as_user, finance=True)
        _print(await decide_refund(deps, refund_id, verdict == "approve", u.name, reason, rt.clock.now()))

    _run(go)
