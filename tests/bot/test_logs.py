"""Logs (issue 9 item 8, issue 11 "Logs"): one redaction for every logger, level and JSON format from Settings,
quiet by default; a DEBUG run of `serve` with Telegram in webhook mode writes no secret and no full phone number."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot import logs
from bot.demo.day import free_port
from bot.settings import BUNDLED_RULES, Settings
from handlers.intake import describe_error
from tests.conftest import SECRETS
from tests.factories import order_json, signed
from tests.standins.telegram_api import running_standin

FULL_PHONE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


@pytest.fixture
def configured() -> object:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_every_logger_is_redacted_in_one_place(configured: object) -> None:
    out = io.StringIO()
    settings = Settings(_env_file=None, telegram_token=SecretStr("123456:ABCdefSecretTokenPart"),
                        telegram_webhook_secret=SecretStr("hook-secret-xyz"), webhook_secrets="generic=gen-secret-1",
                        smtp_url=SecretStr("smtp://mailer:mail-pass-9@127.0.0.1:1025"), log_level="DEBUG")
    logs.configure_logging(settings, stream=out)
    # a library's child logger (no per-logger filter), a traceback, and an f-string message
    logging.getLogger("telegram.ext.Application.deep").debug("setWebhook secret_token=hook-secret-xyz")
    logging.getLogger("httpx").info("POST https://api.telegram.org/bot123456:ABCdefSecretTokenPart/getMe")
    logging.getLogger("anything").warning("customer 13800138000 said %s", "call +86 139-1234-5678? no: 13912345678")
    try:
        raise ValueError("smtp://mailer:mail-pass-9@127.0.0.1 refused gen-secret-1")
    except ValueError:
        logging.getLogger("orderhub.mail").exception("mail failed")
    text = out.getvalue()
    for secret in ("ABCdefSecretTokenPart", "hook-secret-xyz", "gen-secret-1", "mail-pass-9"):
        assert secret not in text
    assert not FULL_PHONE.search(text), text
    assert "138****8000" in text and "[redacted]" in text


def test_json_format_and_quiet_libraries(configured: object) -> None:
    out = io.StringIO()
    logs.configure_logging(Settings(_env_file=None, log_format="json"), stream=out)
    logging.getLogger("apscheduler.executors.default").info("Running job ... (every 2 s)")
    logging.getLogger("orderhub.worker").info("worker started")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["logger"], r["level"], r["message"]) for r in lines] == [("orderhub.worker", "INFO", "worker started")]


def test_a_database_error_is_described_without_the_rows_values() -> None:
    from sqlalchemy.exc import IntegrityError

    orig = Exception('duplicate key value violates unique constraint "uq_x"\nDETAIL: Key (phone)=(13800138000)')
    exc = IntegrityError("INSERT INTO orders (name, phone) VALUES ($1, $2)", ("王女士", "13800138000"), orig)
    described = describe_error(exc)
    assert "13800138000" not in described and "王女士" not in described and "INSERT" not in described
    assert described.startswith("IntegrityError") and "violates unique constraint" in described
    data_error = Exception("invalid input for query argument $3: '13800138000' (value too long)")
    assert "13800138000" not in describe_error(IntegrityError("x", {}, data_error))


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_debug_logs_of_a_full_run_hold_no_secret_and_no_full_phone(database_url: str, redis_url: str,
                                                                   tmp_path: Path, db: object) -> None:
    port = free_port()
    log_file = tmp_path / "serve.log"
    hook_secret = "tg-webhook-secret-abc123"
    with running_standin() as api:
        env = {**os.environ, "ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_REDIS_URL": redis_url,
               "ORDERHUB_RULES": str(BUNDLED_RULES), "ORDERHUB_WEBHOOK_SECRETS": f"generic={SECRETS['generic']}",
               "ORDERHUB_DATA_DIR": str(tmp_path / "data"), "ORDERHUB_LOG_LEVEL": "DEBUG",
               "ORDERHUB_TELEGRAM_TOKEN": api.token, "ORDERHUB_TELEGRAM_API_URL": api.url,
               "ORDERHUB_PUBLIC_URL": "https://orderhub.test", "ORDERHUB_TELEGRAM_WEBHOOK_SECRET": hook_secret,
               "ORDERHUB_DIGEST_AT": "off", "ORDERHUB_INTAKE_MAX_ATTEMPTS": "1"}
        with log_file.open("wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", str(port)], env=env,
                                    cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
            try:
                base = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline:
                    try:
                        if httpx.get(f"{base}/healthz", timeout=1).status_code == 200 and api.webhook:
                            break
                    except httpx.HTTPError:
                        pass
                    assert proc.poll() is None, log_file.read_text(errors="replace")[-3000:]
                    time.sleep(0.2)
                assert api.webhook and api.webhook["secret_token"]  # setWebhook was called, with its secret
                sent_secret = api.webhook["secret_token"]
                for i in range(5):
                    body, headers = signed(SECRETS["generic"], order_json(i, amount=Decimal("9100.00")))
                    assert httpx.post(f"{base}/webhooks/orders/generic", content=body, headers=headers).status_code == 202
                refused = order_json(99) | {"notes": "x" * 3000}
                body, headers = signed(SECRETS["generic"], refused)
                assert httpx.post(f"{base}/webhooks/orders/generic", content=body, headers=headers).status_code == 422
                time.sleep(3)  # the worker stores them, the scheduler's jobs run (APScheduler logs at DEBUG)
            finally:
                proc.terminate()
                proc.wait(15)
    text = log_file.read_text(errors="replace")
    assert "DEBUG" in text and "setWebhook" in text, text[-2000:]  # it really ran at DEBUG, through PTB
    for secret in (api.token, api.token.partition(":")[2], hook_secret, sent_secret, SECRETS["generic"]):
        assert secret not in text, secret
    assert not FULL_PHONE.search(text), FULL_PHONE.search(text)
