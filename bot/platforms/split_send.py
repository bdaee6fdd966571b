"""Sending the later parts of a message that had to be split (Telegram's 4,096 characters, WeCom's 2,048 bytes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from handlers.chat import RetryableSendError

T = TypeVar("T")
CONTINUATION_TRIES = 5  # per later part
CONTINUATION_MAX_WAIT_S = 30.0  # a longer ban goes back to the caller (the notifier reschedules the row)


async def send_later_part(send: Callable[[], Awaitable[T]], sleep: Callable[[float], Awaitable[None]]) -> T:
    """The earlier parts are out: raising now would make the caller resend them all, so short waits (a rate limit's
    retry_after, 5xx, timeouts) are sat out here, a few times, first."""
    for attempt in range(CONTINUATION_TRIES):
        try:
            return await send()
        except RetryableSendError as exc:
            wait = exc.retry_after if exc.retry_after is not None else 0.5 * 2**attempt
            if attempt == CONTINUATION_TRIES - 1 or wait > CONTINUATION_MAX_WAIT_S:
                raise
            await sleep(wait)
    raise AssertionError("unreachable")
