"""`GET, POST /webhooks/wecom`: the WeCom application's callback URL (SPEC §2).

GET is the URL check WeCom makes when an admin saves the callback settings: `msg_signature` over (Token, timestamp,
nonce, echostr), and the decrypted echostr must come back as the body. POST carries one encrypted XML message or
event: its signature is checked and it is decrypted (`WeChatCrypto`, AES-256-CBC with the EncodingAESKey, the corp
id inside), then only queued; WeCom waits 5 s for the answer and retries three times, so nothing slow happens here,
and a redelivery is queued once (see events.dedup_id). The body of our answer is empty: no passive reply.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from xml.parsers.expat import ExpatError

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException, WeChatException

from bot.wecom.events import dedup_id, parse
from webhooks.errors import ApiError

log = logging.getLogger(__name__)

CALLBACK_PATH = "/webhooks/wecom"
Sig = Annotated[str, Query(alias="msg_signature")]  # module level: FastAPI resolves the annotations by name
# What a signed but undecryptable payload raises: wrong corp id (WeChatException), bad base64/padding/UTF-8
# (ValueError), a body that is not XML or lacks <Encrypt> (ExpatError, KeyError, TypeError).
_UNREADABLE = (WeChatException, ValueError, KeyError, TypeError, ExpatError)
EventSink = Callable[[str, bytes], Awaitable[Any]]  # (dedup id, decrypted XML) → queued; UpdateQueue.push fits


def callback_url(public_url: str) -> str:
    base = public_url.rstrip("/")
    return base if base.endswith(CALLBACK_PATH) else base + CALLBACK_PATH


def make_router(crypto: WeChatCrypto, sink: EventSink, *, max_body_bytes: int = 1024 * 1024) -> APIRouter:
    router = APIRouter(tags=["chat"])

    @router.get(CALLBACK_PATH, summary="WeCom callback URL verification", response_class=PlainTextResponse)
    async def wecom_verify(msg_signature: Sig, timestamp: str, nonce: str, echostr: str) -> PlainTextResponse:
        try:
            echo = crypto.check_signature(msg_signature, timestamp, nonce, echostr)
        except InvalidSignatureException:
            raise ApiError(401, "unauthorized", "bad msg_signature") from None
        except _UNREADABLE:  # signed with our Token, but not decryptable with our key / corp id
            raise ApiError(400, "bad_request", "echostr could not be decrypted") from None
        return PlainTextResponse(echo.decode() if isinstance(echo, bytes) else str(echo))

    @router.post(CALLBACK_PATH, summary="WeCom encrypted messages and events", response_class=PlainTextResponse)
    async def wecom_event(request: Request, msg_signature: Sig, timestamp: str, nonce: str) -> PlainTextResponse:
        body = await request.body()
        if len(body) > max_body_bytes:
            raise ApiError(413, "payload_too_large", "a WeCom callback is never this large")
        try:
            plain = crypto.decrypt_message(body, msg_signature, timestamp, nonce)
        except InvalidSignatureException:
            raise ApiError(401, "unauthorized", "bad msg_signature") from None
        except _UNREADABLE:
            raise ApiError(400, "bad_request", "the body is not an encrypted WeCom message") from None
        raw = plain.encode() if isinstance(plain, str) else bytes(plain)
        try:
            data = parse(raw)
        except ValueError as exc:
            raise ApiError(400, "bad_request", f"the decrypted message is not understood: {exc}") from None
        try:
            await sink(dedup_id(data), raw)
        except Exception as exc:  # noqa: BLE001 — Redis away: a non-2xx answer makes WeCom deliver it again
            log.warning("wecom callback not queued: %s", type(exc).__name__)
            raise ApiError(503, "unavailable", "the event queue is unavailable; WeCom will retry") from None
        return PlainTextResponse("")

    return router
