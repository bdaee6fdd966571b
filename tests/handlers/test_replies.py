"""Direct replies wait out a flood limit and never raise on a refused chat."""

from __future__ import annotations

from handlers.chat import Outgoing, PermanentSendError, RetryableSendError
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
