"""WeCom as the composition root uses it, the `ChatPlatform` (bot/platforms/protocol.py) registered as `WECOM`: channel,
callback route, event queue and consumer, built from its settings (`Settings.wecom()`).

    wecom = WecomService.build(settings, redis)          # None unless the five WeCom settings are set
    app routers += [wecom.router]                        # GET/POST /webhooks/wecom (only queues)
    channels["wecom"] = wecom.channel                    # for ChatContext and the Notifier
    task = asyncio.create_task(wecom.run(stop, handle))  # the consumer
    await wecom.close()

There is no polling mode and nothing to register through the API: the admin enters the callback URL
(<public url>/webhooks/wecom), Token and EncodingAESKey in the WeCom admin console.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.platforms.inbound.consumer import EventHandler, InboundConsumer
from bot.platforms.protocol import FromSettings, PlatformEntry, if_configured
from bot.platforms.wecom.callback import NonceMemory, make_router
from bot.platforms.wecom.channel import WecomChannel
from bot.platforms.wecom.codes import RedisResponseCodes
from bot.platforms.wecom.events import EventReader
from storage import keys
from storage.stream_queue import UpdateQueue

if TYPE_CHECKING:
    import asyncio

    import redis.asyncio as aioredis

    from bot.settings import Settings, WecomSettings


def event_queue(redis: aioredis.Redis) -> UpdateQueue:
    return UpdateQueue(redis, key=keys.WECOM_EVENTS, group=keys.WECOM_GROUP)


def callback_router(config: WecomSettings, queue: UpdateQueue) -> APIRouter:
    """`GET/POST /webhooks/wecom`: it only queues, consumers run elsewhere (or in this process)."""
    crypto = WeChatCrypto(config.token.get_secret_value(), config.aes_key.get_secret_value(), config.corp_id)
    return make_router(crypto, queue.push, max_body_bytes=config.max_body_bytes,
                       nonces=NonceMemory(queue.redis, keys.WECOM_NONCES))


@dataclass
class WecomService(FromSettings):
    name = "wecom"
    channel: WecomChannel
    queue: UpdateQueue
    reader: EventReader
    router: APIRouter

    @classmethod
    def from_config(cls, config: WecomSettings, redis: aioredis.Redis) -> WecomService:
        codes = RedisResponseCodes(redis)
        queue = event_queue(redis)
        channel = WecomChannel.from_config(config, codes)
        return cls(channel, queue, EventReader(codes, channel.agent_id), callback_router(config, queue))

    async def start(self, *, register: bool) -> None:
        """Nothing to learn or register through the API (the callback URL is entered in the admin console)."""

    def consumer(self, handle: EventHandler, name: str | None = None) -> InboundConsumer:
        return InboundConsumer(self.queue, handle, consumer=name, read=self.reader, name="wecom")

    async def run(self, stop: asyncio.Event, handle: EventHandler | None, *, poll: bool = False) -> None:
        """Until `stop`: queued callbacks → events → `handle` (the core's handle_event); several processes may
        run it, they share the stream's consumer group. WeCom only pushes: `poll` has nothing to do."""
        if handle is not None:
            await self.consumer(handle).run(stop)

    async def close(self) -> None:
        await self.channel.close()


def routes(settings: Settings, redis: aioredis.Redis) -> APIRouter | None:
    """The callback route for HTTP-only processes (`orderhub api`); None when WeCom is not configured."""
    return if_configured(settings.wecom(), lambda config: callback_router(config, event_queue(redis)))


WECOM = PlatformEntry("wecom", {"zh": "企业微信", "en": "WeCom"}, WecomService.build, routes)
