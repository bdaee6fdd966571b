"""`orderhub users add | invite | link | list`: the commands an admin uses to let people into the chat bot."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

from bot.wiring.chat import build_chat_core
from bot.cli.main import app
from bot.settings import BUNDLED_RULES
from engine.rules import load_rules
from handlers.chat import CommandReceived, Sender
from storage.users_repo import SqlUsers
from tests.chatfake import FakeChannel

runner = CliRunner()


@pytest.fixture
def env(database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {"ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_REDIS_URL": redis_url,
            "ORDERHUB_DATA_DIR": str(tmp_path / "data")}


async def cli(env: dict[str, str], *args: str) -> Result:
    """The CLI runs its own event loop (asyncio.run), so from an async test it goes to a thread."""
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def test_invitation_code_links_the_sender_once(env: dict[str, str], db: AsyncEngine,
                                                     redis: aioredis.Redis) -> None:
    added = await cli(env, "users", "add", "华东经理", "--role", "manager", "--region", "华东")
    assert added.exit_code == 0, added.output
    assert added.output.strip().splitlines()[-1].startswith("oh_")  # the API token, on the last line
    invited = await cli(env, "users", "invite", "华东经理")
    assert invited.exit_code == 0, invited.output
    code = invited.output.strip().splitlines()[-1]
    assert len(code) == 9 and code[4] == "-"

    rules = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
    channel = FakeChannel()
    core = build_chat_core(db, redis, {"telegram": channel}, Clock(), lambda: rules, token_key=b"k")
    await core.handle(CommandReceived(Sender("telegram", "4242", "4242"), "link", (code,)))
    assert "绑定成功" in channel.sent[-1].text
    [(user, identities)] = await SqlUsers(db).list()
    assert (user.name, identities) == ("华东经理", [("telegram", "4242")])

    await core.handle(CommandReceived(Sender("telegram", "666", "666"), "link", (code,)))  # a second use
    assert channel.sent[-1].text == "邀请码无效、已过期或已使用。"
    [(_, identities)] = await SqlUsers(db).list()
    assert identities == [("telegram", "4242")]
    await core.close()


def test_invite_for_an_unknown_user_is_a_clear_error(env: dict[str, str], db: AsyncEngine) -> None:
    result = runner.invoke(app, ["users", "invite", "nobody"], env=env)
    assert result.exit_code == 2
    assert "no user named 'nobody'" in result.output


def test_link_needs_exactly_one_platform(env: dict[str, str], db: AsyncEngine) -> None:
    result = runner.invoke(app, ["users", "link", "x"], env=env)
    assert result.exit_code == 2 and "exactly one of --telegram, --wecom or --chat" in result.output
    both = runner.invoke(app, ["users", "link", "x", "--telegram", "1", "--chat", "wecom:zhangsan"], env=env)
    assert both.exit_code == 2 and "exactly one" in both.output


def test_link_by_platform_name_knows_the_registered_platforms(env: dict[str, str], db: AsyncEngine) -> None:
    assert runner.invoke(app, ["users", "add", "张经理", "--role", "manager", "--region", "华东"], env=env).exit_code == 0
    unknown = runner.invoke(app, ["users", "link", "张经理", "--chat", "icq:123"], env=env)
    assert unknown.exit_code == 2 and "unknown chat platform icq" in unknown.output and "wecom" in unknown.output
    linked = runner.invoke(app, ["users", "link", "张经理", "--chat", "wecom:zhangsan"], env=env)
    assert linked.exit_code == 0, linked.output
    assert "企业微信 zhangsan" in runner.invoke(app, ["users", "list"], env=env).output


def test_a_region_the_rules_do_not_name_is_refused(env: dict[str, str], db: AsyncEngine) -> None:
    result = runner.invoke(app, ["users", "add", "西北经理", "--role", "manager", "--region", "西北"], env=env)
    assert result.exit_code == 2, result.output
    assert "unknown region 西北" in result.output and "华东" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert runner.invoke(app, ["users", "list"], env=env).output.count("西北经理") == 0


async def test_set_quiet_stores_the_window_and_refuses_bad_ones(env: dict[str, str], db: AsyncEngine) -> None:
    from sqlalchemy import select

    from storage.models import UserRow

    assert (await cli(env, "users", "add", "跟单员", "--role", "supply_chain")).exit_code == 0
    done = await cli(env, "users", "set-quiet", "跟单员", "22:00-08:00")
    assert done.exit_code == 0 and "22:00-08:00" in done.output, done.output
    for bad in ("25:00-08:00", "22:00", "22:00-22:00", "22:00-08:00\x00"):
        refused = await cli(env, "users", "set-quiet", "跟单员", bad)
        assert refused.exit_code == 2 and "error" in refused.output, (bad, refused.output)
    unknown = await cli(env, "users", "set-quiet", "nobody", "22:00-08:00")
    assert unknown.exit_code != 0 and "nobody" in unknown.output
    async with db.connect() as conn:
        assert (await conn.execute(select(UserRow.__table__.c.quiet_hours))).scalars().all() == ["22:00-08:00"]
    assert (await cli(env, "users", "set-quiet", "跟单员", "off")).exit_code == 0
    async with db.connect() as conn:
        assert (await conn.execute(select(UserRow.__table__.c.quiet_hours))).scalars().all() == [None]
