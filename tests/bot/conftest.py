"""The chat-platform stand-ins and channels pointed at them, for every test under tests/bot (the network guard,
enabled in tests/conftest.py, makes sure nothing reaches the real api.telegram.org or qyapi.weixin.qq.com)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.platforms.telegram.channel import TelegramChannel
from bot.platforms.wecom.channel import WecomChannel
from bot.platforms.wecom.codes import MemoryResponseCodes
from tests.handlers.conftest import rules  # noqa: F401 - the bundled rules, the same fixture as the chat core's
from tests.standins import telegram_api as tg_standin
from tests.standins import wecom_api as wc_standin


async def no_sleep(_: float) -> None:
    """A channel's retry wait that does not wait: the stand-ins answer at once."""
    return None


@pytest.fixture
def telegram_api() -> Iterator[tg_standin.TelegramStandIn]:
    with tg_standin.running_standin() as standin:
        yield standin


@pytest.fixture
def wecom_api() -> Iterator[wc_standin.WecomStandIn]:
    with wc_standin.running_standin() as standin:
        yield standin


@asynccontextmanager
async def open_telegram(api: tg_standin.TelegramStandIn, timeout: float = 2.0, **options: Any
                        ) -> AsyncIterator[TelegramChannel]:
    """A started Telegram channel on the stand-in (it has asked getMe who it is), closed afterwards."""
    ch = TelegramChannel(api.token, api.url, connect_timeout=timeout, read_timeout=timeout, **options)
    await ch.start()
    yield ch
    await ch.close()


@asynccontextmanager
async def open_wecom(api: wc_standin.WecomStandIn, timeout: float = 2.0) -> AsyncIterator[WecomChannel]:
    """A WeCom channel on the stand-in whose retries do not wait, closed afterwards."""
    ch = WecomChannel(api.corp_id, api.secret, wc_standin.AGENT_ID, api.url, codes=MemoryResponseCodes(),
                      timeout=timeout, sleep=no_sleep)
    yield ch
    await ch.close()


@pytest.fixture
async def wecom(wecom_api: wc_standin.WecomStandIn) -> AsyncIterator[WecomChannel]:
    async with open_wecom(wecom_api) as ch:
        yield ch
