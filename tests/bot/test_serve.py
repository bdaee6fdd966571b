"""`orderhub serve` as a real process: intake end to end, the rules hot reload of issue 3, and the Telegram bot
(polling mode, against the Bot API stand-in) of issue 4.

Change the rules file while serve runs → the next order uses the new rule within 5 s; write a broken file → orders
keep flowing on the last good version and an admin alert is recorded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from bot.cli.main import app as cli_app
from bot.settings import BUNDLED_RULES
from storage.models import OrderRow, OutboxRow
from tests.bot.process_support import running_orderhub
from tests.conftest import SECRETS
from tests.factories import order_json, signed
from tests.standins.telegram_api import parse_html, running_standin

pytestmark = pytest.mark.slow


def sync_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url


@contextlib.contextmanager
def running_serve(database_url: str, redis_url: str, tmp_path: Path, **extra_env: str
                  ) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """`orderhub serve` in a subprocess on the session backends; yields (base URL, its rules file, its env)."""
    rules = tmp_path / "rules.yaml"
    shutil.copy(BUNDLED_RULES, rules)
    env = {**os.environ, "ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_REDIS_URL": redis_url,
           "ORDERHUB_RULES": str(rules), "ORDERHUB_WEBHOOK_SECRETS": f"generic={SECRETS['generic']}",
           "ORDERHUB_DATA_DIR": str(tmp_path / "data")}
    for var in ("ORDERHUB_TELEGRAM_TOKEN", "ORDERHUB_WECOM_CORP_ID", "ORDERHUB_PUBLIC_URL"):
        env.pop(var, None)
    env.update(extra_env)
    # a loaded 2-core CI machine can take a while to import and migrate
    with running_orderhub(["serve"], env, tmp_path, start_timeout=90) as (_proc, base):
        yield base, rules, env


@pytest.fixture
def serve(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with running_serve(database_url, redis_url, tmp_path) as (base, rules, _env):
        yield base, rules


def post(base: str, order: dict) -> None:
    body, headers = signed(SECRETS["generic"], order)
    assert httpx.post(f"{base}/webhooks/orders/generic", content=body, headers=headers).status_code == 202


def stage_of(database_url: str, external_id: str, timeout: float = 10) -> str:
    engine = create_engine(sync_url(database_url))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                stage = conn.execute(select(OrderRow.stage).where(OrderRow.external_id == external_id)).scalar()
            if stage:
                return stage
            time.sleep(0.1)
        raise AssertionError(f"order {external_id} was not stored within {timeout} s")
    finally:
        engine.dispose()


def test_rules_change_applies_within_5s_and_a_broken_file_keeps_the_last_good(
    serve: tuple[str, Path], database_url: str, db: object
) -> None:
    base, rules = serve
    post(base, order_json(1, amount=Decimal("6000.00"), city="杭州"))
    assert stage_of(database_url, "G00000001") == "pending_confirm"

    rules.write_text(rules.read_text(encoding="utf-8").replace(
        "when: {field: order.amount, op: gt, value: 5000}", "when: {field: order.amount, op: gt, value: 8000}"),
        encoding="utf-8")
    changed_at = time.monotonic()
    i = 100
    while True:
        i += 1
        post(base, order_json(i, amount=Decimal("6000.00"), city="杭州"))
        if stage_of(database_url, f"G{i:08d}") == "designing":
            break
        assert time.monotonic() - changed_at < 5, "the new rule was not used within 5 s"
        time.sleep(0.2)

    rules.write_text("approvals: [this is: not valid", encoding="utf-8")
    time.sleep(2.5)  # a reload period and the editor-settling delay
    post(base, order_json(999, amount=Decimal("6000.00"), city="杭州"))
    assert stage_of(database_url, "G00000999") == "designing"  # still the last good version (threshold 8000)
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        alerts = conn.execute(select(OutboxRow).where(OutboxRow.kind == "rules_invalid")).all()
    engine.dispose()
    assert len(alerts) == 1
    assert alerts[0].recipient_role == "admin"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_serve_runs_the_telegram_bot_approval_round_trip(database_url: str, redis_url: str, tmp_path: Path,
                                                        db: object) -> None:
    """serve in polling mode against the stand-in: the card goes out, a press comes back through getUpdates."""
    cli_env = {"ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_REDIS_URL": redis_url,
               "ORDERHUB_DATA_DIR": str(tmp_path / "data")}
    runner = CliRunner()
    for args in (["users", "add", "南区经理", "--role", "manager", "--region", "华南"],
                 ["users", "link", "南区经理", "--telegram", "202"]):
        result = runner.invoke(cli_app, args, env=cli_env)
        assert result.exit_code == 0, result.output
    with running_standin() as api, running_serve(database_url, redis_url, tmp_path, ORDERHUB_TELEGRAM_TOKEN=api.token,
                                                 ORDERHUB_TELEGRAM_API_URL=api.url,
                                                 ORDERHUB_DIGEST_AT="off") as (base, _rules, _env):
        wait_for("command menu registered", lambda: api.commands)
        post(base, order_json(7, amount=Decimal("9100.00"), city="广州"))
        card = wait_for("approval card sent", lambda: api.ok_calls("sendMessage"))[0]
        assert card["chat_id"] == "202" and "G00000007" in parse_html(card["text"])
        [(_chat, message_id)] = list(api.messages)
        approve = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        api.push_update({"callback_query": {
            "id": "cbq-1", "from": {"id": 202, "is_bot": False, "first_name": "m"}, "chat_instance": "ci",
            "data": approve, "message": {"message_id": message_id, "date": 1731290000, "text": "card",
                                         "chat": {"id": 202, "type": "private", "first_name": "m"}}}})
        edit = wait_for("card edited with the outcome", lambda: api.ok_calls("editMessageText"))[0]
        assert "已批准" in parse_html(edit["text"])
        assert stage_of(database_url, "G00000007") == "designing"
        assert api.pending_updates() == []  # confirmed to Telegram once handled
