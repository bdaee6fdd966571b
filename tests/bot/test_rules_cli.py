"""`orderhub rules check|explain|schema|diff`: located errors, exit codes, and never a traceback."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.rules import app
from engine.rules import Facts, evaluate
from tests.engine.rules_support import EXAMPLE, EXAMPLE_PATH, EXAMPLE_TEXT, edited, order
from tests.storage.rules_db_support import store_order, temp_db

runner = CliRunner()

BROKEN_FILES = {
    "bad_yaml.yaml": ("regions:\n  华东:\n    cities: [杭州, 上海\n", ":3:13:", "not valid YAML"),
    "unknown_field.yaml": (
        edited("    kind: order\n    description: {zh: 订单金额", "    kind: order\n    colour: red\n    description: {zh: 订单金额"),
        "approvals[0].colour:",
        "unknown field 'colour'",
    ),
    "wrong_type.yaml": (
        edited("op: gt, value: 10000}, points: 5}", "op: gt, value: 10000}, points: lots}"),
        "priority.weights[4].points:",
        "expected a whole number, got 'lots'",
    ),
    "unknown_stage.yaml": (
        edited("{id: sla-ordered, stage: ordered, limit: 8h}", "{id: sla-ordered, stage: orderd, limit: 8h}"),
        "sla.limits[3].stage:",
        "unknown stage orderd",
    ),
    "bad_expression.yaml": (
        edited('when: "facts.previous_orders >= 3"', 'when: "facts.previous_orders >=> 3"'),
        "priority.weights[5].when:",
        "bad expression: not a valid expression",
    ),
}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ./rules.yaml or .env of the developer's leaks in; the bundled example is the default."""
    monkeypatch.chdir(tmp_path)
    for var in ("ORDERHUB_RULES", "ORDERHUB_LANGUAGE", "ORDERHUB_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)


def test_check_accepts_the_bundled_example_by_default() -> None:
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert str(EXAMPLE_PATH) in result.output and EXAMPLE.version[:12] in result.output and "有效" in result.output
    en = runner.invoke(app, ["check", str(EXAMPLE_PATH), "--language", "en"])
    assert en.exit_code == 0 and "is valid" in en.output and "2 approval rules" in en.output


def test_check_uses_orderhub_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(BROKEN_FILES["wrong_type.yaml"][0], encoding="utf-8")
    monkeypatch.setenv("ORDERHUB_RULES", str(path))
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1 and "mine.yaml:" in result.output


@pytest.mark.parametrize("name", sorted(BROKEN_FILES))
def test_check_reports_broken_files_precisely(tmp_path: Path, name: str) -> None:
    text, where, message = BROKEN_FILES[name]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["check", str(path), "--language", "en"])
    assert result.exit_code == 1
    out = result.output
    assert "Traceback" not in out
    assert result.exception is None or isinstance(result.exception, SystemExit)
    line = next(ln for ln in out.splitlines() if name in ln)
    assert line.strip().startswith(f"{path}:") and where in line and message in line, out
    # file:line:column at the start of the line
    _, lineno, col, *_ = line.strip()[len(str(path)):].split(":")
    assert lineno.isdigit() and col.isdigit()


def test_check_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "nope.yaml"), "-l", "en"])
    assert result.exit_code == 1 and "rules file not found" in result.output and "Traceback" not in result.output


def test_schema_is_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "OrderHub rules" and "approvals" in schema["properties"]


def _seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    db = tmp_path / "orderhub.db"
    monkeypatch.setenv("ORDERHUB_DATABASE_URL", f"sqlite:///{db}")
    now = datetime.now(UTC)

    async def seed() -> dict[str, int]:
        async with temp_db(db) as sessions:
            ids = {}
            big = order(id=1, amount="6800.00", city="杭州", created=now - timedelta(days=2), entered=now - timedelta(days=2))
            stale = evaluate(big, Facts(), EXAMPLE, now).to_json()
            ids["big"] = await store_order(sessions, big, now=now, decisions=stale, rules_version="0" * 64)
            for i in range(2, 6):
                o = order(id=i, amount="6000.00", city="上海", created=now - timedelta(days=i), entered=now - timedelta(days=i))
                ids[f"o{i}"] = await store_order(sessions, o, now=now)
            old = order(id=9, amount="9999.00", created=now - timedelta(days=60), entered=now - timedelta(days=60))
            ids["old"] = await store_order(sessions, old, now=now)
            return ids

    return asyncio.run(seed())


