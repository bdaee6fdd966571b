"""Receiving Telegram updates: the webhook route, the long-polling loop, and the consumer that feeds the chat core.

    webhook mode:  Telegram ─POST /webhooks/telegram─▶ route (secret checked) ─push─▶ UpdateQueue ─▶ UpdateConsumer
    polling mode:  Poller (getUpdates) ──────────────────────────────────────push─▶ UpdateQueue ─▶ UpdateConsumer
    UpdateConsumer: raw JSON ─ updates.to_event ─▶ handle(event)  (the core's handle_event, bound to its context)

The route only verifies and queues, so a slow handler never makes Telegram wait (it retries, and eventually backs
off, on slow or failed webhook answers). Also here: the command menu (setMyCommands) and webhook registration.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from telegram import BotCommand
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError

from bot.platforms.inbound.consumer import EventHandler, InboundConsumer
from storage.stream_queue import UpdateQueue
from bot.platforms.telegram.channel import TelegramChannel
from bot.platforms.telegram.errors import retry_after_seconds, scrub
from bot.platforms.telegram.updates import to_event
from handlers.chat import InboundEvent
from webhooks.errors import ApiError

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ("message", "callback_query")  # all OrderHub acts on; Telegram then skips the rest
_SECRET_CHARS = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts as secret_token

UpdateSink = Callable[[int, bytes], Awaitable[Any]]  # (update_id, raw JSON) → queued; UpdateQueue.push fits

COMMANDS: dict[str, list[tuple[str, str]]] = {
    "zh": [("order", "查看订单：/order 订单号"), ("stalled", "超期订单：/stalled [城市|阶段]"),
           ("pending", "等我审批的订单"), ("top", "重点订单（优先级最高）"),
           ("note", "异常备注：/note 订单号 内容"), ("assign", "改派负责人：/assign 订单号 用户名"), ("find", "搜索订单：/find 关键词"), ("help", "帮助"),
           ("link", "绑定员工账号：/link 邀请码"), ("start", "开始 / 查询我的订单")],
    "en": [("order", "Show an order: /order ID"), ("stalled", "Overdue orders: /stalled [city|stage]"),
           ("pending", "Approvals waiting for me"), ("top", "Flagged top orders"),
           ("note", "Exception note: /note ORDER text"), ("assign", "Reassign an order: /assign ORDER NAME"),
           ("find", "Search orders: /find TEXT"), ("help", "Help"),
           ("link", "Link your staff account: /link CODE"), ("start", "Start / check my orders")],
}


def webhook_url(public_url: str) -> str:
    """`ORDERHUB_PUBLIC_URL` (or a URL already ending in the route) → the URL Telegram should post to."""
    base = public_url.rstrip("/")
    return base if base.endswith(WEBHOOK_PATH) else base + WEBHOOK_PATH


# --- webhook mode -------------------------------------------------------------------------------------------------


def make_router(secret_token: str, sink: UpdateSink, *, max_body_bytes: int = 1024 * 1024) -> APIRouter:
    """`POST /webhooks/telegram`: 401 unless the secret header matches; 200 once the update is queued."""
    if not secret_token or not _SECRET_CHARS.fullmatch(secret_token):
        raise ValueError("the Telegram webhook secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
    expected = secret_token.encode()
    router = APIRouter(tags=["chat"])

    @router.post(WEBHOOK_PATH, summary="Telegram updates (webhook mode)")
    async def telegram_update(
        request: Request,
        secret: Annotated[str | None, Header(alias=SECRET_HEADER)] = None,
    ) -> dict[str, bool]:
        # Telegram does not sign updates; it echoes the secret given to setWebhook in this header.
        if not hmac.compare_digest((secret or "").encode(), expected):
            raise ApiError(401, "unauthorized", f"missing or wrong {SECRET_HEADER}")
        body = await request.body()
        if len(body) > max_body_bytes:
            raise ApiError(413, "payload_too_large", "a Telegram update is never this large")
        try:
            update = json.loads(body)
            update_id = update["update_id"]
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, "bad_request", "the body is not a Telegram update (a JSON object with update_id)"
                           ) from None
        try:
            await sink(update_id, body)
        except Exception as exc:  # Redis away: a non-2xx answer makes Telegram deliver the update again later
            log.warning("telegram update %s not queued: %s", update_id, type(exc).__name__)
            raise ApiError(503, "unavailable", "the update queue is unavailable; Telegram will retry") from None
        return {"ok": True}

    return router


# --- consumer (both modes) ----------------------------------------------------------------------------------------


class UpdateConsumer(InboundConsumer):
    """Telegram's consumer: raw update JSON → event, knowing who we are (getMe) to tell our commands apart."""

    def __init__(self, queue: UpdateQueue, handle: EventHandler, *, channel: TelegramChannel | None = None,
                 **options: Any) -> None:
        super().__init__(queue, handle, read=self._read, name="telegram", **options)
        self.channel = channel

    async def _read(self, raw: bytes) -> InboundEvent | None:
        identity = (self.channel.username, self.channel.bot_id) if self.channel else (None, None)
        return to_event(json.loads(raw), *identity)


