"""`orderhub`: the command line. Each command builds what it needs from Settings and closes it again."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.processes import event_loop
from bot.cli import approvals as cli_approvals, carriers as cli_carriers, help as cli_help, notes as cli_notes
from bot.cli import priority as cli_priority, refunds as cli_refunds, rules as cli_rules, stock as cli_stock
from bot.cli import telegram as cli_telegram, tracking as cli_tracking
from bot.cli import orders as cli_orders  # noqa: F401 - registers `orders assign` on cli_tracking.orders_app
from bot.cli.runtime import run_user_command, run_with_runtime
from bot.settings import Settings
from bot.wiring.runtime import Runtime

cli_help.install()
app = typer.Typer(help="OrderHub: a programmable order hub driven from WeCom and Telegram.", no_args_is_help=True)
queue_app = typer.Typer(help="The intake queue.", no_args_is_help=True)
users_app = typer.Typer(help="Staff users and customers.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")
app.add_typer(cli_rules.app, name="rules", help="Validate, explain and compare business rules.")
app.add_typer(cli_telegram.app, name="telegram", help="Telegram webhook registration.")
app.add_typer(cli_approvals.app, name="approvals", help="Approval requests: list, approve, reject.")
app.add_typer(cli_refunds.app, name="refunds", help="Refunds: request, list, show, decide.")
app.add_typer(cli_tracking.orders_app, name="orders")
app.add_typer(cli_priority.app, name="priority")
app.add_typer(cli_notes.app, name="notes")
app.add_typer(cli_stock.app, name="stock")
app.add_typer(cli_carriers.app, name="carriers")
console = Console()


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _logging() -> None:
    from bot.logs import configure_logging

    configure_logging(Settings())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Everything in one process: HTTP, the bots that are configured, intake worker, notifier, scheduler."""
    from bot.processes.serve import serve_all

    _logging()
    event_loop.run(serve_all(Settings(), host, port))


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Number of HTTP worker processes.")] = 1,
) -> None:
    """Only the HTTP part (webhooks and API); run several for more intake throughput."""
    import uvicorn

    _logging()
    if workers > 1:
        _multiprocess_metrics(Settings().data_dir)
    logging.getLogger("orderhub.api").info("OrderHub API listening on http://%s:%d (%d HTTP worker process%s)",
                                           host, port, workers, "" if workers == 1 else "es")
    # log_config=None: uvicorn's lines go through OrderHub's handler (level, format, redaction)
    uvicorn.run("bot.processes.asgi:create_asgi_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False, log_config=None)


def _multiprocess_metrics(data_dir: Path) -> None:
    """Prometheus multiprocess mode for the HTTP workers (spawned: they inherit the environment): an empty
    directory per start, so counters begin at zero and no dead worker's files are summed in."""
    import os
    import shutil

    from webhooks.metrics import MULTIPROC_ENV

    if os.environ.get(MULTIPROC_ENV):  # the operator chose a directory: theirs to manage
        return
    target = data_dir / "prometheus"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(target.resolve())


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Drain the queue, then exit.")] = False,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port.")] = None,
) -> None:
    """One intake worker (queue → database, in batches) and the chat consumer (button presses, queries).
    Run several; Redis consumer groups spread the work."""
    _logging()
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")

    async def _run(rt: Runtime) -> None:
        from bot.processes.chat_runtime import WORKER, ChatRuntime
        from bot.processes.gc_tuning import freeze_startup_objects, tune_gc

        await rt.start_rules(watch=not burst)
        stop = None if burst else _stop_event()
        chat = ChatRuntime.build(rt)
        try:
            if stop is not None:  # chat updates queued by the webhook route or the poller → the chat core
                await chat.start(WORKER, stop)
            tune_gc()
            await freeze_startup_objects()
            if stop is not None:  # carrier pushes queued by /webhooks/logistics/* → tracking events
                rt.background.append(asyncio.create_task(rt.tracking_worker().run_forever(stop), name="tracking-worker"))
                rt.background.append(asyncio.create_task(rt.refund_worker().run_forever(stop), name="refund-worker"))
            worker = rt.intake_worker()
            totals = await (worker.run(burst=True) if stop is None else worker.run_forever(stop))
            tracked = await rt.tracking_worker().run(burst=True) if burst else None
            refunds = await rt.refund_worker().run(burst=True) if burst else None
        finally:
            await chat.close()
        console.print(f"stored {totals.inserted} new, {totals.updated} updated, {totals.duplicates} duplicates, "
                      f"{len(totals.failed)} failed tries")
        if tracked is not None:
            console.print(f"tracking: {tracked.pushes} pushes, {tracked.stored} new events, {tracked.dead} dead")
        if refunds is not None:
            console.print(f"refunds: {refunds.stored} stored, {refunds.ignored} ignored, {refunds.dead} dead")

    run_with_runtime(_run)


