"""Logging for every OrderHub process, set up in one place: level and format from Settings, third-party chatter
kept quiet, and one redaction pass over every line any logger writes.

Redaction sits in the handler's formatter, not in per-logger filters: a record from any logger (python-telegram-bot
at DEBUG prints setWebhook's secret_token; a driver error may repeat a row's phone number), including its traceback,
is scrubbed on its way out. Secrets are the configured ones (registered at start-up); personal data is mainland
mobile numbers, masked to their first 3 and last 4 digits.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?(1[3-9][0-9])([0-9]{4})([0-9]{4})(?![0-9])")
_secrets: set[str] = set()
MIN_SECRET = 6  # shorter values would scrub ordinary words

# Libraries that log routine work at INFO (APScheduler: two lines per job run, every 2 s) or every request at
# DEBUG: shown only when OrderHub's own level is DEBUG.
QUIET = ("apscheduler", "httpx", "httpcore", "telegram", "urllib3", "requests", "wechatpy", "asyncio", "aiosqlite",
         "uvicorn.access", "sqlalchemy", "multipart", "hpack")


def register_secret(*values: str | None) -> None:
    """Values no log line may contain (tokens, webhook secrets, keys, URLs with passwords)."""
    for value in values:
        if value and len(value) >= MIN_SECRET:
            _secrets.add(value)
            if ":" in value:  # a Telegram bot token's secret half appears on its own in some messages
                tail = value.rpartition(":")[2]
                if len(tail) >= MIN_SECRET:
                    _secrets.add(tail)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


class RedactingFormatter(logging.Formatter):
    """`text` or `json` lines, scrubbed after formatting (so the message, its arguments and the traceback are)."""

    def __init__(self, fmt: str = "text") -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        if not self.json:
            return redact(super().format(record))
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(entry, default=str).decode())


def settings_secrets(settings: Any) -> list[str]:
    """Every secret value in Settings."""
    values: list[str] = []
    for name in ("token_key", "smtp_url", "telegram_token", "telegram_webhook_secret", "wecom_secret",
                 "wecom_token", "wecom_aes_key"):
        value = getattr(settings, name, None)
        if value is not None:
            values.append(value.get_secret_value())
    values += [v.get_secret_value() for v in getattr(settings, "webhook_secrets", {}).values()]
    smtp = getattr(settings, "smtp_url", None)
    if smtp is not None:  # the password on its own, too
        match = re.match(r"^[a-z]+://[^:/@]*:([^@]+)@", smtp.get_secret_value())
        if match:
            values.append(match.group(1))
    return values


def configure_logging(settings: Any, stream: Any = None) -> None:
    """Root handler with the redacting formatter; idempotent (a second call replaces the first's handler)."""
    register_secret(*settings_secrets(settings))
    level = logging.getLevelName(str(getattr(settings, "log_level", "INFO")).upper())
    level = level if isinstance(level, int) else logging.INFO
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter(getattr(settings, "log_format", "text")))
    handler._orderhub = True  # type: ignore[attr-defined]  # noqa: SLF001 - ours, to replace on reconfiguring
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_orderhub", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn's own handlers are not used: its lines come through ours
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.error").setLevel(max(level, logging.WARNING))