# --- polling mode -------------------------------------------------------------------------------------------------


class Poller:
    """Long polling with getUpdates, pushing into the same queue as the webhook route.

    Telegram forgets updates once getUpdates is called with a higher offset, and we only raise the offset after the
    updates are queued: a crash between the two means the batch is fetched again (and deduplicated by the queue).
    """

    def __init__(self, channel: TelegramChannel, sink: UpdateSink, *, poll_timeout: int = 25,
                 max_backoff_s: float = 30.0) -> None:
        self.channel, self.sink = channel, sink
        self.poll_timeout, self.max_backoff_s = poll_timeout, max_backoff_s
        self.offset: int | None = None

    async def poll_once(self) -> int:
        updates = await self.channel.bot.get_updates(
            offset=self.offset, timeout=self.poll_timeout, allowed_updates=list(ALLOWED_UPDATES)
        )
        for update in updates:
            await self.sink(update.update_id, json.dumps(update.to_dict(), ensure_ascii=False).encode())
            self.offset = update.update_id + 1
        return len(updates)

    async def _poll_unless_stopped(self, stop: asyncio.Event) -> bool:
        """One poll, abandoned as soon as `stop` is set (a long poll would hold shutdown for `poll_timeout`).
        Abandoning is safe: the offset only moves past queued updates. False when stopped."""
        poll = asyncio.create_task(self.poll_once())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({poll, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not poll.done():
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poll
        if poll.cancelled():
            return False
        poll.result()  # re-raise the poll's error for run() to classify
        return True

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 1.0
        webhook_cleared = False
        while not stop.is_set():
            try:
                if not webhook_cleared:
                    # getUpdates answers 409 while a webhook is set; polling mode means no webhook (PTB's own
                    # updater does the same). Pending updates stay: they are fetched by the first poll.
                    await self.channel.bot.delete_webhook(drop_pending_updates=False)
                    webhook_cleared = True
                if not await self._poll_unless_stopped(stop):
                    return
                backoff = 1.0
                continue
            except asyncio.CancelledError:
                raise
            except RetryAfter as exc:
                pause = retry_after_seconds(exc)
            except InvalidToken:
                log.error("telegram rejected the bot token; polling stopped")
                raise
            except Conflict as exc:  # another process polls with the same token, or a webhook was set again
                log.warning("telegram getUpdates conflict: %s", exc.message)
                pause = 5.0
            except TelegramError as exc:
                log.warning("telegram getUpdates failed: %s", scrub(exc.message, self.channel.bot.token))
                pause, backoff = backoff, min(backoff * 2, self.max_backoff_s)
            except Exception:  # the sink (Redis) failed: keep the offset, fetch the same batch again
                log.exception("telegram updates not queued")
                pause, backoff = backoff, min(backoff * 2, self.max_backoff_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)


# --- bot set-up ---------------------------------------------------------------------------------------------------


async def set_commands(channel: TelegramChannel, language: str | None = None) -> None:
    """Register the command menu (setMyCommands), in the configured language."""
    pairs = COMMANDS.get(language or channel.language, COMMANDS["en"])
    await channel.call("setMyCommands", channel.bot.set_my_commands([BotCommand(c, d) for c, d in pairs]))


async def set_webhook(channel: TelegramChannel, url: str, secret: str, *, drop_pending: bool = False) -> None:
    if not _SECRET_CHARS.fullmatch(secret):
        raise ValueError("the Telegram webhook secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
    await channel.call("setWebhook", channel.bot.set_webhook(
        url=url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES), drop_pending_updates=drop_pending
    ))


async def delete_webhook(channel: TelegramChannel, *, drop_pending: bool = False) -> None:
    await channel.call("deleteWebhook", channel.bot.delete_webhook(drop_pending_updates=drop_pending))
