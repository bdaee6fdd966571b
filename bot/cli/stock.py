"""`orderhub stock import FILE`: the stock table that `routing.use_stock` routes by."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Stock levels per SKU and production base (routing.use_stock).", no_args_is_help=True)
console = Console()


@app.command("import")
def import_stock_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                         help="A .csv or .xlsx file with columns sku, base, quantity.")],
    replace: Annotated[bool, typer.Option("--replace", help="The file is the whole stock: pairs not in it are "
                                                            "removed (default: merged, others kept).")] = False,
) -> None:
    """Check every row, then write all of them in one transaction; any refused row (reported with its line
    number) means nothing is imported. Exit 1 with refused rows, 2 for a file that cannot be read."""
    from bot.cli.runtime import run_user_command
    from bot.cli.stock_import import import_stock
    from bot.wiring.runtime import Runtime

    async def _run(rt: Runtime) -> int:
        return await import_stock(rt, file, console, replace=replace)

    refused = run_user_command(_run)
    raise typer.Exit(1 if refused else 0)
