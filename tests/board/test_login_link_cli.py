"""`orderhub users login-link NAME`: a one-time board link on the last line, refused for customers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from bot.cli.main import app

runner = CliRunner()


@pytest.fixture
def env(database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {"ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_REDIS_URL": redis_url,
            "ORDERHUB_DATA_DIR": str(tmp_path / "data"), "ORDERHUB_PUBLIC_URL": "https://oh.example"}


async def cli(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env)


async def test_login_link_prints_a_link_the_board_accepts_once(env: dict[str, str], db: AsyncEngine,
                                                               redis, settings) -> None:  # type: ignore[no-untyped-def]
    assert (await cli(env, "users", "add", "li", "--role", "admin")).exit_code == 0
    assert (await cli(env, "users", "add", "wang", "--role", "customer")).exit_code == 0
    res = await cli(env, "users", "login-link", "li")
    assert res.exit_code == 0, res.output
    link = res.output.strip().splitlines()[-1]
    assert link.startswith("https://oh.example/board/login?t=")
    refused = await cli(env, "users", "login-link", "wang")
    assert refused.exit_code == 2 and "customer" in refused.output
    assert (await cli(env, "users", "login-link", "nobody")).exit_code == 2

    # the board of a process with the same settings (same key, same Redis) accepts it, once
    from datetime import UTC, datetime

    from board.auth import BoardAuth, derive_key
    from bot.wiring.chat import chat_token_key
    from storage.board_repo import RedisNonces

    auth = BoardAuth(derive_key(chat_token_key(settings.model_copy(update={"data_dir": Path(env["ORDERHUB_DATA_DIR"])}))),
                     RedisNonces(redis), "https://oh.example")
    token = parse_qs(urlparse(link).query)["t"][0]
    first = await auth.check_link(token, datetime.now(UTC), consume=True)
    assert first.problem is None and first.user_id is not None
    assert (await auth.check_link(token, datetime.now(UTC), consume=True)).problem == "used"
