"""Direct replies wait out a flood limit and never raise on a refused chat."""

from __future__ import annotations

from handlers.chat import Capabilities, Outgoing, PermanentSendError, RetryableSendError
from handlers.replies import send, toast
from tests.chatfake import FakeChannel


async def test_reply_waits_out_retry_after_then_sends() -> None:
    channel = FakeChannel()
    channel.script = [RetryableSendError("flood", retry_after=0.01), RetryableSendError("502")]
    ref = await send(channel, Outgoing(chat_id="1", text="hi"))
    assert ref is not None and [s.text for s in channel.sent] == ["hi"]


async def test_reply_gives_up_quietly() -> None:
    channel = FakeChannel()
    channel.script = [PermanentSendError("blocked")]
    assert await send(channel, Outgoing(chat_id="1", text="hi")) is None
    channel.script = [RetryableSendError("flood", retry_after=3600)]  # far too long to hold a person waiting
    assert await send(channel, Outgoing(chat_id="1", text="hi")) is None
    await toast(channel, "cb", "ok")
    assert channel.answers[-1].text == "ok"


async def test_an_empty_toast_goes_only_where_presses_must_be_answered() -> None:
    """Telegram's client spins until a press is answered, even emptily; a platform without toasts (WeCom) would
    show an empty answer as an empty message, so it is not sent."""
    with_toasts, without = FakeChannel("telegram"), FakeChannel("wecom", capabilities=Capabilities(toasts=False))
    for channel in (with_toasts, without):
        await toast(channel, "cb-1", "")
        await toast(channel, "cb-2", "已批准")
    assert [a.text for a in with_toasts.answers] == ["", "已批准"]
    assert [a.text for a in without.answers] == ["已批准"]