def test_explain_by_id_and_by_channel_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = _seed(tmp_path, monkeypatch)
    by_id = runner.invoke(app, ["explain", str(ids["big"]), "-l", "en"])
    assert by_id.exit_code == 0, by_id.output
    out = by_id.output
    assert "Rules decisions for order tmall:E000001" in out
    assert "order-over-5000 — matched: order.amount > 5000" in out and "order.amount = 6800.00" in out
    assert "vip — not matched" in out and "refund-over-2000 — skipped" in out
    assert "the stored decisions used rules version 000000000000" in out
    by_key = runner.invoke(app, ["explain", "tmall:E000001"])
    assert by_key.exit_code == 0 and "order-over-5000 — 命中" in by_key.output and "需要审批" in by_key.output
    stored = runner.invoke(app, ["explain", "tmall:E000001", "--stored", "-l", "en"])
    assert stored.exit_code == 0 and "order-over-5000 — matched" in stored.output


def test_explain_unknown_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(tmp_path, monkeypatch)
    result = runner.invoke(app, ["explain", "tmall:NOPE", "-l", "en"])
    assert result.exit_code == 1 and "order tmall:NOPE not found" in result.output and "Traceback" not in result.output


def test_explain_without_a_database_is_a_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERHUB_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(app, ["explain", "1", "-l", "en"])
    assert result.exit_code == 1 and "cannot read the database" in result.output and "db upgrade" in result.output


