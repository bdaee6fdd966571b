"""WeCom as the composition root uses it: channel, callback route, event queue and consumer, built from Settings.

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

from bot.inbound.consumer import EventHandler, InboundConsumer
from bot.inbound.queue import UpdateQueue
from bot.wecom.callback import NonceMemory, make_router
from bot.wecom.channel import WecomChannel
from bot.wecom.codes import RedisResponseCodes
from bot.wecom.events import EventReader
from storage import keys

if TYPE_CHECKING:
    import asyncio

    import redis.asyncio as aioredis

    from bot.settings import Settings

GROUP = "wecom-consumers"


def configured(settings: Settings) -> bool:
    return bool(settings.wecom_corp_id and settings.wecom_secret and settings.wecom_agent_id
                and settings.wecom_token and settings.wecom_aes_key)


def event_queue(redis: aioredis.Redis) -> UpdateQueue:
    return UpdateQueue(redis, key=keys.WECOM_EVENTS, group=GROUP)


def callback_router(settings: Settings, queue: UpdateQueue) -> APIRouter | None:
    """The callback route for HTTP-only processes (`orderhub api`): it only queues, consumers run elsewhere."""
    if not configured(settings):
        return None
    assert settings.wecom_token is not None and settings.wecom_aes_key is not None
    crypto = WeChatCrypto(settings.wecom_token.get_secret_value(), settings.wecom_aes_key.get_secret_value(),
                          settings.wecom_corp_id)
    return make_router(crypto, queue.push, max_body_bytes=settings.max_body_bytes,
                       nonces=NonceMemory(queue.redis, keys.WECOM_NONCES))


@dataclass
class WecomService:
    channel: WecomChannel
    queue: UpdateQueue
    reader: EventReader
    router: APIRouter

    @classmethod
    def build(cls, settings: Settings, redis: aioredis.Redis) -> WecomService | None:
        if not configured(settings):
            return None
        codes = RedisResponseCodes(redis)
        queue = event_queue(redis)
        router = callback_router(settings, queue)
        assert router is not None
        channel = WecomChannel.from_settings(settings, codes)
        return cls(channel, queue, EventReader(codes, channel.agent_id), router)

    def consumer(self, handle: EventHandler, name: str | None = None) -> InboundConsumer:
        return InboundConsumer(self.queue, handle, consumer=name, read=self.reader, name="wecom")

    async def run(self, stop: asyncio.Event, handle: EventHandler) -> None:
        """Until `stop`: queued callbacks → events → `handle` (the core's handle_event); several processes may
        run it, they share the stream's consumer group."""
        await self.consumer(handle).run(stop)

    async def close(self) -> None:
        await self.channel.close()
