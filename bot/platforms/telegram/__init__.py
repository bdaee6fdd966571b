"""The Telegram adapter: the only code in OrderHub that sees python-telegram-bot types.

`channel.TelegramChannel` sends and edits (a `ChatChannel`), `updates.to_event` turns Telegram updates into neutral
events, `runner` receives updates (webhook route or long polling) through a Redis queue into the chat core.
"""
