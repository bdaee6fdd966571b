"""WecomService and the api-worker route: built only when all five WeCom settings are there."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from bot.processes.asgi import create_asgi_app
from bot.settings import Settings
from bot.platforms.wecom.service import WECOM, WecomService
from handlers.chat import CommandReceived, InboundEvent
from tests.bot.wecom.test_wecom_callback import AES_KEY, TOKEN, message_xml
from tests.standins.wecom_api import AGENT_ID, WecomStandIn

FIVE = ("wecom_corp_id", "wecom_secret", "wecom_agent_id", "wecom_token", "wecom_aes_key")


def wecom_settings(api: WecomStandIn, tmp_path: Path, **over: object) -> Settings:
    values: dict[str, object] = {"wecom_corp_id": api.corp_id, "wecom_secret": SecretStr(api.secret),
                                 "wecom_agent_id": str(AGENT_ID), "wecom_token": SecretStr(TOKEN),
                                 "wecom_aes_key": SecretStr(AES_KEY), "wecom_api_url": api.url}
    values.update(over)
    return Settings(_env_file=None, data_dir=tmp_path, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("missing", FIVE)
def test_any_missing_setting_means_no_wecom(wecom_api: WecomStandIn, tmp_path: Path, redis: aioredis.Redis,
                                            missing: str) -> None:
    s = wecom_settings(wecom_api, tmp_path, **{missing: None})
    assert WecomService.build(s, redis) is None and WECOM.routes(s, redis) is None and s.wecom() is None


async def test_service_consumes_queued_callbacks_until_stopped(wecom_api: WecomStandIn, tmp_path: Path,
                                                               redis: aioredis.Redis) -> None:
    wc = WecomService.build(wecom_settings(wecom_api, tmp_path), redis)
    assert wc is not None and wc.channel.agent_id == AGENT_ID
    seen: list[InboundEvent] = []
    stop = asyncio.Event()

    async def handle(event: InboundEvent) -> None:
        seen.append(event)
        stop.set()

    await wc.queue.push("m:1", message_xml("zhangsan", "/help", 1).encode())
    await asyncio.wait_for(wc.run(stop, handle), timeout=10)
    assert [type(e) for e in seen] == [CommandReceived]
    await wc.close()


async def test_an_api_worker_mounts_the_callback_route(wecom_api: WecomStandIn, tmp_path: Path, redis_url: str,
                                                       database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"ORDERHUB_WECOM_CORP_ID": wecom_api.corp_id, "ORDERHUB_WECOM_SECRET": wecom_api.secret,
           "ORDERHUB_WECOM_AGENT_ID": str(AGENT_ID), "ORDERHUB_WECOM_TOKEN": TOKEN,
           "ORDERHUB_WECOM_AES_KEY": AES_KEY, "ORDERHUB_REDIS_URL": redis_url,
           "ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_DATA_DIR": str(tmp_path)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    app = create_asgi_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        resp = await client.get("/webhooks/wecom", params={"msg_signature": "0" * 40, "timestamp": "1",
                                                           "nonce": "n", "echostr": "e"})
    assert resp.status_code == 401  # the route is there (404 otherwise) and checks the signature
    await app.state.services.on_shutdown[-1]()
