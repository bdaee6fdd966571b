"""`orderhub telegram …`: register or remove the webhook, and the command menu, from the shell.

The URL given to `set-webhook` is the public base URL (as ORDERHUB_PUBLIC_URL); `/webhooks/telegram` is appended
unless it is already there. The secret is ORDERHUB_TELEGRAM_WEBHOOK_SECRET, or (unset) one derived from the token,
exactly as `orderhub serve` computes it for the route.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer

from bot.settings import Settings, TelegramSettings
from bot.platforms.telegram.channel import TelegramChannel
from bot.platforms.telegram.runner import delete_webhook, set_commands, set_webhook, webhook_url
from bot.platforms.telegram.service import webhook_secret
from handlers.chat import SendError

app = typer.Typer(help="Telegram bot set-up: webhook and command menu.", no_args_is_help=True)


def _config() -> TelegramSettings:
    config = Settings().telegram()
    if config is None:
        typer.echo("ORDERHUB_TELEGRAM_TOKEN is not set.", err=True)
        raise typer.Exit(2)
    return config


def _run(action: Callable[[TelegramChannel], Awaitable[None]]) -> None:
    config = _config()

    async def main() -> None:
        channel = TelegramChannel.from_config(config)
        try:
            await action(channel)
        finally:
            await channel.close()

    try:
        asyncio.run(main())
    except (SendError, ValueError) as exc:  # messages are token-free (see bot/platforms/telegram/errors.py)
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("set-webhook")
def set_webhook_cmd(
    url: Annotated[str | None, typer.Argument(help="public base URL; default ORDERHUB_PUBLIC_URL")] = None,
    drop_pending: Annotated[bool, typer.Option(help="discard updates Telegram holds for the bot")] = False,
) -> None:
    """Point Telegram at <URL>/webhooks/telegram, with the secret token it must echo back."""
    settings = Settings()
    base = url or settings.public_url
    if not base:
        typer.echo("give the public URL (or set ORDERHUB_PUBLIC_URL).", err=True)
        raise typer.Exit(2)
    config = _config()
    target = webhook_url(base)
    secret = webhook_secret(config)  # the same one `serve` checks: configured, or derived from the token
    _run(lambda ch: set_webhook(ch, target, secret, drop_pending=drop_pending))
    typer.echo(f"webhook set: {target}")


@app.command("delete-webhook")
def delete_webhook_cmd(
    drop_pending: Annotated[bool, typer.Option(help="discard updates Telegram holds for the bot")] = False,
) -> None:
    """Remove the webhook (the bot then needs long polling: `orderhub serve` without ORDERHUB_PUBLIC_URL)."""
    _run(lambda ch: delete_webhook(ch, drop_pending=drop_pending))
    typer.echo("webhook deleted")


@app.command("set-commands")
def set_commands_cmd() -> None:
    """Register the command menu (/order, /stalled, /pending, /top, /find, /help, /link, /start) in
    ORDERHUB_LANGUAGE."""
    _run(lambda ch: set_commands(ch))
    typer.echo("commands registered")
