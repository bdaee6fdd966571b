"""Chat commands for staff: `/ship ORDER [carrier] [waybill]` and `/track ORDER` — parse, check, call the use
cases (handlers.tracking through `ctx.tracking`), reply. Customers see their scans in the status reply instead."""

from __future__ import annotations

from typing import Any, Protocol

from engine.carriers import CARRIERS
from engine.carriers.text import t
from engine.stages import TransitionError
from handlers.chat import CommandReceived
from handlers.orders import MoveRefused, OrderNotFound
from handlers.tracking import ShipRefused, event_line_parts
from handlers.chat_context import ChatContext
from engine.text import t as core_t

COMMANDS = ("ship", "track")


class TrackingChat(Protocol):
    async def ship(self, ref: str, carrier: str | None, waybill: str | None, company: str | None,
                   actor: str) -> dict[str, Any]: ...

    async def timeline(self, ref: str) -> dict[str, Any]: ...


async def handle_command(event: CommandReceived, ctx: ChatContext) -> None:
    sender, lang = event.sender, ctx.language
    if (user := await ctx.staff_only(sender)) is None:
        return
    if ctx.tracking is None:
        await ctx.reply(sender, t("tracking.ship_failed", lang, error="no carrier is configured"))
        return
    args = [a.strip() for a in event.args if a.strip()][:3]
    if not args:
        await ctx.reply(sender, t(f"tracking.usage_{event.command}", lang))
        return
    ref = args[0][:64]
    try:
        if event.command == "track":
            await ctx.reply(sender, _timeline_text(await ctx.tracking.timeline(ref), ref, lang, ctx.timezone))
            return
        carrier = args[1].lower() if len(args) > 1 else None
        if carrier is not None and carrier not in CARRIERS:
            await ctx.reply(sender, t("tracking.usage_ship", lang))
            return
        waybill = args[2][:40] if len(args) > 2 else None
        result = await ctx.tracking.ship(ref, carrier, waybill, None, user.name)
        await ctx.reply(sender, t("tracking.shipped_staff", lang, order=ref,
                                  carrier=t(f"carrier.{result['carrier']}", lang), waybill=result["waybill"]))
    except OrderNotFound:
        await ctx.reply(sender, core_t("staff.order_not_found", lang, q=ref))
    except (TransitionError, MoveRefused, ShipRefused) as exc:
        await ctx.reply(sender, t("tracking.ship_failed", lang, error=str(exc)))


def _timeline_text(tl: dict[str, Any], ref: str, lang: str, tz: str) -> str:
    if not tl.get("waybill"):
        return t("tracking.none", lang, order=ref)
    status = t(f"status.{tl['status']}", lang) if tl.get("status") else "—"
    head = t("tracking.header", lang, carrier=t(f"carrier.{tl['carrier']}", lang), waybill=tl["waybill"],
             status=status)
    lines = [event_line_parts(e["at"], e["text"], e["place"], tz) for e in tl["events"][:15]]
    return "\n".join([head, *lines])
