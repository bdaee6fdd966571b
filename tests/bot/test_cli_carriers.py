"""`orderhub carriers switch REGION CARRIER --as NAME` and `undo SWITCH_ID --as NAME`: the same use case as the
card's buttons — a new rules version in the file in effect, permission-checked, audited; refusals are one line."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import BUNDLED_RULES
from engine.rules import load_rules
from storage.models import AuditRow, OutboxRow, RuleVersionRow
from tests.bot.test_cli_users import cli, env  # noqa: F401 - the fixture


async def test_switch_and_undo_from_the_cli(env: dict[str, str], db: AsyncEngine, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "rules.yaml"
    original = BUNDLED_RULES.read_text(encoding="utf-8")
    path.write_text(original, encoding="utf-8")
    env = {**env, "ORDERHUB_RULES": str(path), "ORDERHUB_LANGUAGE": "en"}
    for name, region in (("南经理", "华南"), ("东经理", "华东")):
        assert (await cli(env, "users", "add", name, "--role", "manager", "--region", region)).exit_code == 0
    assert (await cli(env, "users", "add", "root", "--role", "admin")).exit_code == 0

    wrong = await cli(env, "carriers", "switch", "华南", "deppon", "--as", "东经理")
    assert wrong.exit_code == 1 and "manager of 华南" in wrong.output and path.read_text(encoding="utf-8") == original
    unknown = await cli(env, "carriers", "switch", "火星", "deppon", "--as", "root")
    assert unknown.exit_code == 1 and "unknown region" in unknown.output
    bad = await cli(env, "carriers", "switch", "华南", "ups", "--as", "南经理")
    assert bad.exit_code == 1 and "unknown carrier" in bad.output
    same = await cli(env, "carriers", "switch", "华南", "sf", "--as", "南经理")
    assert same.exit_code == 1 and "already" in same.output
    nobody = await cli(env, "carriers", "switch", "华南", "deppon", "--as", "nobody")
    assert nobody.exit_code == 2 and "no user named" in nobody.output

    done = await cli(env, "carriers", "switch", "华南", "deppon", "--as", "南经理")
    assert done.exit_code == 0, done.output
    switch_id = re.search(r"orderhub carriers undo (\d+)", done.output).group(1)  # type: ignore[union-attr]
    rules = load_rules(path.read_text(encoding="utf-8"), str(path))
    assert rules.model.carriers.choice("华南").model_dump() == {"primary": "deppon", "backup": "sf"}
    assert rules.version[:12] in done.output
    async with db.connect() as conn:
        loaded_by = (await conn.execute(select(RuleVersionRow.loaded_by).where(
            RuleVersionRow.hash == rules.version))).scalar_one()
        audit = (await conn.execute(select(AuditRow.actor, AuditRow.detail).where(
            AuditRow.action == "carrier.switch"))).one()
        card = (await conn.execute(select(OutboxRow.recipient_user_id, OutboxRow.recipient_role).where(
            OutboxRow.id == int(switch_id)))).one()
    assert "南经理" in loaded_by and audit.actor == "南经理" and audit.detail["source"] == "cli"
    assert tuple(card) == (None, "supply_chain")  # no chat of their own: the Undo card goes to the alert's role

    assert (await cli(env, "carriers", "undo", switch_id, "--as", "东经理")).exit_code == 1
    undone = await cli(env, "carriers", "undo", switch_id, "--as", "南经理")
    assert undone.exit_code == 0, undone.output
    assert load_rules(path.read_text(encoding="utf-8"), str(path)).model.carriers.choice("华南").primary == "sf"
    twice = await cli(env, "carriers", "undo", switch_id, "--as", "南经理")
    assert twice.exit_code == 1 and "undone" in twice.output
    assert (await cli(env, "carriers", "undo", "999", "--as", "南经理")).exit_code == 1
    huge = await cli(env, "carriers", "undo", str(2**63), "--as", "南经理")  # refused by the CLI, never the database
    assert huge.exit_code == 2 and "Traceback" not in huge.output
    assert (await cli(env, "carriers", "switch", "华\x00南", "deppon", "--as", "root")).exit_code == 1


async def test_the_bundled_example_is_never_edited(env: dict[str, str], db: AsyncEngine) -> None:  # noqa: F811
    env = {**env, "ORDERHUB_RULES": str(BUNDLED_RULES)}
    before = BUNDLED_RULES.read_text(encoding="utf-8")
    assert (await cli(env, "users", "add", "root", "--role", "admin")).exit_code == 0
    out = await cli({**env, "ORDERHUB_LANGUAGE": "en"}, "carriers", "switch", "华南", "deppon", "--as", "root")
    assert out.exit_code == 1 and "bundled example" in out.output
    assert BUNDLED_RULES.read_text(encoding="utf-8") == before
