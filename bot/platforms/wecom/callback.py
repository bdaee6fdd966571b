"""`GET, POST /webhooks/wecom`: the WeCom application's callback URL.

GET is the URL check WeCom makes when an admin saves the callback settings: `msg_signature` over (Token, timestamp,
nonce, echostr), and the decrypted echostr must come back as the body. POST carries one encrypted XML message or
event: its signature is checked and it is decrypted (`WeChatCrypto`, AES-256-CBC with the EncodingAESKey, the corp
id inside), then only queued; WeCom waits 5 s for the answer and retries three times, so nothing slow happens here,
and a redelivery is queued once (see events.dedup_id). The body of our answer is empty: no passive reply.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from xml.parsers.expat import ExpatError

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException, WeChatException

from bot.platforms.wecom.events import dedup_id, parse
from webhooks.errors import ApiError

log = logging.getLogger(__name__)

CALLBACK_PATH = "/webhooks/wecom"
Sig = Annotated[str, Query(alias="msg_signature")]  # module level: FastAPI resolves the annotations by name
# What a signed but undecryptable payload raises: wrong corp id (WeChatException), bad base64/padding/UTF-8
# (ValueError), a body that is not XML or lacks <Encrypt> (ExpatError, KeyError, TypeError).
# a body encrypted with another key decrypts to garbage: its length prefix may be cut short (struct.error)
_UNREADABLE = (WeChatException, ValueError, KeyError, TypeError, ExpatError, struct.error)
EventSink = Callable[[str, bytes], Awaitable[Any]]  # (dedup id, decrypted XML) → queued; UpdateQueue.push fits
FRESH_S = 300  # a callback stamped further than this from our clock is refused (a capture replayed later)
NONCE_TTL_S = 900  # nonces are remembered for longer than the ±FRESH_S window, so a replay inside it is caught


class NonceMemory:
    """The (timestamp, nonce) pairs of callbacks already queued, in Redis for NONCE_TTL_S."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix

    async def seen(self, key: str) -> bool:
        return bool(await self.redis.exists(self.prefix + key))

    async def remember(self, key: str) -> None:
        await self.redis.set(self.prefix + key, b"1", ex=NONCE_TTL_S)


def signature_ok(token: str, signature: str, timestamp: str, nonce: str, data: str) -> bool:
    """WeCom's msg_signature (SHA-1 over the sorted Token, timestamp, nonce and data), compared in constant time:
    wechatpy compares with `!=`, so its own check only ever runs after this one has passed."""
    expected = hashlib.sha1("".join(sorted([token, timestamp, nonce, data])).encode()).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode(errors="surrogateescape"))


def _encrypt_field(body: bytes) -> str | None:
    import xmltodict  # what wechatpy itself parses the envelope with

    try:
        value = xmltodict.parse(body)["xml"]["Encrypt"]
    except Exception:  # noqa: BLE001 - not the envelope: refused as unreadable below
        return None
    return value if isinstance(value, str) else None


def callback_url(public_url: str) -> str:
    base = public_url.rstrip("/")
    return base if base.endswith(CALLBACK_PATH) else base + CALLBACK_PATH


def make_router(crypto: WeChatCrypto, sink: EventSink, *, max_body_bytes: int = 1024 * 1024,
                nonces: NonceMemory | None = None, now: Callable[[], float] = time.time) -> APIRouter:
    router = APIRouter(tags=["chat"])
    token: str = crypto.token

    def check_fresh(timestamp: str) -> None:
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12
                and abs(now() - int(timestamp)) <= FRESH_S):
            raise ApiError(401, "unauthorized", f"timestamp outside ±{FRESH_S} s of the server clock")

    @router.get(CALLBACK_PATH, summary="WeCom callback URL verification", response_class=PlainTextResponse)
    async def wecom_verify(msg_signature: Sig, timestamp: str, nonce: str, echostr: str) -> PlainTextResponse:
        if not signature_ok(token, msg_signature, timestamp, nonce, echostr):
            raise ApiError(401, "unauthorized", "bad msg_signature")
        check_fresh(timestamp)
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
        encrypted = _encrypt_field(body)
        if encrypted is None:
            raise ApiError(400, "bad_request", "the body is not an encrypted WeCom message")
        if not signature_ok(token, msg_signature, timestamp, nonce, encrypted):
            raise ApiError(401, "unauthorized", "bad msg_signature")
        check_fresh(timestamp)
        replay_key = f"{timestamp}:{nonce}"
        if nonces is not None and await nonces.seen(replay_key):
            return PlainTextResponse("")  # queued once already: WeCom's own retry, or a captured POST replayed
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
        if nonces is not None:  # after queueing: a retry of a delivery we failed to queue is still taken
            try:
                await nonces.remember(replay_key)
            except Exception as exc:  # noqa: BLE001 - queued already; the MsgId marker still dedups a retry
                log.warning("wecom nonce not remembered: %s", type(exc).__name__)
        return PlainTextResponse("")

    return router
