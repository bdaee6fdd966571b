"""`/assign ORDER NAME` in chat (Telegram and WeCom alike): parse, call the one reassign use case
(handlers.owners.assign) as the linked sender, answer in the chat's language. Managers of the order's region and
admins only — the use case decides, the same way as for the API and the CLI."""

from __future__ import annotations

from engine.owner_text import t
from handlers.chat import CommandReceived
from handlers.owners import Assigner, AssignRefused, assign
from handlers.chat_context import ChatContext

COMMANDS = ("assign",)


async def handle_command(event: CommandReceived, ctx: ChatContext) -> None:
    sender, lang = event.sender, ctx.language
    if (user := await ctx.staff_only(sender)) is None:
        return
    args = [a for a in (x.strip() for x in event.args) if a]
    if len(args) < 2 or ctx.owners is None:
        await ctx.reply(sender, t("assign.usage", lang))
        return
    ref, name = args[0], " ".join(args[1:])
    try:
        done = await assign(ctx.owners, Assigner(user.id, user.name, user.role, tuple(user.regions)), ref, name,
                            ctx.clock.now())
    except AssignRefused as exc:
        shown_ref, shown_name = ref[:64], name[:64]
        await ctx.reply(sender, t(f"assign.{exc.code}", lang, order=shown_ref, name=shown_name))
        return
    await ctx.reply(sender, t("assign.done", lang, order=done.order_key, owner=done.owner,
                  previous=done.previous or t("assign.nobody", lang)))
