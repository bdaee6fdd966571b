"""Fixtures for the Telegram adapter: the Bot API stand-in and a channel pointed at it (the network guard,
enabled in tests/conftest.py, makes sure nothing reaches the real api.telegram.org)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bot.telegram.channel import TelegramChannel
from tests.standins.telegram_api import TelegramStandIn, running_standin


@pytest.fixture
def telegram_api() -> Iterator[TelegramStandIn]:
    with running_standin() as standin:
        yield standin


@pytest.fixture
async def channel(telegram_api: TelegramStandIn) -> AsyncIterator[TelegramChannel]:
    ch = TelegramChannel(telegram_api.token, telegram_api.url, connect_timeout=2.0, read_timeout=2.0)
    await ch.start()
    yield ch
    await ch.close()
