"""`GET, POST /webhooks/wecom` in the real app on real Redis, with payloads encrypted by wechatpy's WeChatCrypto,
and the conversion of queued XML to neutral events."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest
import redis.asyncio as aioredis
import xmltodict
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.platforms.inbound.consumer import InboundConsumer
from storage.stream_queue import UpdateQueue
from bot.platforms.wecom import callback as callback_module
from bot.platforms.wecom.callback import NonceMemory, make_router
from bot.platforms.wecom.codes import RedisResponseCodes
from bot.platforms.wecom.events import EventReader
from bot.platforms.wecom.service import event_queue
from storage import keys
from handlers.chat import ButtonPressed, ChatRef, CommandReceived, InboundEvent, Sender, TextReceived
from webhooks.app import create_app
from webhooks.services import AppServices, WebhookConfig

TOKEN = "orderhubcallbacktoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeCom generates
CORP_ID = "ww0123456789abcdef"
AGENT_ID = 1000002


def message_xml(user: str, content: str, msg_id: int) -> str:
    return (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>1731290000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{AGENT_ID}</AgentID></xml>")


def click_xml(user: str, key: str, task_id: str, code: str, at: int = 1731290000) -> str:
    return (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
            f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[{key}]]></EventKey>"
            f"<TaskId><![CDATA[{task_id}]]></TaskId><CardType><![CDATA[button_interaction]]></CardType>"
            f"<ResponseCode><![CDATA[{code}]]></ResponseCode><AgentID>{AGENT_ID}</AgentID></xml>")


def encrypted(crypto: WeChatCrypto, plain: str, nonce: str | None = None, at: int | None = None) -> tuple[str, str]:
    """(query string, body) exactly as WeCom posts them: stamped now (callbacks outside ±5 min are refused), with a
    fresh nonce unless one is given."""
    nonce = nonce or uuid.uuid4().hex[:16]
    body = crypto.encrypt_message(plain, nonce, str(int(time.time()) if at is None else at))
    fields = xmltodict.parse(body)["xml"]
    query = urlencode({"msg_signature": fields["MsgSignature"], "timestamp": fields["TimeStamp"], "nonce": nonce})
    return query, body


@dataclass
class Callback:
    client: httpx.AsyncClient
    queue: UpdateQueue
    crypto: WeChatCrypto
    codes: RedisResponseCodes
    events: list[InboundEvent]

    async def post(self, plain: str, *, tamper: bool = False) -> httpx.Response:
        query, body = encrypted(self.crypto, plain)
        if tamper:
            query = query.replace("msg_signature=", "msg_signature=0")
        return await self.client.post(f"/webhooks/wecom?{query}", content=body)

    async def drain(self) -> int:
        async def handle(event: InboundEvent) -> None:
            self.events.append(event)

        consumer = InboundConsumer(self.queue, handle, consumer="t", read=EventReader(self.codes, AGENT_ID),
                                  name="wecom")
        return await consumer.drain()


@pytest.fixture
async def callback(redis: aioredis.Redis) -> AsyncIterator[Callback]:
    crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    queue = event_queue(redis)

    async def depth() -> int:
        return await queue.depth()

    app = create_app(AppServices(config=WebhookConfig(webhook_secrets={}), intake=None,  # type: ignore[arg-type]
                                 adapters={}, queue_depth=depth, extra_routers=[make_router(
                                     crypto, queue.push, nonces=NonceMemory(redis, keys.WECOM_NONCES))]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Callback(client, queue, crypto, RedisResponseCodes(redis), [])


async def test_url_verification_echoes_the_decrypted_echostr(callback: Callback) -> None:
    _, body = encrypted(callback.crypto, "echo-1234567890")
    fields = xmltodict.parse(body)["xml"]
    params = {"msg_signature": fields["MsgSignature"], "timestamp": fields["TimeStamp"], "nonce": fields["Nonce"],
              "echostr": fields["Encrypt"]}
    resp = await callback.client.get("/webhooks/wecom", params=params)
    assert resp.status_code == 200 and resp.text == "echo-1234567890"
    resp = await callback.client.get("/webhooks/wecom", params={**params, "msg_signature": "0" * 40})
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"


async def test_bad_signature_is_401_and_queues_nothing(callback: Callback) -> None:
    resp = await callback.post(message_xml("zhangsan", "/help", 1), tamper=True)
    assert resp.status_code == 401
    other = WeChatCrypto(TOKEN, "B" * 43, CORP_ID)  # right token, wrong key: not ours either
    query, body = encrypted(other, message_xml("zhangsan", "/help", 2))
    assert (await callback.client.post(f"/webhooks/wecom?{query}", content=body)).status_code == 400
    assert (await callback.client.post("/webhooks/wecom?msg_signature=x&timestamp=1&nonce=n",
                                       content=b"<xml>")).status_code in (400, 401)
    assert await callback.queue.depth() == 0


async def test_a_redelivered_message_or_click_is_queued_once(callback: Callback) -> None:
    for _ in range(3):  # WeCom retries when it got no answer within 5 s
        assert (await callback.post(message_xml("zhangsan", "/order G1", 77))).status_code == 200
        assert (await callback.post(click_xml("zhangsan", "tok", "oh-task", "rc-1"))).status_code == 200
    assert (await callback.post(click_xml("zhangsan", "tok", "oh-task", "rc-2", at=1731290001))).status_code == 200
    assert await callback.queue.depth() == 3  # the message, the click, and a second click


async def test_decrypted_events_become_neutral_events(callback: Callback) -> None:
    await callback.post(message_xml("zhangsan", "/order  G00000001", 1))
    await callback.post(message_xml("zhangsan", "／pending", 2))
    await callback.post(message_xml("kehu", "TM20251111-000123 8000", 3))
    await callback.post(click_xml("zhangsan", "signed-token", "oh-abc", "rc-click"))
    enter = message_xml("zhangsan", "", 4).replace("<MsgType><![CDATA[text]]>", "<MsgType><![CDATA[event]]>")
    await callback.post(enter.replace("<Content>", "<Event><![CDATA[enter_agent]]></Event><Content>"))
    await callback.post(message_xml("zhangsan", "hi", 5).replace(str(AGENT_ID), "999"))  # another app's
    assert await callback.drain() == 6
    me = Sender("wecom", "zhangsan", "zhangsan")
    assert callback.events == [
        CommandReceived(me, "order", ("G00000001",)),
        CommandReceived(me, "pending", ()),
        TextReceived(Sender("wecom", "kehu", "kehu"), "TM20251111-000123 8000"),
        ButtonPressed(me, "signed-token", "zhangsan", ChatRef("wecom", "zhangsan", "oh-abc")),
    ]
    assert await callback.codes.take("oh-abc") == "rc-click"  # stored before the core saw the press


@pytest.mark.parametrize("age_s", [-301, 301, 7 * 365 * 86400])
async def test_a_callback_outside_five_minutes_is_refused(callback: Callback, age_s: int) -> None:
    """A callback stamped 2017 was processed (issue 9 item 9): the signature alone says nothing about when."""
    query, body = encrypted(callback.crypto, message_xml("zhangsan", "/help", 5), at=int(time.time()) - age_s)
    assert (await callback.client.post(f"/webhooks/wecom?{query}", content=body)).status_code == 401
    fields = xmltodict.parse(body)["xml"]
    params = {"msg_signature": fields["MsgSignature"], "timestamp": fields["TimeStamp"], "nonce": fields["Nonce"],
              "echostr": fields["Encrypt"]}
    assert (await callback.client.get("/webhooks/wecom", params=params)).status_code == 401
    assert await callback.queue.depth() == 0


async def test_a_captured_post_replayed_after_its_msgid_marker_expired_is_not_queued_again(
    callback: Callback, redis: aioredis.Redis
) -> None:
    query, body = encrypted(callback.crypto, message_xml("zhangsan", "/order G1", 78))
    assert (await callback.client.post(f"/webhooks/wecom?{query}", content=body)).status_code == 200
    for key in await redis.keys("*seen*"):  # the MsgId marker expires (its TTL is shorter than a day)
        await redis.delete(key)
    assert (await callback.client.post(f"/webhooks/wecom?{query}", content=body)).status_code == 200
    assert await callback.queue.depth() == 1
    assert 0 < await redis.ttl(keys.WECOM_NONCES + query.split("timestamp=")[1].split("&")[0] + ":"
                               + query.split("nonce=")[1]) <= callback_module.NONCE_TTL_S
    assert callback_module.NONCE_TTL_S > 2 * callback_module.FRESH_S


async def test_the_signature_is_compared_in_constant_time(callback: Callback,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[bytes] = []
    real = callback_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(callback_module.hmac, "compare_digest", spy)
    # wechatpy's own `!=` check must never be what refuses: a bad signature is refused before it runs
    monkeypatch.setattr(WeChatCrypto, "_check_signature", lambda *a, **k: pytest.fail("wechatpy compared first"))
    monkeypatch.setattr(WeChatCrypto, "_decrypt_message", lambda *a, **k: pytest.fail("wechatpy compared first"))
    resp = await callback.post(message_xml("zhangsan", "/help", 9), tamper=True)
    assert resp.status_code == 401 and compared


async def test_bodies_encrypted_with_other_keys_are_400_never_500(callback: Callback) -> None:
    """Garbage from a wrong key is sometimes too short for its length prefix (struct.error): still a clean 400."""
    for i in range(40):
        other = WeChatCrypto(TOKEN, chr(ord("B") + i % 20) * 43, CORP_ID)
        query, body = encrypted(other, message_xml("zhangsan", "/help", 100 + i))
        assert (await callback.client.post(f"/webhooks/wecom?{query}", content=body)).status_code == 400
    assert await callback.queue.depth() == 0
