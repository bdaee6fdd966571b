"""`/assign ORDER NAME` in chat, and the stall card's Assign button with its menu of people (Telegram and WeCom
alike): both call the one reassign use case (handlers.owners.assign) as the linked sender and answer in the chat's
language. Managers of the order's region and admins only — the use case decides, the same way as for the API and
the CLI."""

from __future__ import annotations

from collections.abc import Sequence

from engine.owner_text import t
from engine.rules.owners import Candidate
from engine.tokens import Action, ActionToken, sign
from handlers.chat import Button, ButtonPressed, Card, CommandReceived, Outgoing, SendError
from handlers.chat_context import ChatContext
from handlers.chat_ports import UserInfo
from handlers.owners import Assigner, AssignRefused, OrderOwnerFacts, assign, assign_choices
from handlers.replies import send, toast

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


# --- the stall card's Assign button (handlers.cards.stall_card): a menu of who may own the order, one press assigns

ACTIONS = frozenset({Action.ASSIGN_MENU, Action.ASSIGN_SET})
MENU_PAGE = 5  # people per menu card (WeCom holds six buttons; the sixth is "More")


def assign_menu_card(order: OrderOwnerFacts, people: Sequence[Candidate], page: int, key: bytes, lang: str) -> Card:
    """Who may own the order, least loaded first, MENU_PAGE at a time with "More" cycling through the pages."""
    pages = max(1, -(-len(people) // MENU_PAGE))
    page %= pages
    buttons = [Button(t("assign.btn.person", lang, name=c.name, load=c.load),
                      sign(key, Action.ASSIGN_SET, order.id, str(c.user_id)))
               for c in people[page * MENU_PAGE:(page + 1) * MENU_PAGE]]
    if pages > 1:
        more = sign(key, Action.ASSIGN_MENU, order.id, str((page + 1) % pages))
        buttons.append(Button(t("assign.btn.more", lang), more))
    owner = order.owner_name or t("assign.nobody", lang)
    return Card(t("assign.menu.title", lang, order=order.key), ((t("f.owner", lang), owner),), "", tuple(buttons))


def _assigner(user: UserInfo) -> Assigner:
    return Assigner(user.id, user.name, user.role, tuple(user.regions))


async def on_button(event: ButtonPressed, tok: ActionToken, ctx: ChatContext) -> None:
    """Assign (the menu) and a person's button (the reassignment, through the one use case `assign`)."""
    lang, channel = ctx.language, ctx.channel(event.sender.platform)
    user = await ctx.staff(event.sender)
    if user is None or ctx.owners is None:
        await toast(channel, event.callback_id, t("assign.forbidden", lang), alert=True)
        return
    try:
        order, people = await assign_choices(ctx.owners, _assigner(user), tok.id)
    except AssignRefused as exc:
        await toast(channel, event.callback_id, t(f"assign.{exc.code}", lang, order=tok.id, name=""), alert=True)
        return
    if tok.action == Action.ASSIGN_MENU:
        if not people:
            await toast(channel, event.callback_id, t("assign.menu.empty", lang, order=order.key), alert=True)
            return
        await toast(channel, event.callback_id, "")
        page = int(tok.ref) if tok.ref.isdigit() else 0
        await send(channel, Outgoing(chat_id=event.sender.chat_id,
                                     card=assign_menu_card(order, people, page, ctx.token_key, lang)))
        return
    target = next((c for c in people if str(c.user_id) == tok.ref), None)
    if target is None:  # the owner already, deactivated, or moved out of the order's region since the menu
        await toast(channel, event.callback_id, t("assign.menu.gone", lang), alert=True)
        return
    try:
        done = await assign(ctx.owners, _assigner(user), str(order.id), target.name, ctx.clock.now())
    except AssignRefused as exc:
        await toast(channel, event.callback_id, t(f"assign.{exc.code}", lang, order=order.key, name=target.name),
                    alert=True)
        return
    await toast(channel, event.callback_id, t("assign.toast", lang, owner=done.owner))
    text = t("assign.done", lang, order=done.order_key, owner=done.owner,
             previous=done.previous or t("assign.nobody", lang))
    if event.message is not None:  # the menu now says what was chosen, without buttons: nobody presses it twice
        try:
            await channel.update(event.message, Card(t("assign.menu.title", lang, order=done.order_key), (), text))
            return
        except SendError:
            pass  # too old to edit: say it instead
    await ctx.reply(event.sender, text)
