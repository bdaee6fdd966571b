"""`orderhub notes relabel ID CATEGORY [--as NAME]` and `orderhub notes export-examples [--out FILE]`.

Relabel is the one correction use case (handlers.note_learning.relabel), as the API route and the chat button
use it: audited, and the note becomes an example the classifier learns from. Without `--as` the operator's shell
acts (audited as `cli`), with it that user's rights apply.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from bot.cli.runtime import run_user_command, user_error

app = typer.Typer(help="Exception notes: correct a category, export the learned examples.", no_args_is_help=True)
console = Console()


@app.command("relabel")
def relabel_note(
    note_id: Annotated[int, typer.Argument(min=1, max=2**63 - 1,
                                           help="The note's id (in the order's exception notes).")],
    category: Annotated[str, typer.Argument(help="A category id of the rules file, e.g. stock_shortage.")],
    as_user: Annotated[str | None, typer.Option("--as", help="The staff user correcting (their rights apply).")]
    = None,
) -> None:
    """Correct a note's category; similar notes are classified with it from then on."""
    from engine.access import Viewer
    from handlers.note_learning import RelabelRefused, relabel

    async def _run(rt) -> str | None:  # type: ignore[no-untyped-def]
        from bot.wiring.notes import note_learning

        await rt.start_rules(watch=False)
        actor, name = None, "cli"
        if as_user is not None:
            u = await rt.users.by_name(as_user)
            actor, name = Viewer(u.id, u.role, tuple(u.regions)), u.name
        try:
            done = await relabel(note_learning(rt.db, rt.current_rules, rt.order_events()), note_id, category, name, actor, "cli",
                                 rt.clock.now())
        except RelabelRefused as exc:
            return f"{exc.code}: {exc}"
        console.print(f"note {done.note_id} (order {done.order_ref}): {done.previous or '-'} → {done.category}")
        return None

    refused = run_user_command(_run)
    if refused is not None:
        console.print(f"[red]refused:[/] {refused}", soft_wrap=True, highlight=False)
        raise typer.Exit(1)


@app.command("export-examples")
def export(out: Annotated[Path | None, typer.Option(help="Write the JSON here instead of printing it.")] = None
           ) -> None:
    """Every learned example (text, category, who, when, on which rules and library version) as JSON, with the
    version of the set: the same examples always have the same version."""
    from handlers.note_learning import export_examples

    async def _run(rt) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        from bot.wiring.notes import note_learning

        await rt.start_rules(watch=False)
        return await export_examples(note_learning(rt.db, rt.current_rules))

    data = run_user_command(_run)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out is None:
        print(text)
        return
    try:
        out.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        user_error(f"cannot write {out}: {exc.strerror or exc}")
    console.print(f"{len(data['examples'])} examples (version {data['version']}) written to {out}")
