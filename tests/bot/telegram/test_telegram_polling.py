"""Long polling against the stand-in's getUpdates, the bot set-up helpers and `orderhub telegram …`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli.telegram import app as telegram_cli
from storage.stream_queue import UpdateQueue
from bot.settings import Settings
from bot.platforms.telegram.channel import TelegramChannel
from bot.platforms.telegram.runner import COMMANDS, Poller, UpdateConsumer, set_commands, set_webhook, webhook_url
from bot.platforms.telegram.service import webhook_secret
from handlers.chat import ButtonPressed, ChatRef, CommandReceived, InboundEvent, PermanentSendError
from tests.standins.telegram_api import TelegramStandIn

ALICE = {"id": 111, "is_bot": False, "first_name": "丽"}


def text_update(text: str) -> dict[str, Any]:
    return {"message": {"message_id": 1, "date": 1731290000, "text": text, "from": ALICE,
                        "chat": {"id": 111, "type": "private", "first_name": "丽"}}}


def press(data: str) -> dict[str, Any]:
    return {"callback_query": {"id": "cb9", "from": ALICE, "chat_instance": "i", "data": data,
                               "message": {"message_id": 101, "date": 1731290000, "text": "card",
                                           "chat": {"id": -1005, "type": "supergroup", "title": "g"}}}}


async def test_poll_once_queues_updates_and_confirms_them(channel: TelegramChannel, telegram_api: TelegramStandIn,
                                                          queue: UpdateQueue) -> None:
    ids = [telegram_api.push_update(text_update(f"/order TM{i}")) for i in range(3)]
    poller = Poller(channel, queue.push, poll_timeout=0)

    assert await poller.poll_once() == 3
    assert poller.offset == ids[-1] + 1
    assert await queue.depth() == 3
    [call] = telegram_api.all_calls("getUpdates")
    assert call.params["allowed_updates"] == ["message", "callback_query"]

    assert await poller.poll_once() == 0  # the higher offset confirmed them: Telegram forgets them
    assert telegram_api.pending_updates() == []


async def test_refetched_batch_after_a_crash_is_not_queued_twice(channel: TelegramChannel,
                                                                telegram_api: TelegramStandIn,
                                                                queue: UpdateQueue) -> None:
    for i in range(2):
        telegram_api.push_update(text_update(f"/order TM{i}"))
    await Poller(channel, queue.push, poll_timeout=0).poll_once()
    await Poller(channel, queue.push, poll_timeout=0).poll_once()  # restarted: no offset, same batch again
    assert await queue.depth() == 2


async def test_polling_feeds_the_core_through_the_queue(channel: TelegramChannel, telegram_api: TelegramStandIn,
                                                        queue: UpdateQueue) -> None:
    """The whole polling path: a webhook left over is removed, updates flow getUpdates → queue → handle_event."""
    telegram_api.webhook = {"url": "https://old.example/webhooks/telegram", "secret_token": "x"}
    telegram_api.push_update(text_update("/stalled 杭州"))
    telegram_api.push_update(press("tok.1"))
    events: list[InboundEvent] = []

    async def handle(event: InboundEvent) -> None:
        events.append(event)

    stop = asyncio.Event()
    poller = asyncio.create_task(Poller(channel, queue.push, poll_timeout=1).run(stop))
    consumer = asyncio.create_task(UpdateConsumer(queue, handle, channel=channel, consumer="c").run(stop, 100))
    try:
        async with asyncio.timeout(10):
            while len(events) < 2:
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(poller, consumer), 5)

    assert telegram_api.webhook is None
    assert isinstance(events[0], CommandReceived) and events[0].args == ("杭州",)
    assert isinstance(events[1], ButtonPressed) and events[1].token == "tok.1"
    assert events[1].message == ChatRef("telegram", "-1005", "101")


async def test_polling_waits_out_flood_control_and_server_errors(channel: TelegramChannel,
                                                                 telegram_api: TelegramStandIn,
                                                                 queue: UpdateQueue) -> None:
    telegram_api.script("getUpdates", 429, "Too Many Requests: retry after 1", {"retry_after": 1})
    telegram_api.script("getUpdates", 502, "Bad Gateway")
    telegram_api.push_update(text_update("/help"))
    stop = asyncio.Event()
    task = asyncio.create_task(Poller(channel, queue.push, poll_timeout=0).run(stop))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(10):
            while await queue.depth() < 1:
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert loop.time() - started >= 1.9  # retry_after 1 s, then a 1 s backoff after the 502
    assert [c.status for c in telegram_api.all_calls("getUpdates")][:3] == [429, 502, 200]


async def test_set_commands_registers_the_menu_in_order(channel: TelegramChannel,
                                                        telegram_api: TelegramStandIn) -> None:
    await set_commands(channel)
    assert [c["command"] for c in telegram_api.commands] == ["order", "stalled", "pending", "top", "note", "assign",
                                                             "find", "help", "link", "start"]
    assert telegram_api.commands[0]["description"] == COMMANDS["zh"][0][1]
    await set_commands(channel, "en")
    assert telegram_api.commands[-1] == {"command": "start", "description": "Start / check my orders"}
    assert {"command": "assign", "description": "Reassign an order: /assign ORDER NAME"} in telegram_api.commands


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_menu_command_is_in_the_staff_help(lang: str) -> None:
    """The menu and `/help` name the same commands (`/start` is the customer's entry, not a staff command)."""
    from engine.text import t

    helped = {line.split()[0].lstrip("/") for line in t("staff.help", lang).splitlines()}
    assert {c for c, _ in COMMANDS[lang] if c != "start"} <= helped
    assert [c for c, _ in COMMANDS["zh"]] == [c for c, _ in COMMANDS["en"]]


async def test_set_webhook_sends_the_secret(channel: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    await set_webhook(channel, "https://hub.example.cn/webhooks/telegram", "abc_DEF-123")
    assert telegram_api.webhook == {"url": "https://hub.example.cn/webhooks/telegram", "secret_token": "abc_DEF-123"}
    [call] = telegram_api.ok_calls("setWebhook")
    assert call["allowed_updates"] == ["message", "callback_query"]
    with pytest.raises(PermanentSendError, match=r"(?i)https"):
        await set_webhook(channel, "http://insecure.example/webhooks/telegram", "abc")


def test_webhook_url() -> None:
    assert webhook_url("https://hub.example.cn") == "https://hub.example.cn/webhooks/telegram"
    assert webhook_url("https://hub.example.cn/") == "https://hub.example.cn/webhooks/telegram"
    assert webhook_url("https://x.cn/webhooks/telegram") == "https://x.cn/webhooks/telegram"


# --- CLI ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(telegram_api: TelegramStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TelegramStandIn:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("ORDERHUB_PUBLIC_URL", "ORDERHUB_TELEGRAM_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ORDERHUB_TELEGRAM_TOKEN", telegram_api.token)
    monkeypatch.setenv("ORDERHUB_TELEGRAM_API_URL", telegram_api.url)
    return telegram_api


def test_cli_set_and_delete_webhook(cli_env: TelegramStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    derived = runner.invoke(telegram_cli, ["set-webhook", "https://hub.example.cn"])
    assert derived.exit_code == 0, derived.output
    # No secret configured: the one serve's route will check, derived from the token (and not the token itself).
    assert cli_env.webhook is not None
    assert cli_env.webhook["secret_token"] == webhook_secret(Settings(_env_file=None).telegram())
    assert cli_env.token.partition(":")[2] not in cli_env.webhook["secret_token"]

    monkeypatch.setenv("ORDERHUB_TELEGRAM_WEBHOOK_SECRET", "cli_secret-1")
    result = runner.invoke(telegram_cli, ["set-webhook", "https://hub.example.cn"])
    assert result.exit_code == 0, result.output
    assert cli_env.webhook == {"url": "https://hub.example.cn/webhooks/telegram", "secret_token": "cli_secret-1"}

    result = runner.invoke(telegram_cli, ["delete-webhook"])
    assert result.exit_code == 0 and cli_env.webhook is None

    result = runner.invoke(telegram_cli, ["set-commands"])
    assert result.exit_code == 0 and len(cli_env.commands) == 10  # /top, /note, then /assign joined the menu


def test_cli_reports_errors_without_the_token(cli_env: TelegramStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERHUB_TELEGRAM_WEBHOOK_SECRET", "cli_secret-1")
    result = CliRunner().invoke(telegram_cli, ["set-webhook", "http://not-https.example"])
    assert result.exit_code == 1 and "https url" in result.output.lower()
    assert cli_env.token.partition(":")[2] not in result.output
