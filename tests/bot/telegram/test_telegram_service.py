"""TelegramService: what the composition root builds, in webhook and in polling mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from bot.settings import Settings
from bot.platforms.telegram.runner import SECRET_HEADER
from bot.platforms.telegram.service import TelegramService, webhook_secret
from handlers.chat import CommandReceived, InboundEvent
from tests.standins.telegram_api import TelegramStandIn
from webhooks.app import create_app
from webhooks.services import AppServices, WebhookConfig


def settings_for(api: TelegramStandIn, tmp_path: Path, **kw: object) -> Settings:
    return Settings(_env_file=None, telegram_token=api.token, telegram_api_url=api.url, data_dir=tmp_path, **kw)


@pytest.fixture
async def services() -> AsyncIterator[list[TelegramService]]:
    made: list[TelegramService] = []
    yield made
    for tg in made:
        await tg.close()


async def first_events(tg: TelegramService, *, within: float, stop_within: float
                       ) -> tuple[list[InboundEvent], float]:
    """Run the service until it hands the chat core an event (failing after `within` s), then stop it: the events
    it handed over, and how many seconds stopping took (failing after `stop_within` s)."""
    events: list[InboundEvent] = []

    async def handle(event: InboundEvent) -> None:
        events.append(event)

    stop = asyncio.Event()
    task = asyncio.create_task(tg.run(stop, handle))
    async with asyncio.timeout(within):
        while not events:
            await asyncio.sleep(0.02)
    stop.set()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(task, stop_within)
    return events, loop.time() - started


def test_no_token_no_telegram(tmp_path: Path, redis: aioredis.Redis) -> None:
    assert TelegramService.build(Settings(_env_file=None, data_dir=tmp_path), redis) is None


def test_secret_is_configured_or_derived_from_the_token(telegram_api: TelegramStandIn, tmp_path: Path) -> None:
    configured = settings_for(telegram_api, tmp_path, telegram_webhook_secret="mine_1")
    assert webhook_secret(configured.telegram()) == "mine_1"
    derived = webhook_secret(settings_for(telegram_api, tmp_path).telegram())
    assert derived == webhook_secret(settings_for(telegram_api, tmp_path).telegram())  # stable across processes
    other = Settings(_env_file=None, telegram_token="1:other-token-abcdef", data_dir=tmp_path)
    assert derived != webhook_secret(other.telegram()) and telegram_api.token not in derived


async def test_webhook_mode_registers_and_serves_the_route(telegram_api: TelegramStandIn, tmp_path: Path,
                                                           redis: aioredis.Redis,
                                                           services: list[TelegramService]) -> None:
    tg = TelegramService.build(settings_for(telegram_api, tmp_path, public_url="https://hub.example.cn/"), redis)
    assert tg is not None and tg.webhook_mode and tg.router is not None
    services.append(tg)
    await tg.start()
    assert tg.channel.username == "OrderHubBot"
    assert telegram_api.webhook == {"url": "https://hub.example.cn/webhooks/telegram", "secret_token": tg.secret}
    assert len(telegram_api.commands) == 10

    async def depth() -> int:
        return 0

    app = create_app(AppServices(config=WebhookConfig(webhook_secrets={}), intake=None,  # type: ignore[arg-type]
                                 adapters={}, queue_depth=depth, extra_routers=[tg.router]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        update = {"update_id": 1, "message": {"message_id": 1, "date": 1, "text": "/pending@OrderHubBot",
                                              "chat": {"id": 5, "type": "private"},
                                              "from": {"id": 5, "is_bot": False, "first_name": "x"}}}
        assert (await client.post("/webhooks/telegram", json=update)).status_code == 401
        assert (await client.post("/webhooks/telegram", json=update,
                                  headers={SECRET_HEADER: tg.secret})).status_code == 200

    events, _ = await first_events(tg, within=5, stop_within=5)
    assert isinstance(events[0], CommandReceived) and events[0].command == "pending"
    assert telegram_api.all_calls("getUpdates") == []  # webhook mode never polls


async def test_polling_mode_has_no_route_and_polls(telegram_api: TelegramStandIn, tmp_path: Path,
                                                   redis: aioredis.Redis, services: list[TelegramService]) -> None:
    tg = TelegramService.build(settings_for(telegram_api, tmp_path), redis)
    assert tg is not None and not tg.webhook_mode and tg.router is None
    services.append(tg)
    await tg.start()
    assert telegram_api.webhook is None and len(telegram_api.commands) == 10
    telegram_api.push_update({"message": {"message_id": 1, "date": 1, "text": "/help",
                                          "chat": {"id": 5, "type": "private"},
                                          "from": {"id": 5, "is_bot": False, "first_name": "x"}}})
    events, stopping_s = await first_events(tg, within=10, stop_within=30)
    # Stopping abandons the 25 s long poll at once (the consumer's 1 s read block is the bound).
    assert stopping_s < 2.5
    assert events == [CommandReceived(events[0].sender, "help", ())]


async def test_start_survives_an_unreachable_api_but_not_a_bad_token(telegram_api: TelegramStandIn, tmp_path: Path,
                                                                    redis: aioredis.Redis,
                                                                    services: list[TelegramService]) -> None:
    telegram_api.script("getMe", 502, "Bad Gateway")
    telegram_api.script("setMyCommands", 500, "Internal Server Error")
    tg = TelegramService.build(settings_for(telegram_api, tmp_path), redis)
    assert tg is not None
    services.append(tg)
    await tg.start()  # logged, not raised: sends do not need getMe
    assert tg.channel.username is None

    bad = TelegramService.build(Settings(_env_file=None, telegram_token="1:wrong-token-abcdef",
                                         telegram_api_url=telegram_api.url, data_dir=tmp_path), redis)
    assert bad is not None
    services.append(bad)
    with pytest.raises(Exception, match="rejected"):
        await bad.start()
