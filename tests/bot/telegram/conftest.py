"""Fixtures for the Telegram adapter: a channel pointed at the Bot API stand-in (`telegram_api`, from
tests/bot/conftest.py) and our webhook route in front of the chat core."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from bot.platforms.telegram.channel import TelegramChannel
from bot.platforms.telegram.runner import UpdateConsumer, make_router
from bot.platforms.telegram.service import telegram_updates
from handlers.dispatch import handle_event
from storage.stream_queue import UpdateQueue
from webhooks.app import create_app
from webhooks.services import AppServices, WebhookConfig
from tests.bot.conftest import open_telegram
from tests.standins.telegram_api import TelegramStandIn


@pytest.fixture
async def channel(telegram_api: TelegramStandIn) -> AsyncIterator[TelegramChannel]:
    async with open_telegram(telegram_api) as ch:
        yield ch


@pytest.fixture
async def queue(redis: aioredis.Redis) -> UpdateQueue:
    """The Telegram update queue (webhook route and poller push, the consumer reads), its consumer group made."""
    q = telegram_updates(redis)
    await q.ensure_group()
    return q


@asynccontextmanager
async def webhook_route(redis: Any, channel: TelegramChannel, ctx: Any, secret: str, consumer: str
                        ) -> AsyncIterator[tuple[httpx.AsyncClient, UpdateConsumer]]:
    """Our Telegram webhook route in the real app, its update queue, and the consumer handing updates to the chat
    core (`ctx`): post an update to the client, then `await consumer.drain()`."""
    queue = telegram_updates(redis)
    await queue.ensure_group()
    app = create_app(AppServices(config=WebhookConfig(webhook_secrets={}), intake=None,  # type: ignore[arg-type]
                                 adapters={}, queue_depth=queue.depth, extra_routers=[make_router(secret, queue.push)]))
    updates = UpdateConsumer(queue, functools.partial(handle_event, ctx=ctx), channel=channel, consumer=consumer)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client, updates
