"""A board SSE client over ASGI: signs in through a one-time link (as a browser does), opens `/board/events` on the
real app and hands out its `change` events. Used to prove that every entry point's move reaches open boards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import orjson

from board.auth import COOKIE
from bot.wiring.board import board_auth
from bot.wiring.runtime import Runtime
from storage.board_repo import EVENTS_CHANNEL


class Feed:
    def __init__(self) -> None:
        self.changes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        while b"\n\n" in self._buffer:
            frame, self._buffer = self._buffer.split(b"\n\n", 1)
            lines = frame.split(b"\n")
            if b"event: change" in lines:
                data = next(line for line in lines if line.startswith(b"data: "))
                self.changes.put_nowait(orjson.loads(data[len(b"data: "):]))

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.changes.get(), timeout)

    async def until(self, kind: str, order_id: int, timeout: float = 10.0) -> dict[str, Any]:
        """The first `kind` change of `order_id` (other changes may come first: a decision, then its move)."""
        while True:
            event = await self.next(timeout)
            if event.get("kind") == kind and event.get("order_id") == order_id:
                return event


async def _cookie(app: Any, runtime: Runtime, user_id: int) -> str:
    link = await board_auth(runtime).login_link(user_id, runtime.clock.now())
    token = parse_qs(urlparse(link).query)["t"][0]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://test") as client:
        res = await client.post("/board/login", data={"t": token})
    assert res.status_code == 303, res.text
    return res.cookies[COOKIE]


async def _subscribers(runtime: Runtime) -> int:
    counts = {k.decode() if isinstance(k, bytes) else k: int(n)
              for k, n in await runtime.redis.pubsub_numsub(EVENTS_CHANNEL)}
    return counts.get(EVENTS_CHANNEL, 0)


@asynccontextmanager
async def board_feed(app: Any, runtime: Runtime, user_id: int) -> AsyncIterator[Feed]:
    """An open board of `user_id` on `app` (the real ASGI app with /board mounted), subscribed when yielded."""
    cookie = await _cookie(app, runtime, user_id)
    before = await _subscribers(runtime)
    feed, gone = Feed(), asyncio.Event()
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            feed.feed(message.get("body", b""))

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "https",
             "path": "/board/events", "raw_path": b"/board/events", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"test"), (b"accept", b"text/event-stream"),
                         (b"cookie", f"{COOKIE}={cookie}".encode())],
             "client": ("127.0.0.1", 5000), "server": ("test", 443)}
    task = asyncio.ensure_future(app(scope, receive, send))
    try:
        for _ in range(200):  # until the stream's Redis subscription is in place (no event can be missed)
            if await _subscribers(runtime) > before or task.done():
                break
            await asyncio.sleep(0.05)
        assert not task.done() and status == [200], status
        yield feed
    finally:
        gone.set()
        task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception):
            pass
