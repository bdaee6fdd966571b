"""Hot reload: a good new file replaces the rules, a broken one never does (and the admins are told once)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.settings import BUNDLED_RULES, Settings
from bot.workers.rules_runtime import RulesRuntime
from engine.rules import Facts, RulesError, evaluate, rules_hash
from storage.models import OutboxRow, RuleVersionRow
from storage.rules_repo import RulesRepo
from tests.engine.rules_support import EXAMPLE_TEXT, T0, edited, order
from tests.storage.rules_db_support import temp_db

THRESHOLD_8000 = edited("when: {field: order.amount, op: gt, value: 5000}", "when: {field: order.amount, op: gt, value: 8000}")
BROKEN = edited("{id: sla-ordered, stage: ordered, limit: 8h}", "{id: sla-ordered, stage: orderd, limit: 8h}")


def _needs_approval(rt: RulesRuntime, amount: str = "6000.00") -> bool:
    return evaluate(order(amount=amount), Facts(), rt.current, T0).needs_approval


async def _rows(sessions, model):  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return list(await s.scalars(select(model).order_by(model.id)))


def _example_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    return path


@asynccontextmanager
async def _started(tmp_path: Path, rules: Path | Callable[[], Path], **options: Any
                   ) -> AsyncIterator[tuple[Any, RulesRuntime]]:
    """A fresh store and a runtime started over `rules` and it: (sessions, runtime), where the reload tests begin."""
    async with temp_db(tmp_path / "db.sqlite") as sessions:
        rt = RulesRuntime(rules, RulesRepo(sessions), clock=lambda: T0, **options)
        await rt.start()
        yield sessions, rt


@pytest.fixture
def cli_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings in tmp_path with ORDERHUB_RULES unset: the rules file is ./rules.yaml when there is one, else bundled."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORDERHUB_RULES", raising=False)
    return Settings(_env_file=None)


@pytest.mark.asyncio
async def test_reload_swaps_good_versions_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    path = _example_file(tmp_path)
    async with _started(tmp_path, path, loaded_by="test", confirm_delay=0) as (sessions, rt):
        assert rt.current.version == rules_hash(EXAMPLE_TEXT) and _needs_approval(rt)
        assert not await rt.poll()  # unchanged file: nothing happens

        path.write_text(THRESHOLD_8000, encoding="utf-8")
        assert await rt.poll()
        assert rt.current.version == rules_hash(THRESHOLD_8000) and not _needs_approval(rt)

        path.write_text(BROKEN, encoding="utf-8")
        assert not await rt.poll()
        assert rt.current.version == rules_hash(THRESHOLD_8000)  # orders keep flowing on the last good version
        assert not _needs_approval(rt)
        assert rt.last_error is not None and "orderd" in str(rt.last_error)
        assert not await rt.poll()  # the same broken content is not reported twice

        versions = await _rows(sessions, RuleVersionRow)
        assert [v.hash for v in versions] == [rules_hash(EXAMPLE_TEXT), rules_hash(THRESHOLD_8000)]
        assert versions[1].text == THRESHOLD_8000 and versions[1].loaded_by == "test" and versions[1].source_path == str(path)
        alerts = await _rows(sessions, OutboxRow)
        assert len(alerts) == 1
        a = alerts[0]
        assert (a.kind, a.recipient_role, a.dedup_key) == ("rules_invalid", "admin", f"rules_invalid:{rules_hash(BROKEN)}")
        assert a.payload["path"] == str(path)
        assert f"{path}:" in a.payload["error"] and "sla.limits[3].stage" in a.payload["error"]
        assert "unknown stage orderd" in a.payload["error"] and "未知阶段 orderd" in a.payload["error_zh"]

        path.write_text(EXAMPLE_TEXT, encoding="utf-8")  # fixed again: back to a known version, no new row
        assert await rt.poll()
        assert rt.last_error is None and _needs_approval(rt)
        assert len(await _rows(sessions, RuleVersionRow)) == 2


@pytest.mark.asyncio
async def test_a_missing_or_non_utf8_file_keeps_the_rules(tmp_path: Path) -> None:
    path = _example_file(tmp_path)
    async with _started(tmp_path, path, confirm_delay=0) as (sessions, rt):
        good = rt.current.version
        path.unlink()
        assert not await rt.poll()
        assert rt.current.version == good and "cannot read the rules file" in str(rt.last_error)
        path.write_bytes("regions: {华东: {cities: [杭州]}}".encode("gbk"))
        assert not await rt.poll()
        assert rt.current.version == good and "not UTF-8" in str(rt.last_error)
        assert len(await _rows(sessions, OutboxRow)) == 2


@pytest.mark.asyncio
async def test_a_half_written_file_is_not_reported_if_it_changes_again(tmp_path: Path) -> None:
    path = _example_file(tmp_path)
    async with _started(tmp_path, path, confirm_delay=0.2) as (sessions, rt):
        path.write_text(EXAMPLE_TEXT[: len(EXAMPLE_TEXT) // 3], encoding="utf-8")  # the editor is still writing

        async def finish() -> None:
            await asyncio.sleep(0.05)
            path.write_text(THRESHOLD_8000, encoding="utf-8")

        task = asyncio.create_task(finish())
        assert not await rt.poll()
        await task
        assert await rt.poll()
        assert rt.current.version == rules_hash(THRESHOLD_8000)
        assert await _rows(sessions, OutboxRow) == []


@pytest.mark.asyncio
async def test_broken_at_start_falls_back_to_the_newest_stored_version(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    async with temp_db(tmp_path / "db.sqlite") as sessions:
        repo = RulesRepo(sessions)
        path.write_text(THRESHOLD_8000, encoding="utf-8")
        await RulesRuntime(path, repo, clock=lambda: T0).start()
        path.write_text(BROKEN, encoding="utf-8")
        rt = RulesRuntime(path, repo, clock=lambda: T0)
        await rt.start()
        assert rt.current.version == rules_hash(THRESHOLD_8000)
        assert len(await _rows(sessions, OutboxRow)) == 1


@pytest.mark.asyncio
async def test_broken_at_start_with_nothing_stored_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    rt = RulesRuntime(path, None)
    with pytest.raises(RulesError):
        await rt.start()
    with pytest.raises(RuntimeError, match="not loaded"):
        rt.current  # noqa: B018


@pytest.mark.asyncio
async def test_the_watch_loop_applies_a_change_within_seconds(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    seen = []
    async with RulesRuntime(path, None, interval=0.05, on_change=lambda r: seen.append(r.version)) as rt:
        assert _needs_approval(rt)
        path.write_text(THRESHOLD_8000, encoding="utf-8")
        start = time.monotonic()
        while _needs_approval(rt):
            assert time.monotonic() - start < 5, "the new rules were not picked up within 5 s"
            await asyncio.sleep(0.02)
        assert seen == [rules_hash(THRESHOLD_8000)]
    assert rt._task is None  # stopped with the context


@pytest.mark.asyncio
async def test_a_rules_yaml_created_after_start_takes_over(tmp_path: Path, cli_settings: Settings,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """The server resolves ORDERHUB_RULES → ./rules.yaml → bundled on every poll, as the CLI does on every run."""
    async with _started(tmp_path, lambda: cli_settings.rules_path, confirm_delay=0) as (sessions, rt):
        assert rt.path == BUNDLED_RULES and _needs_approval(rt)
        assert not await rt.poll()
        Path("rules.yaml").write_text(THRESHOLD_8000, encoding="utf-8")  # created while the server runs
        with caplog.at_level("INFO", logger="orderhub.rules"):
            assert await rt.poll()
        assert rt.path == Path("rules.yaml") == cli_settings.rules_path  # what the CLI reads too
        assert not _needs_approval(rt) and rt.current.source == "rules.yaml"
        assert "rules file is now rules.yaml" in caplog.text and "active (from rules.yaml)" in caplog.text
        versions = await _rows(sessions, RuleVersionRow)
        assert [(v.hash, v.source_path) for v in versions] == [
            (rules_hash(EXAMPLE_TEXT), str(BUNDLED_RULES)), (rules_hash(THRESHOLD_8000), "rules.yaml")]
        Path("rules.yaml").unlink()  # removed again: back to the bundled file, as the CLI would read
        assert await rt.poll() and rt.path == BUNDLED_RULES and _needs_approval(rt)


@pytest.mark.asyncio
async def test_the_same_content_in_a_new_file_makes_that_file_active(tmp_path: Path, cli_settings: Settings) -> None:
    async with _started(tmp_path, lambda: cli_settings.rules_path, confirm_delay=0) as (sessions, rt):
        Path("rules.yaml").write_text(BUNDLED_RULES.read_text(encoding="utf-8"), encoding="utf-8")  # a plain copy
        assert not await rt.poll()  # same version: nothing new to install
        assert rt.path == Path("rules.yaml") and rt.current.source == "rules.yaml"
        versions = await _rows(sessions, RuleVersionRow)
        assert [v.source_path for v in versions] == [f"{BUNDLED_RULES}; rules.yaml"]  # both files it came from
        Path("rules.yaml").write_text(THRESHOLD_8000, encoding="utf-8")  # and its later edits are followed
        assert await rt.poll() and not _needs_approval(rt)


@pytest.mark.asyncio
async def test_admins_are_told_once_when_the_holidays_run_out(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from bot.adapters.holidays import official_holidays

    data = official_holidays()
    assert data is not None and data.last_year is not None
    path = tmp_path / "rules.yaml"
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    late = datetime(data.last_year + 1, 1, 15, 2, tzinfo=UTC)  # past the last year the data covers
    early = datetime(data.last_year, 12, 31, 2, tzinfo=UTC)
    async with temp_db(tmp_path / "db.sqlite") as sessions:
        quiet = RulesRuntime(path, RulesRepo(sessions), clock=lambda: early, confirm_delay=0)
        await quiet.start()
        await quiet.check_holidays()
        assert await _rows(sessions, OutboxRow) == []
        for _ in range(2):  # a restart, or a second process: still told once
            rt = RulesRuntime(path, RulesRepo(sessions), clock=lambda: late, confirm_delay=0, language="en")
            await rt.start()
            await rt.check_holidays()
            await rt.check_holidays()
        [notice] = await _rows(sessions, OutboxRow)
        assert (notice.kind, notice.recipient_role) == ("admin_notice", "admin")
        assert notice.dedup_key == f"holidays_run_out:default:{data.last_year}"
        assert f"end with {data.last_year}" in notice.payload["text"] and "chinesecalendar" in notice.payload["text"]


@pytest.mark.asyncio
async def test_loading_a_file_without_a_library_category_warns_and_still_installs_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    async with temp_db(tmp_path / "db.sqlite") as sessions:
        with caplog.at_level("WARNING", logger="orderhub.rules"):
            rt = RulesRuntime(path, RulesRepo(sessions), confirm_delay=0)
            await rt.start()
            assert not [r for r in caplog.records if "bundled library" in r.getMessage()]  # the example has all nine
            path.write_text(edited("    customer_change:", "    client_change:"), encoding="utf-8")
            assert await rt.poll()  # installed: a warning, not an error
        assert "client_change" in rt.current.anomaly_categories
        [warning] = [r for r in caplog.records if "bundled library" in r.getMessage()]
        assert "lacks the bundled library's customer_change" in warning.getMessage()
