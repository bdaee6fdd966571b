"""Everything Telegram in one object, the `ChatPlatform` (bot/platforms/protocol.py) registered as `TELEGRAM`: build
from its settings (`Settings.telegram()`), start, run, close.

    tg = TelegramService.build(settings, redis)              # None when ORDERHUB_TELEGRAM_TOKEN is unset
    services.extra_routers.append(tg.router)                 # webhook mode only (router is None when polling)
    channels["telegram"] = tg.channel                        # for ChatContext and the Notifier
    await tg.start()                                         # getMe, command menu, setWebhook (webhook mode)
    task = asyncio.create_task(tg.run(stop, handle))         # consumer (+ poller in polling mode)
    await tg.close()

Mode: ORDERHUB_PUBLIC_URL set → webhook at <public_url>/webhooks/telegram, else long polling.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter

from bot.platforms.inbound.consumer import InboundConsumer
from bot.platforms.protocol import FromSettings, PlatformEntry, if_configured
from bot.platforms.telegram.channel import TelegramChannel
from bot.platforms.telegram.runner import (
    EventHandler,
    Poller,
    UpdateConsumer,
    delete_webhook,
    make_router,
    set_commands,
    set_webhook,
    webhook_url,
)
from handlers.chat import PermanentSendError, RetryableSendError
from storage import keys
from storage.stream_queue import UpdateQueue

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from bot.settings import Settings, TelegramSettings

log = logging.getLogger(__name__)


def telegram_updates(redis: aioredis.Redis) -> UpdateQueue:
    return UpdateQueue(redis, keys.TELEGRAM_UPDATES, keys.TELEGRAM_GROUP)


def webhook_secret(config: TelegramSettings) -> str:
    """ORDERHUB_TELEGRAM_WEBHOOK_SECRET, or one derived from the bot token: stable across restarts and replicas,
    and only guessable by someone who holds the token already (who could read the updates anyway)."""
    if config.webhook_secret is not None:
        return config.webhook_secret.get_secret_value()
    token = config.token.get_secret_value()
    return hashlib.sha256(b"orderhub/telegram-webhook/" + token.encode()).hexdigest()


def webhook_router(config: TelegramSettings, queue: UpdateQueue) -> APIRouter | None:
    """`POST /webhooks/telegram` in webhook mode (None when polling); HTTP-only processes (`orderhub api`) mount
    just this: the route only queues the update for a consumer elsewhere."""
    if not config.public_url:
        return None
    return make_router(webhook_secret(config), queue.push, max_body_bytes=config.max_body_bytes)


@dataclass
class TelegramService(FromSettings):
    name = "telegram"
    channel: TelegramChannel
    queue: UpdateQueue
    public_url: str | None
    secret: str
    router: APIRouter | None  # the webhook route, to add to AppServices.extra_routers (None in polling mode)

    @classmethod
    def from_config(cls, config: TelegramSettings, redis: aioredis.Redis) -> TelegramService:
        queue = telegram_updates(redis)
        return cls(TelegramChannel.from_config(config), queue, config.public_url, webhook_secret(config),
                   webhook_router(config, queue))

    @property
    def webhook_mode(self) -> bool:
        return self.public_url is not None

    async def start(self, *, register: bool = True) -> None:
        """Learn our identity and (with `register`) publish the command menu and the webhook.

        A network failure here is not fatal (sends work without getMe; the menu and webhook stay as they were set
        last time), a rejected token is.
        """
        try:
            await self.channel.start()
        except RetryableSendError as exc:
            log.warning("telegram getMe failed, continuing: %s", exc)
        if not register:
            return
        try:
            await set_commands(self.channel)
            if self.public_url:
                await set_webhook(self.channel, webhook_url(self.public_url), self.secret)
        except (RetryableSendError, PermanentSendError) as exc:
            log.warning("telegram set-up incomplete (menu/webhook): %s", exc)

    def consumer(self, handle: EventHandler, name: str | None = None) -> InboundConsumer:
        return UpdateConsumer(self.queue, handle, channel=self.channel, consumer=name)

    async def run(self, stop: asyncio.Event, handle: EventHandler | None, *, poll: bool = True) -> None:
        """Until `stop`: the consumer feeding `handle` (the core's handle_event bound to its context; None: no
        consumer in this process), and with `poll` the poller (in polling mode only: a webhook is never polled).
        Both share the queue, so several processes can run consumers; run one poller only (Telegram answers 409
        to a second getUpdates)."""
        loops = []
        if handle is not None:
            loops.append(self.consumer(handle).run(stop))
        if poll and not self.webhook_mode:
            loops.append(Poller(self.channel, self.queue.push).run(stop))
        await asyncio.gather(*loops)

    async def remove_webhook(self) -> None:
        await delete_webhook(self.channel)

    async def close(self) -> None:
        await self.channel.close()


def routes(settings: Settings, redis: aioredis.Redis) -> APIRouter | None:
    return if_configured(settings.telegram(), lambda config: webhook_router(config, telegram_updates(redis)))


TELEGRAM = PlatformEntry("telegram", {"zh": "Telegram", "en": "Telegram"}, TelegramService.build, routes)
