"""What the use cases that change the rules (a carrier switch) need: an editor that writes a new rules version.

`storage.rules_file.RulesFileEditor` implements it: the edit is validated like any rules file, written atomically,
stored as a version and hot-reloaded. Use cases never touch the file themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from engine.rules import RuleSet


class RulesEditRefused(Exception):
    """Nothing was written: the file cannot be edited (the bundled example, unreadable), or the edit would make it
    invalid (the message lists the problems)."""


class RulesEditor(Protocol):
    async def set(self, key: Sequence[str], value: Any, *, by: str, now: datetime) -> RuleSet:
        """Set (or remove, with `engine.rules.edit.MISSING`) the mapping key at `key`; the new RuleSet, stored and
        installed. Raises RulesEditRefused."""
        ...
