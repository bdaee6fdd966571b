"""The SMTP sender and its settings: URL forms, error classes, and the password kept out of every message."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.wiring.chat import build_chat_core
from bot.adapters.mail import SmtpMailSender, mail_sender_from, parse_smtp_url
from bot.settings import Settings
from handlers.chat import PermanentSendError, RetryableSendError
from tests.standins.smtp import SmtpStandIn, free_port

SECRET = "Pa55%2Fw0rd-s3cret"  # percent-encoded in the URL ...
PLAIN = "Pa55/w0rd-s3cret"  # ... and as the server would see it


def test_settings_read_smtp_url_and_sender(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Settings(_env_file=None).smtp_url is None
    assert mail_sender_from(Settings(_env_file=None)) is None  # no SMTP: no e-mail
    monkeypatch.setenv("ORDERHUB_SMTP_URL", f"smtp://bot@example.com:{SECRET}@mail.example.com:587")
    monkeypatch.setenv("ORDERHUB_MAIL_FROM", "OrderHub <hub@example.com>")
    settings = Settings(_env_file=None)
    assert settings.mail_from == "OrderHub <hub@example.com>"
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
    sender = mail_sender_from(settings)
    assert sender is not None and sender.mail_from == "OrderHub <hub@example.com>"
    assert (sender.target.host, sender.target.port, sender.target.implicit_tls) == ("mail.example.com", 587, False)
    assert (sender.target.username, sender.target.password) == ("bot@example.com", PLAIN)
    assert PLAIN not in repr(sender.target) and PLAIN not in str(sender.target)


def test_url_forms() -> None:
    assert parse_smtp_url("smtps://u:p@mx.example.com").port == 465
    assert parse_smtp_url("smtps://u:p@mx.example.com").implicit_tls
    plain = parse_smtp_url("smtp://127.0.0.1:1025")
    assert (plain.host, plain.port, plain.username, plain.password) == ("127.0.0.1", 1025, None, None)
    assert parse_smtp_url("smtp://mx.example.com").port == 25
    for bad in (f"http://u:{SECRET}@mx", f"smtp://u:{SECRET}@", f"smtp://u:{SECRET}@mx:port"):
        with pytest.raises(ValueError) as info:
            parse_smtp_url(bad)
        assert SECRET not in str(info.value) and PLAIN not in str(info.value)


async def test_sends_utf8_plain_text(smtp_server: SmtpStandIn) -> None:
    await SmtpMailSender(smtp_server.url, "OrderHub <hub@localhost>").send("a@example.com", "【OrderHub】超时", "正文\n")
    [mail] = smtp_server.messages
    assert (mail["From"], mail["To"], mail["Subject"]) == ("OrderHub <hub@localhost>", "a@example.com", "【OrderHub】超时")
    assert mail.get_content().replace("\r\n", "\n") == "正文\n" and mail["Message-ID"] and mail["Date"]


async def test_5xx_is_permanent_4xx_retryable(smtp_server: SmtpStandIn) -> None:
    smtp_server.refuse["gone@example.com"] = "550 5.1.1 unknown mailbox"
    smtp_server.refuse["busy@example.com"] = "451 4.3.0 try again later"
    sender = SmtpMailSender(smtp_server.url, "hub@localhost")
    with pytest.raises(PermanentSendError, match="550 5.1.1 unknown mailbox"):
        await sender.send("gone@example.com", "s", "b")
    with pytest.raises(RetryableSendError, match="451"):
        await sender.send("busy@example.com", "s", "b")


async def test_connection_refused_is_retryable_and_never_shows_the_password(caplog: pytest.LogCaptureFixture
                                                                             ) -> None:
    sender = SmtpMailSender(f"smtp://bot:{SECRET}@127.0.0.1:{free_port()}", "hub@localhost", timeout=2)
    with pytest.raises(RetryableSendError) as info:
        await sender.send("a@example.com", "s", "b")
    assert "127.0.0.1" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    for text in (str(info.value), repr(info.value), caplog.text):
        assert SECRET not in text and PLAIN not in text


async def test_credentials_need_tls_and_the_error_hides_them(smtp_server: SmtpStandIn) -> None:
    """The stand-in offers no STARTTLS: a password must not go in clear text, so nothing is sent."""
    sender = SmtpMailSender(f"smtp://bot:{SECRET}@127.0.0.1:{smtp_server.port}", "hub@localhost")
    with pytest.raises(PermanentSendError) as info:
        await sender.send("a@example.com", "s", "b")
    assert "STARTTLS" in str(info.value) and smtp_server.messages == []
    assert SECRET not in str(info.value) and PLAIN not in str(info.value)


async def test_chat_core_hands_the_sender_to_the_notifier(db, redis) -> None:
    sender = mail_sender_from(SimpleNamespace(smtp_url=SimpleNamespace(get_secret_value=lambda: "smtp://127.0.0.1:1"),
                                              mail_from="hub@localhost"))
    core = build_chat_core(db, redis, {}, SimpleNamespace(now=lambda: None), lambda: None, token_key=b"k",
                           mailer=sender)
    assert core.notifier.mailer is sender
    assert build_chat_core(db, redis, {}, SimpleNamespace(now=lambda: None), lambda: None,
                           token_key=b"k").notifier.mailer is None
