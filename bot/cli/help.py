"""Help text a merchant can read: typer's rich help prints `<bool>` after every flag and `{file}` for a required
argument (its own notation, explained nowhere). Flags show no type; arguments show as `FILE` / `[FILE]`, the
convention every other command-line tool uses. Applied once, when bot.cli.main is imported; a typer without these hooks
is left alone."""

from __future__ import annotations

from typing import Any

from typer import core


def install() -> None:
    option = getattr(core, "TyperOption", None)
    if option is not None and hasattr(option, "display_type_rich") and not getattr(option, "_orderhub", False):
        original = option.display_type_rich

        def display_type_rich(self: Any, ctx: Any) -> str | None:
            if getattr(self, "is_flag", False) or getattr(self, "count", False):
                return None
            return original(self, ctx)

        option.display_type_rich = display_type_rich
        option._orderhub = True
    argument = getattr(core, "TyperArgument", None)
    if argument is not None and hasattr(argument, "_usage_display_name"):

        def usage_name(self: Any) -> str:
            name = str(self.metavar or self.name or "").upper()
            name = name if self.required else f"[{name}]"
            return name + ("..." if self.nargs != 1 else "")

        argument._usage_display_name = usage_name
        if hasattr(argument, "_rich_display_name"):
            original_rich = argument._rich_display_name
            argument._rich_display_name = lambda self: original_rich(self).upper()
