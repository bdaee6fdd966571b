"""Hot reload of the rules file: poll, validate and compile off the event loop, swap only a good version.

Polling (every ~1 s, by content hash) rather than inotify: it works the same on every platform, on network and
container volumes, and with editors that save by rename. A broken file never replaces the running rules; the admins
get one outbox alert per broken content (dedup `rules_invalid:<sha256>`), and every good version is stored so any
past decision can be reproduced from `rule_versions`.

Which file is watched is resolved again on every poll (`ORDERHUB_RULES` → `./rules.yaml` → the bundled example, as
the CLI resolves it): a `rules.yaml` created after start-up takes over within a poll, so the server and
`orderhub rules check/explain/diff` never disagree on what decides. Every switch of file is logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from bot.adapters.holidays import official_holidays
from engine.rules import RuleIssue, RulesError, RuleSet, load_rules
from engine.text import t
from storage.rules_repo import RulesRepo

log = logging.getLogger("orderhub.rules")


def compile_rules(text: str, source: str) -> RuleSet:
    """A rules text → a RuleSet, with the official holidays: the one way every process (and the CLI) loads rules."""
    return load_rules(text, source, official=official_holidays())


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _default_loader() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


class RulesRuntime:
    """Holds the current RuleSet; `current` is a plain attribute read, so evaluation never waits on a reload."""

    def __init__(
        self,
        path: Path | Callable[[], Path],
        repo: RulesRepo | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        loaded_by: str | None = None,
        interval: float = 1.0,
        confirm_delay: float = 0.2,
        on_change: Callable[[RuleSet], None] | None = None,
        language: str = "zh",
    ) -> None:
        # a fixed file, or the resolution chain (`Settings.rules_path`) asked again on every poll
        self._resolve: Callable[[], Path] = path if callable(path) else (lambda p=Path(path): p)
        self.path = Path(self._resolve())
        self.repo = repo
        self.clock = clock
        self.loaded_by = loaded_by or _default_loader()
        self.interval = interval
        self.confirm_delay = confirm_delay
        self.on_change = on_change
        self.language = language
        self._told_holidays: set[str] = set()  # dedup keys of the holiday notices queued by this process
        self._current: RuleSet | None = None
        self._seen_hash: str | None = None
        self.last_error: RulesError | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> RuleSet:
        if self._current is None:
            raise RuntimeError("rules not loaded yet: call `await runtime.start()` first")
        return self._current

    async def start(self) -> RuleSet:
        """Load the file. If it is broken at start-up, fall back to the newest stored version (and alert)."""
        raw = await self._read()
        sha = hashlib.sha256(raw).hexdigest()
        self._seen_hash = sha
        try:
            rules = await asyncio.to_thread(self._compile, raw)
        except RulesError as e:
            await self._invalid(sha, e)
            stored = await self.repo.latest_version() if self.repo is not None else None
            if stored is None:
                raise
            log.warning("rules file %s is invalid; running stored version %s", self.path, stored.hash[:12])
            rules = load_rules(stored.text, stored.source_path, official=official_holidays())
        await self._install(rules)
        return rules

    async def poll(self) -> bool:
        """Check the file once (resolving which file first); True if a new version was installed."""
        moved = self._follow()
        raw = await self._read()
        sha = hashlib.sha256(raw).hexdigest()
        if sha == self._seen_hash and not moved:
            return False
        try:
            rules = await asyncio.to_thread(self._compile, raw)
        except RulesError as e:
            if self.confirm_delay > 0:
                # an editor may be half-way through writing: only a content that stays broken is reported
                await asyncio.sleep(self.confirm_delay)
                if hashlib.sha256(await self._read()).hexdigest() != sha:
                    return False
            self._seen_hash = sha
            await self._invalid(sha, e)
            return False
        self._seen_hash = sha
        if self._current is not None and rules.version == self._current.version:
            if moved:  # the same content from another file: recorded as that file's too, and logged
                await self._install(rules, notify=False)
            return False
        await self._install(rules)
        return True

    def _follow(self) -> bool:
        """Resolve the rules file again; True (and logged) when it is another file than the one watched so far."""
        try:
            path = Path(self._resolve())
        except Exception:  # noqa: BLE001 - a resolution that fails keeps the file watched so far
            log.exception("cannot resolve the rules file; keeping %s", self.path)
            return False
        if path == self.path:
            return False
        log.warning("rules file is now %s (was %s)", path, self.path)
        self.path = path
        return True

    async def run(self) -> None:
        """Poll forever; errors are logged and never end the loop (the last good rules keep running)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.poll()
                await self.check_holidays()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rules reload failed; keeping version %s", self._current.version[:12] if self._current else "-")

    async def __aenter__(self) -> Self:
        await self.start()
        self._task = asyncio.create_task(self.run(), name="rules-reload")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    # --- internals ------------------------------------------------------------------------------------------------

    async def _read(self) -> bytes:
        try:
            return await asyncio.to_thread(self.path.read_bytes)
        except OSError as e:
            # a missing/unreadable file is "invalid content" too: keep running, tell the admins
            return f"\0unreadable: {e.strerror or e}".encode()

    def _compile(self, raw: bytes) -> RuleSet:
        if raw.startswith(b"\0unreadable: "):
            msg = raw[len(b"\0unreadable: "):].decode(errors="replace")
            raise RulesError([RuleIssue(str(self.path), None, None, "", f"cannot read the rules file: {msg}")])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RulesError(
                [RuleIssue(str(self.path), None, None, "", f"the file is not UTF-8 text (byte {e.start})")]
            ) from None
        return compile_rules(text, str(self.path))

    async def _install(self, rules: RuleSet, *, notify: bool = True) -> None:
        if self.repo is not None:
            # stored before it is used, so every decision's version can be looked up
            await self.repo.record_version(
                version=rules.version, text=rules.text, source_path=rules.source, loaded_by=self.loaded_by, now=self.clock()
            )
        old = self._current
        self._current = rules
        self.last_error = None
        log.info("rules version %s active (from %s)", rules.version[:12], rules.source)
        gaps = rules.library_gaps()
        if gaps:
            log.warning("rules version %s: anomalies.categories lacks the bundled library's %s (their notes are "
                        "filed under a weaker match or none)", rules.version[:12], ", ".join(gaps))
        if self.on_change is not None and old is not None and notify:
            self.on_change(rules)

    async def check_holidays(self) -> None:
        """(Run by the watch loop.) Tell the admins once when today is past the last year a calendar's holidays
        cover (the official data and the file's own list): its deadlines would silently ignore this year's holidays."""
        rules = self._current
        if rules is None or self.repo is None:
            return
        now = self.clock()
        for calendar, year in rules.holiday_gaps(now.astimezone(rules.tz).date()):
            key = f"holidays_run_out:{calendar}:{year}"
            if key in self._told_holidays:
                continue
            text = t("admin.holidays_run_out", self.language, calendar=calendar, year=year, next=year + 1,
                     source=rules.holiday_source or "rules file")
            await self.repo.record_notice(key=key, text=text, now=now)
            self._told_holidays.add(key)
            log.warning("calendar %s: holidays end with %d (%s)", calendar, year, rules.holiday_source or "rules file")

    async def _invalid(self, sha: str, error: RulesError) -> None:
        self.last_error = error
        log.warning("rules file %s is invalid, keeping the last good version:\n%s", self.path, error)
        if self.repo is not None:
            await self.repo.record_invalid(
                sha256=sha, error=str(error), error_zh=error.render("zh"), path=str(self.path), now=self.clock()
            )