def test_diff_replays_recent_orders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(tmp_path, monkeypatch)
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(
        edited("when: {field: order.amount, op: gt, value: 5000}", "when: {field: order.amount, op: gt, value: 8000}"),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["diff", str(proposed), "--days", "30", "-l", "en"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Replayed 5 orders from the last 30 days" in out  # the 60-day-old order is outside the window
    assert "~ approvals[order-over-5000].when.value: 5000 → 8000" in out
    assert "Orders needing approval: 5 → 0 (-1.2 per week)" in out
    assert "0 orders would be routed to another base" in out


def test_diff_with_a_broken_proposal_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed(tmp_path, monkeypatch)
    proposed = tmp_path / "proposed.yaml"
    proposed.write_text(BROKEN_FILES["unknown_stage.yaml"][0], encoding="utf-8")
    result = runner.invoke(app, ["diff", str(proposed)])
    assert result.exit_code == 1 and "未知阶段 orderd" in result.output


def test_example_text_matches_the_file() -> None:
    assert EXAMPLE_PATH.read_text(encoding="utf-8") == EXAMPLE_TEXT


def test_check_errors_in_chinese_by_default(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(BROKEN_FILES["wrong_type.yaml"][0], encoding="utf-8")
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 1
    assert "规则文件有 1 处问题" in result.output and "priority.weights[4].points: 应为整数，实际为 'lots'" in result.output


def test_versions_and_explain_with_a_past_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A past decision is reproduced from the stored text of the version that made it."""
    from storage.rules_repo import RulesRepo

    ids = _seed(tmp_path, monkeypatch)
    old_text = edited("when: {field: order.amount, op: gt, value: 5000}", "when: {field: order.amount, op: gt, value: 8000}")
    from engine.rules import rules_hash

    async def store() -> None:
        async with temp_db(tmp_path / "orderhub.db") as sessions:
            repo = RulesRepo(sessions)
            t = datetime(2025, 11, 1, tzinfo=UTC)
            await repo.record_version(version=rules_hash(old_text), text=old_text, source_path="/srv/rules.yaml", loaded_by="h:1", now=t)
            await repo.record_version(version=EXAMPLE.version, text=EXAMPLE_TEXT, source_path="/srv/rules.yaml", loaded_by="h:2",
                                      now=t + timedelta(days=1))

    asyncio.run(store())
    listed = runner.invoke(app, ["versions", "-l", "en"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == "Stored rules versions (newest last):"
    assert lines[1].split()[0] == rules_hash(old_text)[:12] and "2025-11-01 08:00:00 CST" in lines[1] and "h:1" in lines[1]
    assert lines[2].split()[0] == EXAMPLE.version[:12]
    assert lines[-1].startswith("Rules file in effect here (ORDERHUB_RULES → ./rules.yaml → bundled): ")
    assert lines[-1].endswith("rules.example.yaml")  # no ./rules.yaml in the working directory: the bundled file
    (tmp_path / "rules.yaml").write_text(EXAMPLE_TEXT, encoding="utf-8")
    assert runner.invoke(app, ["versions", "-l", "en"]).output.splitlines()[-1].endswith(": rules.yaml")

    past = runner.invoke(app, ["explain", str(ids["big"]), "--version", rules_hash(old_text)[:10], "-l", "en"])
    assert past.exit_code == 0, past.output
    assert "order-over-5000 — not matched: order.amount > 8000" in past.output
    now = runner.invoke(app, ["explain", str(ids["big"]), "-l", "en"])
    assert "order-over-5000 — matched: order.amount > 5000" in now.output

    missing = runner.invoke(app, ["explain", str(ids["big"]), "--version", "ffff", "-l", "en"])
    assert missing.exit_code == 1 and "no stored rules version ffff" in missing.output


def test_bad_settings_are_a_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERHUB_LANGUAGE", "fr")
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1 and "invalid settings: ORDERHUB_LANGUAGE" in result.output
    assert "Traceback" not in result.output


def test_explain_stored_recomputes_the_trace_of_a_compact_decision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Intake stores decisions without their trace; `--stored` evaluates again from the recorded inputs with the
    version that decided, and says so plainly when it cannot."""
    from engine.rules import load_rules, rules_hash
    from engine.stages import Stage
    from storage.rules_repo import RulesRepo

    db = tmp_path / "orderhub.db"
    monkeypatch.setenv("ORDERHUB_DATABASE_URL", f"sqlite:///{db}")
    old_text = edited("when: {field: order.amount, op: gt, value: 5000}", "when: {field: order.amount, op: gt, value: 6000}")
    old = load_rules(old_text)
    at = datetime(2025, 11, 1, 2, 0, tzinfo=UTC)

    def at_intake(id: int, amount: str, rules: object) -> tuple[object, dict]:
        o = order(id=id, amount=amount, stage=Stage.PENDING_CONFIRM, entered=at, created=at)
        new = order(id=0, amount=amount, stage=Stage.PENDING_CONFIRM, entered=at, created=at)  # ids come later
        return o, evaluate(new, Facts(), rules, at).to_json(trace=False)  # type: ignore[arg-type]

    async def seed() -> None:
        async with temp_db(db) as sessions:
            o, compact = at_intake(1, "6800.00", EXAMPLE)
            await store_order(sessions, o, now=at, decisions=compact, rules_version=EXAMPLE.version)
            o, compact = at_intake(2, "6500.00", old)
            await store_order(sessions, o, now=at, decisions=compact, rules_version=old.version)
            o, compact = at_intake(3, "6500.00", old)
            await store_order(sessions, o, now=at, decisions=compact, rules_version="f" * 64)  # never recorded
            await RulesRepo(sessions).record_version(version=rules_hash(old_text), text=old_text,
                                                     source_path="/srv/rules.yaml", loaded_by="h:1", now=at)

    asyncio.run(seed())
    current = runner.invoke(app, ["explain", "tmall:E000001", "--stored", "-l", "en"])
    assert current.exit_code == 0, current.output
    assert "order-over-5000 — matched: order.amount > 5000  (read: order.amount = 6800.00)" in current.output
    assert "vip — not matched" in current.output and "keep only the outcome" not in current.output

    past = runner.invoke(app, ["explain", "tmall:E000002", "--stored", "-l", "en"])
    assert past.exit_code == 0, past.output
    assert "order-over-5000 — matched: order.amount > 6000" in past.output  # the stored version, not the file's
    assert f"(rules version {old.version[:12]})" in past.output

    lost = runner.invoke(app, ["explain", "tmall:E000003", "--stored", "-l", "en"])
    assert lost.exit_code == 0, lost.output
    assert "keep only the outcome" in lost.output and "Approvals needed: level 1 · manager of 华东 (order-over-5000)" in lost.output
    assert "— matched" not in lost.output  # no guessed trace


def test_check_warns_when_the_holidays_run_out(tmp_path: Path) -> None:
    """A file whose calendar keeps only its own list (no official data) ending in 2020: always past by now."""
    old = tmp_path / "old.yaml"
    old.write_text("calendars:\n  default:\n    official: none\n    holidays: [2020-10-01]\n", encoding="utf-8")
    result = runner.invoke(app, ["check", str(old), "-l", "en"])
    assert result.exit_code == 0, result.output  # a warning, not an error
    assert "warning: " in result.output and "calendar 'default' end with 2020" in result.output
    assert "calendars.default.holidays" in result.output
    far = tmp_path / "far.yaml"
    far.write_text("calendars:\n  default:\n    official: none\n    holidays: [2999-10-01]\n", encoding="utf-8")
    assert "calendar 'default'" not in runner.invoke(app, ["check", str(far), "-l", "en"]).output
    none = tmp_path / "none.yaml"  # no holidays at all, by choice: nothing to run out
    none.write_text("calendars:\n  default:\n    official: none\n", encoding="utf-8")
    assert "calendar 'default'" not in runner.invoke(app, ["check", str(none), "-l", "en"]).output


def test_check_warns_when_a_library_category_is_missing(tmp_path: Path) -> None:
    """A merchant's file with only some of the bundled library's categories is valid, with a warning naming the
    missing ids; the bundled example has them all (no such warning)."""
    few = tmp_path / "few.yaml"
    few.write_text(edited("    stock_shortage:\n      name: {zh: 库存不足, en: Stock shortage}",
                          "    stock_shortage_old:\n      name: {zh: 库存不足, en: Stock shortage}")
                   .replace("    missing_docs:", "    docs_missing:"), encoding="utf-8")
    result = runner.invoke(app, ["check", str(few), "-l", "en"])
    assert result.exit_code == 0, result.output  # a warning, not an error
    assert "warning: " in result.output and "lacks categories of the bundled library: stock_shortage, missing_docs." \
        in result.output
    zh = runner.invoke(app, ["check", str(few)])
    assert zh.exit_code == 0 and "警告：" in zh.output and "缺少内置分类库的分类：stock_shortage, missing_docs" in zh.output
    bundled = runner.invoke(app, ["check", str(EXAMPLE_PATH), "-l", "en"])
    assert bundled.exit_code == 0 and "bundled library" not in bundled.output


def test_explain_shows_the_carrier_rows_considered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "orderhub.db"
    monkeypatch.setenv("ORDERHUB_DATABASE_URL", f"sqlite:///{db}")
    now = datetime.now(UTC)

    async def seed() -> int:
        async with temp_db(db) as sessions:
            heavy = order(id=1, city="杭州", qty=4, attributes={"weight_kg": 10, "width_cm": 280},
                          created=now - timedelta(days=1), entered=now - timedelta(days=1))
            return await store_order(sessions, heavy, now=now)

    oid = asyncio.run(seed())
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(EXAMPLE_TEXT + "\ncarriers:\n  by_goods:\n"
                          "    - {id: motors, when: {skus: ['MOTOR-*']}, primary: kuaidi100}\n"
                          "    - {id: heavy, when: {min_weight_kg: 30}, primary: deppon, backup: sf}\n",
                          encoding="utf-8")
    assert runner.invoke(app, ["check", str(rules_file)]).exit_code == 0
    out = runner.invoke(app, ["explain", str(oid), "--rules", str(rules_file), "-l", "en"])
    assert out.exit_code == 0, out.output
    assert "[carrier]" in out.output and "weight_kg 40" in out.output
    assert "✗ by_goods:motors" in out.output and "✓ by_goods:heavy → deppon/sf" in out.output
    assert "· default → sf/deppon" in out.output
