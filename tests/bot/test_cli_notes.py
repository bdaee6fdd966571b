"""`orderhub notes relabel ID CATEGORY [--as NAME]` and `orderhub notes export-examples`: the one correction use
case from a terminal (audited, learned), and the learned examples exported with their versions."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import select

from bot.wiring.runtime import Runtime
from storage.models import AuditRow, ExceptionNoteRow
from tests.bot.test_cli_users import cli, env  # noqa: F401 - the fixture
from tests.factories import order_json
from tests.webhooks.test_api import add_user, seed


async def test_relabel_and_export(env: dict[str, str], client: httpx.AsyncClient, runtime: Runtime,  # noqa: F811
                                  tmp_path: Path) -> None:
    admin = {"Authorization": f"Bearer {await add_user(runtime, 'ops', 'admin')}"}
    await add_user(runtime, "south", "manager", ["华南"])
    await seed(client, runtime, [order_json(1, amount=Decimal("1000.00"), city="杭州")])
    resp = await client.post("/api/orders/generic:G00000001/notes", json={"text": "安装后发现窗帘短了一截"}, headers=admin)
    note_id = resp.json()["id"]

    refused = await cli(env, "notes", "relabel", str(note_id), "stock_shortage", "--as", "south")
    assert refused.exit_code == 1 and "forbidden" in refused.output
    unknown = await cli(env, "notes", "relabel", str(note_id), "flying")
    assert unknown.exit_code == 1 and "unknown_category" in unknown.output
    ghost = await cli(env, "notes", "relabel", str(note_id), "stock_shortage", "--as", "ghost")
    assert ghost.exit_code == 2 and "ghost" in ghost.output

    done = await cli(env, "notes", "relabel", str(note_id), "measurement_error")
    assert done.exit_code == 0, done.output
    assert "install_issue → measurement_error" in done.output
    async with runtime.db.connect() as conn:
        cat = (await conn.execute(select(ExceptionNoteRow.__table__.c.category))).scalar_one()
        audit = (await conn.execute(select(AuditRow.__table__).where(AuditRow.__table__.c.action == "note_relabel"))
                 ).one()
    assert cat == "measurement_error" and (audit.actor, audit.detail["via"]) == ("cli", "cli")

    again = await client.post("/api/orders/generic:G00000001/notes", json={"text": "安装后窗帘短了一截"}, headers=admin)
    assert again.json()["category"] == "measurement_error"  # learned from the terminal's correction

    out = tmp_path / "examples.json"
    exported = await cli(env, "notes", "export-examples", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["rules_version"] == runtime.current_rules().version and data["library_version"]
    assert [(e["text"], e["category"], e["previous"], e["corrected_by"]) for e in data["examples"]] == [
        ("安装后发现窗帘短了一截", "measurement_error", "install_issue", "cli")]
    printed = await cli(env, "notes", "export-examples")
    assert json.loads(printed.output)["version"] == data["version"]  # the same set, the same version
