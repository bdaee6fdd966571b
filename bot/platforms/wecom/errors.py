"""wechatpy / requests errors → the neutral `RetryableSendError` / `PermanentSendError`, with secrets scrubbed.

The access token travels in the query string (`?access_token=…`) and the app secret in gettoken's
(`?corpsecret=…`), so a requests exception or a urllib3 debug log line may carry either: every message we raise
is scrubbed, the original exception is not chained, and a log filter rewrites such records.
"""

from __future__ import annotations

import logging
import re

import requests
from wechatpy.exceptions import WeChatClientException

from handlers.chat import PermanentSendError, RetryableSendError, SendError

REDACTED = "<redacted>"
_QUERY_SECRET = re.compile(r"(access_token|corpsecret)=[^&\s'\")]*", re.IGNORECASE)

# WeCom global error codes (https://developer.work.weixin.qq.com/document/path/90313)
TOKEN_INVALID = {40014, 42001}  # invalid / expired access_token: fetch a new one and retry once
RETRYABLE = {-1, 45009, 45033}  # system busy; API rate limit; too many concurrent calls
RATE_LIMITED_RETRY_S = 1.0  # WeCom gives no retry_after; a short pause before the notifier's own backoff


def scrub(text: str, *secrets: str) -> str:
    out = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    for secret in secrets:
        if secret and len(secret) >= 6:
            out = out.replace(secret, REDACTED)
    return out


def translate(exc: Exception, what: str, *secrets: str) -> SendError:
    """Classify; the caller raises the result `from None` (the original may carry the token in its URL)."""
    if isinstance(exc, WeChatClientException):
        if exc.errcode is None:  # an HTTP status error from raise_for_status()
            status = exc.response.status_code if exc.response is not None else 0
            message = scrub(f"wecom {what} failed: HTTP {status}", *secrets)
            return RetryableSendError(message) if status >= 500 or status in (0, 429) else PermanentSendError(message)
        message = scrub(f"wecom {what} failed: errcode {exc.errcode}: {exc.errmsg}", *secrets)
        if exc.errcode in RETRYABLE:
            return RetryableSendError(message, retry_after=RATE_LIMITED_RETRY_S if exc.errcode != -1 else None)
        # 81013 / 60111 user not found, 40003 invalid userid, 301002 no permission, 40001 bad secret, …: a retry of
        # the same request cannot succeed.
        return PermanentSendError(message)
    message = scrub(f"wecom {what} failed: {type(exc).__name__}: {exc}", *secrets)
    if isinstance(exc, (requests.Timeout, requests.ConnectionError)):
        # A timeout is ambiguous (WeCom may have delivered); the outbox's dedup key bounds a repeat to one chat.
        return RetryableSendError(message)
    if isinstance(exc, requests.RequestException):
        return RetryableSendError(message)
    return PermanentSendError(message)


class RedactSecrets(logging.Filter):
    """urllib3 logs request lines (with the query string) at DEBUG; wechatpy may log URLs too."""

    def __init__(self, *secrets: str) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message, *self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_LOGGERS = ("urllib3.connectionpool", "requests", "wechatpy", "wechatpy.client.base")


def install_log_redaction(*secrets: str) -> None:
    """Logger filters do not apply to records propagating from child loggers: each emitting logger gets one."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) and f.secrets == secrets for f in logger.filters):
            logger.addFilter(RedactSecrets(*secrets))