@app.command()
def scheduler() -> None:
    """The timed jobs: stall scan, approval escalation, morning digest, outbox sweep (and the Telegram poller in
    polling mode).
    Run one or more; a Redis lease lets exactly one act at a time."""
    from bot.processes.serve import run_scheduler

    _logging()

    async def _main() -> None:
        await run_scheduler(Settings(), _stop_event())

    event_loop.run(_main())


@app.command()
def demo(
    orders: Annotated[int, typer.Option(help="How many sample orders the simulated day brings.")] = 400,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its own database and queue.")] = Path(
        "orderhub-demo"),
) -> None:
    """A simulated business day in its own data directory (never your database): orders through HTTP → queue →
    database, a summary, then the day's chat transcript (approvals, a stall alert, a customer's query)."""
    from bot.demo.day import demo_settings, run_demo
    from engine.text_cli import tc

    settings = demo_settings(Settings(), data_dir)
    console.print(tc("d.where", settings.language, dir=f"{data_dir}/"), soft_wrap=True)
    ok = event_loop.run(run_demo(settings, orders, console))
    raise typer.Exit(0 if ok else 1)


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .csv or .xlsx file of orders.")],
    channel: Annotated[str, typer.Option(help="Channel the orders are keyed under.")] = "import",
    as_user: Annotated[str | None, typer.Option("--as", help="The staff user importing (four-eyes: they cannot "
                                                             "decide the approvals these orders need).")] = None,
) -> None:
    """CSV or XLSX orders into the intake queue, with a progress bar and a per-row error report."""
    from bot.cli.importer import import_orders
    from storage.users_repo import UserError

    async def _run(rt: Runtime) -> int:
        by = "system"
        if as_user is not None:
            try:
                by = f"user:{(await rt.users.by_name(as_user)).id}"
            except UserError as exc:
                console.print(f"[red]{exc}[/red]")
                return 1
        return await import_orders(rt, file, channel, console, by)

    failed = run_user_command(_run)
    raise typer.Exit(1 if failed else 0)


