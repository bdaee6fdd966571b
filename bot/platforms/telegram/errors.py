"""python-telegram-bot errors → the neutral `RetryableSendError` / `PermanentSendError`, with the token scrubbed.

PTB puts the token into some messages (`InvalidToken` from `initialize()` quotes it; connection errors may carry
the request URL, which is `<root>/bot<token>/<method>`), so every message we raise is scrubbed, and the PTB
exception is not chained (`from None`): a traceback printed by a caller must not show it either.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from handlers.chat import PermanentSendError, RetryableSendError, SendError

REDACTED = "<telegram-token>"


def scrub(text: str, token: str) -> str:
    """Remove the token (and its secret half, after the colon) from any text."""
    if not token:
        return text
    out = text.replace(token, REDACTED)
    _, _, secret = token.partition(":")
    return out.replace(secret, REDACTED) if len(secret) >= 8 else out


def retry_after_seconds(exc: RetryAfter) -> float:
    """The server's `parameters.retry_after`, exactly. PTB 22 returns int or timedelta (and warns about the int)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def is_not_modified(exc: TelegramError) -> bool:
    # Telegram answers 400 when an edit would leave the message as it is: for us the card already shows the state.
    return isinstance(exc, BadRequest) and "message is not modified" in exc.message.lower()


def translate(exc: TelegramError, what: str, token: str) -> SendError:
    """Classify a PTB error; the caller raises the result `from None`. Order matters: BadRequest and TimedOut are
    subclasses of NetworkError in PTB."""
    detail = scrub(f"{type(exc).__name__}: {exc.message}", token)
    message = f"telegram {what} failed: {detail}"
    if isinstance(exc, RetryAfter):
        return RetryableSendError(message, retry_after=retry_after_seconds(exc))
    if isinstance(exc, TimedOut):
        # Ambiguous: the server may have acted. Retrying is at-least-once; the outbox's dedup key bounds the damage.
        return RetryableSendError(message)
    if isinstance(exc, ChatMigrated):
        # A group became a supergroup: the old chat id is dead for good; the new one is in the message.
        return PermanentSendError(f"{message} (new chat id {exc.new_chat_id})")
    if isinstance(exc, (Forbidden, BadRequest, InvalidToken)):
        # Forbidden: blocked by the user / kicked from the group; BadRequest: chat not found, bad markup... Retrying
        # the same request cannot succeed.
        return PermanentSendError(message)
    if isinstance(exc, NetworkError):
        # PTB raises NetworkError for connection failures, 5xx and a 429 without retry_after.
        return RetryableSendError(message)
    return PermanentSendError(message)


class RedactToken(logging.Filter):
    """httpx logs every request URL at INFO — with the token in it, since Telegram puts the token in the path."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token and (self.token in message or self.token.partition(":")[2] in message):
            record.msg, record.args = scrub(message, self.token), None
        return True


_LOGGERS = ("httpx", "httpcore.http11", "httpcore.connection", "telegram", "telegram.Bot", "telegram.BaseRequest",
            "telegram.HTTPXRequest")
_installed: set[str] = set()


def install_log_redaction(token: str) -> None:
    """Attach the filter to the loggers that may print request URLs. Logger filters do not apply to records that
    propagate from child loggers, so each emitting logger gets its own."""
    if not token or token in _installed:
        return
    _installed.add(token)
    for name in _LOGGERS:
        logging.getLogger(name).addFilter(RedactToken(token))
