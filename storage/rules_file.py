"""The one path for machine edits of the rules file (a carrier switch and its undo): edit the text (ruamel
round-trip, engine.rules.edit), validate it with `load_rules` — the validator every rules file goes through — write
it atomically, store it as a new rules version, and hot-reload it.

The file is the source of truth, as for a person's edit: a running server's watcher (bot/workers/rules_runtime.py)
installs the new content within a poll; in the process that edited, `reload` installs it at once. Edits are serialised
with an exclusive lock next to the file, and the text is read again under the lock, so two edits never lose each other.
The bundled example is never written (it is part of the installed package): copy it to `rules.yaml` first.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.rules import RulesError, RuleSet, load_rules
from engine.rules.edit import EditError, set_in_text
from handlers.rules_edit import RulesEditRefused
from storage.rules_repo import RulesRepo


class RulesFileEditor:
    """`await editor.set(path, value, by=…, now=…)` → the new RuleSet, stored and installed."""

    def __init__(self, path: Callable[[], Path], repo: RulesRepo | None, *, protected: Sequence[Path] = (),
                 official: Any = None, reload: Callable[[], Awaitable[Any]] | None = None) -> None:
        self._path, self.repo, self.official, self._reload = path, repo, official, reload
        self._protected = {p.resolve() for p in protected}

    def path(self) -> Path:
        return Path(self._path())

    async def set(self, key: Sequence[str], value: Any, *, by: str, now: datetime) -> RuleSet:
        """Set (or, with engine.rules.edit.MISSING, remove) the key at `key`; raises RulesEditRefused."""
        path = self.path()
        if path.resolve() in self._protected:
            raise RulesEditRefused(f"the rules in effect are the bundled example ({path}); copy it to rules.yaml "
                                   "(or set ORDERHUB_RULES) before editing them")
        rules = await asyncio.to_thread(self._edit, path, key, value)
        if self.repo is not None:
            await self.repo.record_version(version=rules.version, text=rules.text, source_path=str(path),
                                           loaded_by=by[:64], now=now)
        if self._reload is not None:
            await self._reload()
        return rules

    def _edit(self, path: Path, key: Sequence[str], value: Any) -> RuleSet:
        lock = path.with_name(f".{path.name}.lock")
        with open(lock, "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise RulesEditRefused(f"cannot read {path}: {e}") from None
            try:
                edited = set_in_text(text, key, value)
            except EditError as e:
                raise RulesEditRefused(f"{path}: {e}") from None
            try:
                rules = load_rules(edited, str(path), official=self.official)
            except RulesError as e:
                raise RulesEditRefused(f"the edited rules would be invalid; nothing written:\n{e}") from None
            _replace(path, edited)
            return rules


def _replace(path: Path, text: str) -> None:
    """Write beside the file, fsync, rename over it: a reader sees the old or the new file, never half of one."""
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
