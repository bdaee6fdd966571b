"""`orderhub approvals list | approve ID --as NAME | reject ID --as NAME --reason R`: decide without a chat app.

The same decide use case as a button press (handlers.approvals.decide): role, region, four-eyes, level order, first
decision wins. The card edits are `approval_outcome` outbox rows, sent by the running server's notifier.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from engine.approvals import Refusal, Verdict
from bot.cli.runtime import run_user_command, run_with_runtime

app = typer.Typer(help="Approval requests: list and decide them.", no_args_is_help=True)
console = Console()

REFUSALS = {
    Refusal.NOT_PERMITTED: "not allowed: this user's role or region may not decide it",
    Refusal.OWN_REQUEST: "not allowed: four eyes, this user caused the request",
    Refusal.LEVEL_PENDING: "not allowed: an earlier level of this approval is not approved yet",
    Refusal.ALREADY_DECIDED: "already decided",
    Refusal.SUPERSEDED: "already decided: the order changed after the request, the request is void",
    Refusal.REASON_REQUIRED: "a rejection needs --reason",
    Refusal.NOT_FOUND: "no such approval",
}


@app.command("list")
def approvals_list(
    status: Annotated[str, typer.Option(help="pending, approved, rejected or superseded.")] = "pending",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    """Approval requests with their order, level, who must decide and who asked."""
    from storage.reports_repo import SqlReports

    async def _run(rt) -> None:  # type: ignore[no-untyped-def]
        rows = await SqlReports(rt.db).approvals(status, limit)
        table = Table(title=f"{len(rows)} {status} approval(s)")
        for col in ("id", "order", "kind", "level", "role", "region", "amount", "requested", "decided by"):
            table.add_column(col)
        for r in rows:
            table.add_row(str(r["id"]), r["order_key"], r["kind"], str(r["level"]), r["required_role"],
                          r["region"] or "-", r["amount"], str(r["requested_at"])[:16], r["decided_by"] or "-")
        Console(width=max(console.width, 140)).print(table)  # wide enough that ids and order keys never wrap

    run_with_runtime(_run, upgrade=True)


def _decide(approval_id: int, name: str, verdict: Verdict, reason: str) -> None:
    from handlers.approvals import Deciders, DecisionRefused, decide
    from handlers.chat_ports import UserInfo
    from storage.chat_repo import SqlChatRepo

    async def _run(rt) -> str | None:  # type: ignore[no-untyped-def]
        u = await rt.users.by_name(name)
        await rt.start_rules(watch=False)  # the SLA deadlines of the stage a decision moves the order to
        user = UserInfo(u.id, u.name, u.role, u.regions, u.phone, u.supervisor_id, u.email)
        try:
            from handlers.refunds import follow_ups

            after = follow_ups(rt.refund_deps())  # a decided refund approval carries on to its refund
            decided = await decide(Deciders(SqlChatRepo(rt.db, rt.order_events()), rt.current_rules(), None, after),
                                   approval_id, user, verdict, reason, rt.clock.now())
        except DecisionRefused as exc:
            return REFUSALS[exc.reason]
        console.print(f"approval {decided.id} (order {decided.order_id}): {decided.status.value} by {decided.decided_by}")
        return None

    refused = run_user_command(_run)
    if refused is not None:
        console.print(f"[red]refused:[/] {refused}")
        raise typer.Exit(1)


@app.command("approve")
def approvals_approve(
    approval_id: Annotated[int, typer.Argument(min=1, help="The approval's id (`orderhub approvals list`).")],
    as_user: Annotated[str, typer.Option("--as", help="The user deciding (their role, region and four-eyes apply).")],
) -> None:
    """Approve a request as NAME, with the checks a button press gets."""
    _decide(approval_id, as_user, Verdict.APPROVE, "")


@app.command("reject")
def approvals_reject(
    approval_id: Annotated[int, typer.Argument(min=1, help="The approval's id (`orderhub approvals list`).")],
    as_user: Annotated[str, typer.Option("--as", help="The user deciding (their role, region and four-eyes apply).")],
    reason: Annotated[str, typer.Option(help="Why (required; shown on every copy of the card).")],
) -> None:
    """Reject a request as NAME with a reason, with the checks a button press gets."""
    _decide(approval_id, as_user, Verdict.REJECT, reason)
