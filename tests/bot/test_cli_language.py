"""One language per installation: `report`, `queue status`, `users list|invite` and `db upgrade` follow
ORDERHUB_LANGUAGE like the chat does; `db upgrade` says what it applied."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.main import app

runner = CliRunner()


@pytest.fixture
def env(database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {"ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_REDIS_URL": redis_url,
            "ORDERHUB_DATA_DIR": str(tmp_path / "data")}


@pytest.mark.parametrize(("lang", "words"), [
    ("zh", {"report": "订单准确率", "queue": "接单队列", "users": "角色", "invite": "邀请码只能使用一次"}),
    ("en", {"report": "order accuracy", "queue": "intake queue", "users": "role", "invite": "the code works once"}),
])
def test_operator_commands_speak_the_configured_language(env: dict[str, str], lang: str, words: dict[str, str],
                                                         db: object) -> None:
    env = {**env, "ORDERHUB_LANGUAGE": lang}
    assert runner.invoke(app, ["users", "add", "王经理", "--role", "manager", "--region", "华东"], env=env).exit_code == 0
    outputs = {
        "report": runner.invoke(app, ["report"], env=env).output,
        "queue": runner.invoke(app, ["queue", "status"], env=env).output,
        "users": runner.invoke(app, ["users", "list"], env=env).output,
        "invite": runner.invoke(app, ["users", "invite", "王经理"], env=env).output,
    }
    for command, word in words.items():
        assert word in outputs[command], (command, outputs[command])
    if lang == "zh":
        assert "经理" in outputs["users"] and "manager" not in outputs["users"]
        assert not re.search(r"\b(minutes|orders|queue)\b", outputs["report"]), outputs["report"]


def test_db_upgrade_says_what_it_applied(tmp_path: Path, redis_url: str) -> None:
    env = {"ORDERHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}", "ORDERHUB_REDIS_URL": redis_url,
           "ORDERHUB_DATA_DIR": str(tmp_path / "data"), "ORDERHUB_LANGUAGE": "en"}
    first = runner.invoke(app, ["db", "upgrade"], env=env)
    assert first.exit_code == 0, first.output
    assert re.search(r"^upgraded to (\d{4}) \(0001 initial schema.*\)$", first.output.strip()), first.output
    head = re.search(r"upgraded to (\d{4})", first.output).group(1)
    again = runner.invoke(app, ["db", "upgrade"], env=env)
    assert again.output.strip() == f"already at {head}"
