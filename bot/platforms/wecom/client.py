"""wechatpy's enterprise `WeChatClient`, pointed at a configurable API root and called off the event loop.

wechatpy is synchronous (requests), so every call runs in a worker thread (`asyncio.to_thread`). Two wechatpy habits
are changed here:
- the API root: wechatpy hard-codes `https://qyapi.weixin.qq.com` (gettoken included); OrderHub sends every call
  to `<ORDERHUB_WECOM_API_URL>/cgi-bin/<method>` (the stand-in in tests, a proxy in some networks), so the base
  URL is set per instance and gettoken is ours (with the request timeout wechatpy forgets there);
- token refresh: wechatpy's `auto_retry` re-fetches on 40014/42001 and retries *without a bound*; we refresh once
  and give up with a send error after that.
The token lives in wechatpy's session storage (memory by default: one token per process, which WeCom allows —
gettoken hands every caller the same valid token).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage
from wechatpy.session.memorystorage import MemoryStorage

from bot.platforms.wecom.errors import TOKEN_INVALID, install_log_redaction, scrub, translate
from handlers.chat import FileTooLarge

T = TypeVar("T")
DEFAULT_API_ROOT = "https://qyapi.weixin.qq.com"


class OrderHubWeChatClient(WeChatClient):
    """`WeChatClient` with `API_BASE_URL` per instance and a gettoken that honours it and the timeout."""

    def __init__(self, corp_id: str, secret: str, api_root: str, *, timeout: float,
                 session: SessionStorage | None = None) -> None:
        super().__init__(corp_id, secret, session=session or MemoryStorage(), timeout=timeout, auto_retry=False)
        self.API_BASE_URL = f"{api_root.rstrip('/')}/cgi-bin/"
        self._token_lock = threading.Lock()

    def fetch_access_token(self) -> dict[str, Any]:
        with self._token_lock:  # concurrent sends in several threads: one gettoken
            res = self._http.get(self.API_BASE_URL + "gettoken", params={"corpid": self.corp_id,
                                                                        "corpsecret": self.secret},
                                 timeout=self.timeout)
            if res.status_code >= 400:
                raise WeChatClientException(None, None, client=self, request=res.request, response=res)
            result = self._decode_result(res)
            if not isinstance(result, dict):
                raise WeChatClientException(-1, "gettoken answered with no JSON", client=self, response=res)
            if int(result.get("errcode", 0)) != 0:
                raise WeChatClientException(int(result["errcode"]), result.get("errmsg", ""), client=self,
                                            response=res)
            expires_in = int(result.get("expires_in", 7200))
            self.session.set(self.access_token_key, result["access_token"], expires_in)
            self.expires_at = int(time.time()) + expires_in
            return result

    def forget_token(self) -> None:
        self.session.delete(self.access_token_key)
        self.expires_at = None


MEDIA_CHUNK = 64 * 1024


def fetch_media(client: OrderHubWeChatClient, media_id: str, max_bytes: int) -> bytes:
    """`GET <root>/cgi-bin/media/get?media_id=…`: a file a member sent (wechatpy's `media.download` would go to the
    hard-coded qyapi host and read any size). Streamed; refused past `max_bytes` by its Content-Length before any
    of it is read, or as soon as more arrives. An error comes back as JSON (errcode), not as a file."""
    res = client._http.get(client.API_BASE_URL + "media/get", timeout=client.timeout, stream=True,
                           params={"access_token": client.access_token, "media_id": media_id})
    try:
        if res.status_code >= 400:
            raise WeChatClientException(None, None, client=client, request=res.request, response=res)
        ctype = res.headers.get("Content-Type", "").lower()
        if "json" in ctype or ctype.startswith("text/"):
            try:
                result = json.loads(res.raw.read(MEDIA_CHUNK, decode_content=True) or b"{}")
            except ValueError:
                result = {}
            raise WeChatClientException(int(result.get("errcode", -1)), str(result.get("errmsg", "not a file")),
                                        client=client, response=res)
        length = res.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise FileTooLarge(f"{length} bytes")
        data = bytearray()
        for chunk in res.iter_content(MEDIA_CHUNK):
            data += chunk
            if len(data) > max_bytes:
                raise FileTooLarge(f"more than {max_bytes} bytes")
        return bytes(data)
    finally:
        res.close()


class WecomApi:
    """Async façade: `await api.call("message/send", lambda c: c.message.send(...))`."""

    def __init__(self, corp_id: str, secret: str, api_root: str = DEFAULT_API_ROOT, *, timeout: float = 10.0,
                 session: SessionStorage | None = None) -> None:
        if not corp_id or not secret:
            raise ValueError("a WeCom corp id and app secret are required")
        self._secret = secret
        self.client = OrderHubWeChatClient(corp_id, secret, api_root, timeout=timeout, session=session)
        install_log_redaction(secret)

    def __repr__(self) -> str:  # never the secret or the token
        return f"WecomApi(corp_id={self.client.corp_id!r})"

    def _secrets(self) -> tuple[str, ...]:
        token = self.client.session.get(self.client.access_token_key)
        return (self._secret, token) if isinstance(token, str) else (self._secret,)

    def _run(self, fn: Callable[[WeChatClient], T]) -> T:
        """In the worker thread: the call, and on an invalid/expired token one refresh and one retry."""
        try:
            return fn(self.client)
        except WeChatClientException as exc:
            if exc.errcode not in TOKEN_INVALID:
                raise
        self.client.forget_token()
        return fn(self.client)

    async def call(self, what: str, fn: Callable[[WeChatClient], T]) -> T:
        secrets = self._secrets()
        try:
            return await asyncio.to_thread(self._run, fn)
        except FileTooLarge:
            raise
        except Exception as exc:  # noqa: BLE001 — every failure leaves as a send error, scrubbed
            raise translate(exc, what, *secrets, *self._secrets()) from None

    def scrub(self, text: str) -> str:
        return scrub(text, *self._secrets())

    async def close(self) -> None:
        await asyncio.to_thread(self.client._http.close)
