"""Board fixtures: the real composition root (runtime), the chat core around the recording fake channel, the board
mounted in the real app, and helpers that seed orders, people and sign-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from board.auth import COOKIE
from bot.wiring.board import build_board
from bot.wiring.runtime import Runtime
from bot.settings import BUNDLED_RULES
from engine.rules import RuleSet, load_rules
from handlers.board import BoardEvents
from storage.models import OrderRow
from storage.users_repo import SqlUsers
from tests.chatfake import FakeChannel, FakeTime
from tests.handlers.conftest import Clock, World, make_world
from webhooks.app import create_app

ORDERS = OrderRow.__table__


@dataclass
class RecordingEvents:
    """Board events in memory, forwarding to the real bus when given one (tests assert what was published)."""

    inner: BoardEvents | None = None
    published: list[dict[str, Any]] = field(default_factory=list)

    async def publish(self, event: dict[str, Any]) -> None:
        self.published.append(event)
        if self.inner is not None:
            await self.inner.publish(event)

    def subscribe(self) -> Any:
        assert self.inner is not None
        return self.inner.subscribe()


@dataclass
class BoardWorld:
    runtime: Runtime
    world: World
    app: FastAPI
    board: FastAPI
    events: RecordingEvents
    tokens: dict[str, str] = field(default_factory=dict)  # user name -> API token

    @property
    def clock(self) -> Clock:
        return self.world.clock

    @property
    def channel(self) -> FakeChannel:
        return self.world.channel  # type: ignore[return-value]

    async def staff(self, name: str, role: str, regions: list[str] | None = None, *, tg: str | None = None) -> int:
        """A user as `orderhub users add` makes one (with an API token), optionally linked to a Telegram id."""
        users = SqlUsers(self.runtime.db)
        user, self.tokens[name] = await users.add(name, role, regions or [], None, None, self.clock.now())
        if tg:
            await users.link(name, "telegram", tg, self.clock.now())
        return user.id

    async def order(self, external_id: str, *, priority: int = 1, flagged: bool = False,
                    created_days_ago: float = 1, **kw: Any) -> int:
        oid = await self.world.order(external_id, **kw)
        async with self.runtime.db.begin() as conn:
            await conn.execute(update(ORDERS).where(ORDERS.c.id == oid).values(
                priority=priority, flagged=flagged, created_at=self.clock.now() - timedelta(days=created_days_ago)))
        return oid

    async def link(self, user_id: int) -> str:
        return await self.board.state.board.auth.login_link(user_id, self.clock.now())

    async def sign_in(self, client: httpx.AsyncClient, user_id: int) -> str:
        """Sign `client` in through a fresh one-time link; returns the page's CSRF token."""
        token = parse_qs(urlparse(await self.link(user_id)).query)["t"][0]
        res = await client.post("/board/login", data={"t": token})
        assert res.status_code == 303, res.text
        page = await client.get("/board/", headers={"accept": "text/html"})
        assert page.status_code == 200, page.text
        return csrf_of(page.text)


def csrf_of(html: str) -> str:
    marker = '<meta name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


# The orders the board tests seed, by number. HZ-WAIT waits for 华东's approval; SZ-SHIP is `late` past its deadline.
BOARD_ORDERS: dict[str, dict[str, Any]] = {
    "HZ-WAIT": {"city": "杭州", "amount": "8000.00", "stage": "pending_confirm", "priority": 5},
    "HZ-DES": {"city": "杭州", "amount": "3000.00", "stage": "designing", "priority": 2},
    "SH-DES": {"city": "上海", "amount": "2600.00", "stage": "designing", "priority": 1},
    "SH-ORD": {"city": "上海", "amount": "12000.00", "stage": "ordered", "priority": 1, "flagged": True},
    "GZ-DES": {"city": "广州", "amount": "4000.00", "stage": "designing", "priority": 9},
    "SZ-SHIP": {"city": "深圳", "amount": "2000.00", "stage": "shipped", "late": timedelta(hours=5)},
    "BJ-DONE": {"city": "北京", "amount": "900.00", "stage": "completed"},
}


async def seed_orders(bw: BoardWorld, *numbers: str) -> dict[str, int]:
    """The named BOARD_ORDERS in the order given (their ids follow it), HZ-WAIT with its pending approval; each test
    module names the set its counts and filters were written for. Returns their ids by number."""
    ids = {}
    for number in numbers:
        fields = dict(BOARD_ORDERS[number])
        late = fields.pop("late", None)
        if late is not None:
            fields["deadline"] = bw.clock.now() - late
        ids[number] = await bw.order(number, **fields)
    if "HZ-WAIT" in ids:
        await bw.world.approval(ids["HZ-WAIT"], region="华东")
    return ids


async def build_board_world(runtime: Runtime, db: AsyncEngine, rules: RuleSet, *, page_size: int = 50,
                            real_events: bool = False) -> BoardWorld:
    clock = Clock()
    world = make_world(db, rules, FakeChannel("telegram"), clock, FakeTime(clock=clock))
    runtime.clock = clock  # type: ignore[assignment]
    from storage.board_repo import RedisBoardEvents

    events = RecordingEvents(RedisBoardEvents(runtime.redis) if real_events else None)
    world.repo.events = events  # the chat core's moves and decisions (its buttons, the board's decisions)
    board = build_board(runtime, world.ctx, events=events)
    board.state.board.page_size = page_size
    services = runtime.app_services()
    services.on_startup.clear()
    services.mounts.append(("/board", board))
    return BoardWorld(runtime, world, create_app(services), board, events)


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))


@pytest.fixture
async def bw(runtime: Runtime, db: AsyncEngine, rules: RuleSet) -> BoardWorld:
    return await build_board_world(runtime, db, rules)


@pytest.fixture
async def client(bw: BoardWorld) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bw.app), base_url="http://test") as c:
        yield c


__all__ = ["BOARD_ORDERS", "BoardWorld", "RecordingEvents", "build_board_world", "csrf_of", "seed_orders", "COOKIE"]
