"""Hot reload: a good new file replaces the rules, a broken one never does (and the admins are told once)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.rules_runtime import RulesRuntime
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


@pytest.mark.asyncio
async def test_reload_swaps_good_versions_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    async with temp_db(tmp_path / "db.sqlite") as sessions:
        rt = RulesRuntime(path, RulesRepo(sessions), clock=lambda: T0, loaded_by="test", confirm_delay=0)
        await rt.start()
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
    path = tmp_path / "rules.yaml"
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    async with temp_db(tmp_path / "db.sqlite") as sessions:
        rt = RulesRuntime(path, RulesRepo(sessions), clock=lambda: T0, confirm_delay=0)
        await rt.start()
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
    path = tmp_path / "rules.yaml"
    path.write_text(EXAMPLE_TEXT, encoding="utf-8")
    async with temp_db(tmp_path / "db.sqlite") as sessions:
        rt = RulesRuntime(path, RulesRepo(sessions), clock=lambda: T0, confirm_delay=0.2)
        await rt.start()
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
