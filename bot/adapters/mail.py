"""`handlers.mail.MailSender` over SMTP with the standard library (smtplib in a worker thread).

`ORDERHUB_SMTP_URL` says where and how: `smtp://user:pass@host:587` (STARTTLS: used when offered, required with
credentials, so a password never goes in clear text), `smtps://user:pass@host:465` (implicit TLS),
`smtp://127.0.0.1:1025` (plain, for tests and local relays). Errors are classified for the notifier: connection
failures, timeouts and 4xx replies are retryable, 5xx replies permanent. The password never appears in an error message (nor, so, in a log).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import unquote, urlsplit

from handlers.chat import PermanentSendError, RetryableSendError, SendError

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:  # what errors name: never the credentials
        return f"SMTP {self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    """`smtp[s]://[user[:pass]@]host[:port]`; a malformed URL fails at start-up, without echoing it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("ORDERHUB_SMTP_URL must look like smtp://user:pass@host:587 or smtps://user:pass@host:465")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError("ORDERHUB_SMTP_URL has an invalid port") from None
    return SmtpTarget(parts.hostname, port, parts.scheme == "smtps",
                      unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password else None)


def classify(target: SmtpTarget, exc: BaseException) -> SendError:
    """A smtplib/socket error as the notifier's retryable/permanent error, its text free of the password."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = list(exc.recipients.values())
        code, msg = replies[0] if replies else (550, b"recipient refused")
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, msg = exc.smtp_code, exc.smtp_error
    elif isinstance(exc, smtplib.SMTPException) and not isinstance(exc, smtplib.SMTPServerDisconnected):
        # SMTPNotSupportedError (no STARTTLS, no AUTH) and the like: configuration, not weather
        return PermanentSendError(_scrub(target, f"{target}: {type(exc).__name__}: {exc}"))
    else:  # refused, reset, timed out, hung up (smtplib's errors are OSErrors too, hence the order)
        return RetryableSendError(_scrub(target, f"{target}: {type(exc).__name__}: {exc}"))
    text = msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
    error = _scrub(target, f"{target}: {code} {text}")
    return PermanentSendError(error) if 500 <= int(code) < 600 else RetryableSendError(error)


def _scrub(target: SmtpTarget, text: str) -> str:
    if target.password:
        text = text.replace(target.password, "***")
    return text


class SmtpMailSender:
    """Sends one plain-text UTF-8 message per call; a fresh connection each time (escalations are rare)."""

    def __init__(self, url: str, mail_from: str, *, timeout: float = 15.0) -> None:
        self.target = parse_smtp_url(url)
        self.mail_from = mail_from
        self.timeout = timeout

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.mail_from, to, subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="orderhub")
        message.set_content(body)
        try:
            await asyncio.to_thread(self._deliver, message)
        except (smtplib.SMTPException, OSError) as exc:
            raise classify(self.target, exc) from None  # no chained traceback carrying smtplib's state

    def _deliver(self, message: EmailMessage) -> None:
        t = self.target
        smtp: smtplib.SMTP
        if t.implicit_tls:
            smtp = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
        with smtp:
            smtp.ehlo()
            if not t.implicit_tls and (t.username or smtp.has_extn("starttls")):
                smtp.starttls(context=ssl.create_default_context())  # credentials never go in clear text
                smtp.ehlo()
            if t.username:
                smtp.login(t.username, t.password or "")
            smtp.send_message(message)


def mail_sender_from(settings: Any) -> SmtpMailSender | None:
    """The sender Settings configure, or None when ORDERHUB_SMTP_URL is unset (then no e-mail is sent)."""
    url = getattr(settings, "smtp_url", None)
    if url is None:
        return None
    return SmtpMailSender(url.get_secret_value(), settings.mail_from)