@queue_app.command("status")
def queue_status() -> None:
    """Depth, in progress, retrying and failed entries; the workers with when they last asked for work. Workers
    that have stopped (silent for 2 minutes, owning nothing) are removed from the count."""
    from engine.display import channel_name
    from engine.text_cli import tc

    async def _run(rt: Runtime) -> None:
        lang = rt.settings.language
        removed = await rt.queue.prune_consumers()
        st = await rt.queue.status()
        consumers = await rt.queue.consumers()
        table = Table(title=tc("q.title", lang))
        for col in ("q.depth", "q.waiting", "q.pending", "q.retrying", "q.dead", "q.workers"):
            table.add_column(tc(col, lang), justify="right")
        live = sum(1 for c in consumers if c.live)
        table.add_row(*(str(v) for v in (st.depth, st.waiting, st.pending, st.retrying, st.dead, live)))
        console.print(table)
        if consumers:
            workers = Table(title=tc("q.consumers_title", lang))
            for col in ("q.c_name", "q.c_idle", "q.c_pending", "q.c_state"):
                workers.add_column(tc(col, lang))
            for c in sorted(consumers, key=lambda c: c.idle_ms):
                workers.add_row(c.name, tc("q.ago", lang, s=c.idle_ms // 1000), str(c.pending),
                                tc("q.live" if c.live else "q.silent", lang))
            console.print(workers)
        if removed:
            console.print(tc("q.removed", lang, n=len(removed), names=", ".join(removed)), soft_wrap=True)
        for entry in (await rt.queue.dead_entries(limit=20)):
            channel = channel_name(str(entry.get("c", "?")), lang)
            console.print("[red]" + escape(tc("q.dead_line", lang, id=entry["dead_id"], channel=channel,
                                                tries=entry.get("a"), error=entry.get("e"))) + "[/]", soft_wrap=True)

    run_with_runtime(_run)


@queue_app.command("replay-dead")
def queue_replay_dead() -> None:
    """Put every order that could not be stored back into the intake queue (after fixing what stopped it)."""
    from engine.text_cli import tc

    async def _run(rt: Runtime) -> None:
        moved = await rt.queue.replay_dead()
        await rt.dead_letters.mark_all_replayed(rt.clock.now())
        console.print(tc("q.replayed", rt.settings.language, n=moved))

    run_with_runtime(_run, upgrade=True)


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[str, typer.Option(help="admin, manager, finance, supply_chain or customer.")],
    region: Annotated[list[str] | None, typer.Option(help="A region (repeat for several); managers need one.")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone number.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail for escalations.")] = None,
    supervisor: Annotated[str | None, typer.Option(help="Name of this user's supervisor.")] = None,
) -> None:
    """Add a staff user or customer; the user's API token is printed on the last line."""
    if region:
        _check_regions(region)

    async def _run(rt: Runtime) -> str:
        _, token = await rt.users.add(name, role, region or [], phone, email, datetime.now(UTC), supervisor)
        return token

    from engine.text import role_name
    from engine.text_cli import tc

    token = run_user_command(_run)
    lang = Settings().language
    console.print(tc("u.added", lang, name=name, role=role_name(role, lang)))
    print(token)


def _check_regions(regions: list[str]) -> None:
    """Every --region must be one the rules name (the file the server runs: ORDERHUB_RULES → ./rules.yaml →
    bundled): a manager of a region nobody's orders are in would approve nothing, silently. Exit 2 otherwise."""
    from bot.settings import Settings
    from engine.rules import RulesError, load_rules

    path = Settings().rules_path
    try:
        known = load_rules(path.read_text(encoding="utf-8"), str(path)).model.regions
    except (OSError, RulesError) as exc:
        console.print(f"[red]error:[/] cannot check the regions against {path}: {str(exc).splitlines()[0]}",
                      highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    unknown = [r for r in regions if r not in known]
    if unknown:
        console.print(f"[red]error:[/] unknown region {', '.join(unknown)}; the rules ({path}) name: "
                      f"{', '.join(known) or 'none'}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)


@users_app.command("link")
def users_link(
    name: str,
    telegram: Annotated[str | None, typer.Option(help="Telegram user id.")] = None,
    wecom: Annotated[str | None, typer.Option(help="WeCom userid.")] = None,
    chat: Annotated[str | None, typer.Option(metavar="PLATFORM:ID", help="Any registered chat platform's id.")] = None,
) -> None:
    """Tie a chat identity to a user."""
    from bot.platforms.registry import PLATFORMS

    given = [(p, i) for p, i in (("telegram", telegram), ("wecom", wecom)) if i]
    if chat:
        on, _, chat_id = chat.partition(":")
        given.append((on, chat_id))
    if len(given) != 1 or not all(given[0]):
        console.print("[red]error:[/] give exactly one of --telegram, --wecom or --chat PLATFORM:ID")
        raise typer.Exit(2)
    platform, ident = given[0]
    if platform not in (names := [e.name for e in PLATFORMS]):
        console.print(f"[red]error:[/] unknown chat platform {escape(platform)}; known: {', '.join(names)}")
        raise typer.Exit(2)

    async def _run(rt: Runtime) -> None:
        await rt.users.link(name, platform, str(ident), datetime.now(UTC))

    from engine.text_cli import tc

    run_user_command(_run)
    console.print(tc("u.linked", Settings().language, name=name, platform=platform, ident=ident))


@users_app.command("set-quiet")
def users_set_quiet(
    name: str,
    hours: Annotated[str, typer.Argument(help="HH:MM-HH:MM in the installation's time zone (22:00-08:00 runs past "
                                              "midnight), or `off`.")],
) -> None:
    """Quiet hours: no chat alerts for NAME in this window (held, delivered when it ends) except escalations at the
    rules' `sla.quiet_bypass_level` and above; the supervisor's e-mail copy is unaffected."""
    from engine.quiet import parse_quiet
    from engine.text_cli import tc

    spec: str | None = None
    if hours.strip().lower() != "off":
        try:
            parse_quiet(hours)
        except ValueError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None
        spec = hours.strip()

    async def _run(rt: Runtime) -> None:
        await rt.users.set_quiet_hours(name, spec)

    run_user_command(_run)
    lang = Settings().language
    said = tc("u.quiet", lang, name=escape(name), spec=spec) if spec else tc("u.quiet_off", lang, name=escape(name))
    console.print(said)


@users_app.command("invite")
def users_invite(
    name: str,
    days: Annotated[int, typer.Option(help="How long the code stays valid.")] = 3,
) -> None:
    """A one-time code NAME sends to the bot (`/link CODE`) to tie their chat account; printed on the last line."""
    from datetime import timedelta

    from storage.chat_repo import SqlChatRepo
    async def _run(rt: Runtime) -> str:
        user = await rt.users.by_name(name)
        repo = SqlChatRepo(rt.db, rt.order_events())
        return await repo.create_link_code(user.id, datetime.now(UTC), timedelta(days=days))

    from engine.text_cli import tc

    code = run_user_command(_run)
    console.print(tc("u.invite", Settings().language, name=escape(name), days=days, code=code))
    print(code)


@users_app.command("login-link")
def users_login_link(name: str) -> None:
    """A one-time sign-in link for the web board (10 minutes, works once); printed on the last line."""
    from bot.wiring.board import board_auth

    async def _run(rt: Runtime) -> str:
        user = await rt.users.by_name(name)
        if user.role == "customer":
            from storage.users_repo import UserError

            raise UserError(f"{name} is a customer; the board is for staff")
        return await board_auth(rt).login_link(user.id, datetime.now(UTC))

    link = run_user_command(_run)
    console.print(f"{name}: open this within 10 minutes; it signs in once")
    print(link)


@users_app.command("deactivate")
def users_deactivate(
    name: str,
    actor: Annotated[str, typer.Option("--as", help="Who deactivates (recorded in the audit log).")] = "cli",
) -> None:
    """Deactivate a user: no sign-in, no chat commands, no alerts. Their open orders get the owner the rules'
    `owners:` row for the order's stage picks now, or none; each change is audited."""
    from engine.text_cli import tc
    from handlers.owners import AssignRefused, deactivate_owner
    from storage.owner_deactivation import SqlOwnerDeactivation
    from storage.users_repo import UserError

    async def _run(rt: Runtime):  # type: ignore[no-untyped-def]
        await rt.start_rules(watch=False)
        try:
            return await deactivate_owner(SqlOwnerDeactivation(rt.db, rt.order_events()), rt.current_rules(), name, actor,
                                          rt.clock.now())
        except AssignRefused as exc:
            raise UserError(str(exc)) from None

    done = run_user_command(_run)
    lang = Settings().language
    console.print(escape(tc("u.deactivated", lang, name=done.user, n=len(done.repicked) + len(done.cleared),
                            repicked=len(done.repicked), cleared=len(done.cleared))), soft_wrap=True, highlight=False)
    for key, owner in done.repicked:
        console.print(escape(f"  {key} → {owner}"), soft_wrap=True, highlight=False)
    for key in done.cleared:
        console.print(escape(f"  {key} → -"), soft_wrap=True, highlight=False)


@users_app.command("list")
def users_list() -> None:
    """Users with their roles, regions and chat identities."""

    from engine.text import role_name
    from engine.text_cli import tc

    async def _run(rt: Runtime) -> None:
        lang = rt.settings.language
        table = Table(title=tc("u.title", lang))
        for col in ("u.id", "u.name", "u.role", "u.regions", "u.phone", "u.chats"):
            table.add_column(tc(col, lang))
        from bot.platforms.registry import label

        for user, idents in await rt.users.list():
            table.add_row(str(user.id), user.name, role_name(user.role, lang), ", ".join(user.regions),
                          user.phone or "", ", ".join(f"{label(p, lang)} {i}" for p, i in idents))
        console.print(table)

    run_with_runtime(_run, upgrade=True)


@app.command()
def report(days: Annotated[int, typer.Option(help="Window: the last N days.")] = 30,
           digest: Annotated[bool, typer.Option("--digest", help="Print this morning's digest as chat sends it.")]
           = False,
           chart: Annotated[Path | None, typer.Option("--chart", metavar="FILE.png", dir_okay=False,
                                                      help="With --digest: also write the digest chart (PNG) here.")]
           = None) -> None:
    """The four KPIs (order accuracy, fulfilment cycle, manual intervention, availability) and the queue;
    `--digest`: this morning's digest as the chat sends it (`--chart FILE.png`: and its chart)."""
    from datetime import timedelta

    from engine.kpi import compute_kpis
    from storage.reports_repo import SqlReports

    async def _digest(rt: Runtime) -> None:
        from engine.digest import compose_digest
        from engine.rules import load_rules
        from handlers.digest import build_digest
        from handlers.notes import category_names
        from storage.digest_repo import SqlDigestSource

        s = rt.settings
        from bot.adapters.holidays import official_holidays

        rules = load_rules(s.rules_path.read_text(encoding="utf-8"), str(s.rules_path),  # read-only: not recorded
                           official=official_holidays())
        source = SqlDigestSource(rt.db)
        data = await build_digest(source, rt.clock.now(), s.timezone, category_names(rules))
        console.print(compose_digest(data, s.language), markup=False, highlight=False)
        if chart is not None:
            from bot.adapters.digest_chart import write_chart
            from engine.digest import chart_summary
            from handlers.digest import build_chart

            figures = await build_chart(source, rt.clock.now(), s.timezone, category_names(rules))
            written = write_chart(figures, chart, s.language)
            console.print(chart_summary(figures, s.language), markup=False, highlight=False)
            console.print(str(written), markup=False, highlight=False, soft_wrap=True)

    async def _run(rt: Runtime) -> None:
        from engine.text_cli import tc

        lang = rt.settings.language
        until = datetime.now(UTC)
        inputs = await SqlReports(rt.db).kpi_inputs(until - timedelta(days=days), until)
        kpis = compute_kpis(inputs)
        table = Table(title=tc("k.title", lang, days=days))
        table.add_column(tc("k.kpi", lang))
        table.add_column(tc("k.value", lang), justify="right")
        table.add_column(tc("k.from", lang), justify="right")

        def pct(v: float | None) -> str:
            return "—" if v is None else f"{v:.1%}"

        table.add_row(tc("k.accuracy", lang), pct(kpis.order_accuracy),
                      tc("k.completed", lang, clean=inputs.completed_clean, n=inputs.completed))
        table.add_row(tc("k.cycle", lang),
                      "—" if kpis.average_cycle_days is None else tc("k.days", lang, n=kpis.average_cycle_days),
                      tc("k.completed_n", lang, n=inputs.completed))
        table.add_row(tc("k.manual", lang), pct(kpis.manual_intervention_rate),
                      tc("k.orders", lang, manual=inputs.manual_orders, n=inputs.orders))
        table.add_row(tc("k.availability", lang), pct(kpis.availability),
                      tc("k.minutes", lang, up=min(inputs.heartbeat_minutes, inputs.window_minutes),
                         n=inputs.window_minutes))
        rk = kpis.refunds
        mins = ("—" if rk.p50_minutes is None
                else tc("k.refund_minutes", lang, p50=f"{rk.p50_minutes:.1f}", p90=f"{rk.p90_minutes:.1f}"))
        table.add_row(tc("k.refund_time", lang), mins, tc("k.refunds_decided", lang, n=rk.decided, total=len(inputs.refunds)))
        table.add_row(tc("k.refund_auto", lang), pct(rk.automatic_share), tc("k.decided", lang, n=rk.decided))
        console.print(table)
        st = await rt.queue.status()
        console.print(tc("k.queue", lang, depth=st.depth, retrying=st.retrying, dead=st.dead))

    if chart is not None and not digest:
        raise typer.BadParameter("--chart goes with --digest", param_hint="--chart")
    if chart is not None and chart.suffix.lower() != ".png":
        raise typer.BadParameter(f"the chart is a PNG: a file name ending in .png, not {chart.name!r}",
                                 param_hint="--chart")
    run_with_runtime(_digest if digest else _run, upgrade=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (Alembic)."""

    from engine.text_cli import tc
    from storage import migrate

    async def _run(rt: Runtime) -> migrate.Upgraded:
        return await migrate.upgrade(rt.db)

    done = run_with_runtime(_run)
    lang = Settings().language
    if done.applied:
        applied = ", ".join(f"{rev} {title}".strip() for rev, title in done.applied)
        console.print(tc("db.upgraded", lang, rev=done.after, applied=applied), soft_wrap=True)
    else:
        console.print(tc("db.already", lang, rev=done.after or "—"))


def main() -> None:
    """The console script. Whatever escapes a command is said in one line (the traceback only with
    ORDERHUB_DEBUG=1): a user reads a sentence, not 131 lines of library internals."""
    import os
    import sys

    try:
        app(standalone_mode=True)
    except Exception as exc:  # noqa: BLE001 - the last line of defence between a user and a traceback
        if os.environ.get("ORDERHUB_DEBUG") == "1":
            raise
        detail = str(exc).splitlines()[0] if str(exc) else ""
        console.print(f"[red]error:[/] {escape(type(exc).__name__)}{': ' + escape(detail) if detail else ''}",
                      soft_wrap=True, highlight=False)
        sys.exit(1)
