"""Fixtures for the WeCom adapter: the WeCom API stand-in and a channel pointed at it (the network guard, enabled
in tests/conftest.py, makes sure nothing reaches the real qyapi.weixin.qq.com)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from bot.platforms.wecom.channel import WecomChannel
from bot.platforms.wecom.codes import MemoryResponseCodes
from tests.standins.wecom_api import AGENT_ID, WecomStandIn, running_standin


async def no_sleep(_: float) -> None:
    return None


@pytest.fixture
def wecom_api() -> Iterator[WecomStandIn]:
    with running_standin() as standin:
        yield standin


@pytest.fixture
async def wecom(wecom_api: WecomStandIn) -> AsyncIterator[WecomChannel]:
    ch = WecomChannel(wecom_api.corp_id, wecom_api.secret, AGENT_ID, wecom_api.url, codes=MemoryResponseCodes(),
                      timeout=2.0, sleep=no_sleep)
    yield ch
    await ch.close()
