"""Answering the person in front of us: toasts and direct replies, with the platform's flood limits honoured.

Direct replies are not outbox rows: the person is waiting, and if the platform is down the reply is moot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from handlers.chat import Card, ChatChannel, ChatRef, Outgoing, PermanentSendError, RetryableSendError, SendError

log = logging.getLogger(__name__)
_REPLY_TRIES = 3
_MAX_WAIT_S = 30.0


async def toast(channel: ChatChannel, callback_id: str, text: str, alert: bool = False) -> None:
    """Answer a press. A platform with toasts is always answered (Telegram's client spins until it is); one
    without is answered only when there is something to say (its adapter shows it otherwise: WeCom a short text)."""
    if not channel.capabilities.toasts and not text.strip():
        return
    try:
        await channel.answer(callback_id, text, alert)
    except SendError as exc:  # a lost toast is not worth failing the use case
        log.warning("answer failed: %s", exc)


async def send(channel: ChatChannel, message: Outgoing) -> ChatRef | None:
    """Send once, waiting out a flood limit (`retry_after`) a couple of times; None if it could not go."""
    for attempt in range(_REPLY_TRIES):
        try:
            return await channel.send(message)
        except RetryableSendError as exc:
            wait = exc.retry_after if exc.retry_after is not None else 0.5 * 2**attempt
            if wait > _MAX_WAIT_S:
                break
            await asyncio.sleep(wait)
        except PermanentSendError as exc:
            log.warning("reply to %s refused: %s", message.chat_id, exc)
            return None
    log.warning("reply to %s gave up", message.chat_id)
    return None


async def send_pages(channel: ChatChannel, chat_id: str, pages: Sequence[str]) -> None:
    for page in pages:
        await send(channel, Outgoing(chat_id=chat_id, text=page))


async def send_card(channel: ChatChannel, chat_id: str, card: Card) -> ChatRef | None:
    return await send(channel, Outgoing(chat_id=chat_id, card=card))
