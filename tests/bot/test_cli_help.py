"""`--help` a merchant can read: no `<bool>` on flags, no `{file}`/`{name}`, no documents they don't have."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from bot.cli.main import app
from tests.test_readme import _commands

runner = CliRunner()


def test_help_texts_have_no_internal_notation() -> None:
    for command in ["", *sorted(_commands(app))]:
        out = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": "160"}).output
        assert "Usage" in out, command
        for bad in ("<bool>", "SPEC", "DESIGN.md", "§"):
            assert bad not in out, (command, bad)
        assert not re.search(r"\{[a-z_]+\}", out), (command, out)
