"""Switch a region to another carrier, and undo it: ONE use case for the degradation card's buttons (chat) and
`orderhub carriers switch|undo` (CLI).

A switch is a rules edit — `carriers.regions.<region>` written as a new rules version through `RulesEditor`
(validated, versioned, hot-reloaded), so the next waybill of the region uses the new carrier and `rules versions`
/ `rules explain` show why. Only admins and that region's managers may switch (engine.access). Each switch is
audited (`carrier.switch` / `carrier.undo`) and becomes an outbox row (`carrier_switched`) to the person who made
it, with an Undo button; its id is the switch id the CLI's `undo` takes. The degradation alert's role is told in
plain text (or, when the person has no linked chat, gets that card itself). An undo writes back the entry there was before, as another new version, once, and only while the
region's entry is still what the switch wrote.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.access import Viewer, may_switch_carrier
from engine.carriers.rules import CarrierChoice
from engine.carriers.switch import Switch, SwitchRefused, choice_json, choice_of, plan_switch, plan_undo
from engine.carriers.text import t as ct
from engine.rules import RuleSet
from engine.rules.edit import MISSING
from engine.text import t
from engine.tokens import Action, ActionToken, sign
from handlers.carrier_trends import KIND as DEGRADED
from handlers.chat import Button, ButtonPressed, Card, SendError
from handlers.chat_context import ChatContext
from handlers.chat_ports import AuditEntry, AuditLog, NewOutbox, OutboxStore, UserDirectory
from handlers.replies import toast
from handlers.rules_edit import RulesEditor, RulesEditRefused

log = logging.getLogger(__name__)
ACTIONS = frozenset({Action.CARRIER_SWITCH, Action.CARRIER_UNDO})
KIND = "carrier_switched"
NOTICE = "carrier_switch_notice"


@dataclass(slots=True)
class SwitchDeps:
    editor: RulesEditor
    rules: Callable[[], RuleSet]
    outbox: OutboxStore
    audit: AuditLog
    language: str = "zh"
    users: UserDirectory | None = None  # to tell whether the person switching has a chat to get the Undo card in


@dataclass(frozen=True, slots=True)
class SwitchResult:
    switch_id: int  # the `carrier_switched` outbox row: what Undo (button or CLI) names
    switch: Switch
    version: str  # the new rules version
    text: str
    outbox_ids: tuple[int, ...] = ()  # the switch's card and the notice to the alert's role
    undo_of: int | None = None  # an undo: the switch it reverted


def _name(carrier: str | None, lang: str) -> str:
    return ct(f"carrier.{carrier}", lang) if carrier else ct("switch.none", lang)


def _describe(c: CarrierChoice | None, fallback: CarrierChoice, lang: str) -> tuple[str, str]:
    """(primary, backup) in words; a missing entry is the default carrier."""
    eff = c or fallback
    label = _name(eff.primary, lang) + ("" if c else f"（{ct('switch.default', lang)}）" if lang == "zh"
                                          else f" ({ct('switch.default', lang)})")
    return label, _name(eff.backup, lang)


async def switch_carrier(deps: SwitchDeps, viewer: Viewer, actor: str, region: str, carrier: str, now: datetime,
                         *, source: str, alert_id: int | None = None) -> SwitchResult:
    """Make `carrier` the primary of `region` as a new rules version. Raises SwitchRefused (code `forbidden`,
    `unknown_region`, `unknown_carrier`, `already`, `invalid`)."""
    if not may_switch_carrier(viewer, region):
        raise SwitchRefused("forbidden", region=region)
    rules = deps.rules()
    plan = plan_switch(rules.model.carriers, set(rules.model.regions), region, carrier)
    return await _apply(deps, viewer, actor, plan, now, source=source, undo_of=None, alert_id=alert_id)


async def undo_switch(deps: SwitchDeps, viewer: Viewer, actor: str, switch_id: int, now: datetime, *,
                      source: str) -> SwitchResult:
    """Revert the switch `switch_id` as another new rules version. Raises SwitchRefused (`not_found`,
    `forbidden`, `undone`, `changed`, `invalid`)."""
    item = await deps.outbox.outbox_item(switch_id)
    if item is None or item.kind != KIND or item.payload.get("undo_of") is not None:
        raise SwitchRefused("not_found", id=switch_id)
    region = str(item.payload["region"])
    if not may_switch_carrier(viewer, region):
        raise SwitchRefused("forbidden", region=region)
    if await deps.outbox.existing_keys([_undo_key(switch_id)]):
        raise SwitchRefused("undone", id=switch_id)
    done = Switch(region, choice_of(item.payload.get("before")), choice_of(item.payload.get("after")))
    plan = plan_undo(deps.rules().model.carriers, done)
    return await _apply(deps, viewer, actor, plan, now, source=source, undo_of=switch_id)


def _undo_key(switch_id: int) -> str:
    return f"carrier_undo:{switch_id}"


async def _apply(deps: SwitchDeps, viewer: Viewer, actor: str, plan: Switch, now: datetime, *, source: str,
                 undo_of: int | None, alert_id: int | None = None) -> SwitchResult:
    lang = deps.language
    entry = plan.entry()
    try:
        rules = await deps.editor.set(("carriers", "regions", plan.region), entry if entry is not None else MISSING,
                                      by=f"{actor} ({'carrier undo' if undo_of else 'carrier switch'})", now=now)
    except RulesEditRefused as e:
        raise SwitchRefused("invalid", detail=str(e)) from None
    carriers = rules.model.carriers
    old, _ = _describe(plan.before, carriers.default, lang)
    new, backup = _describe(plan.after, carriers.default, lang)
    key = "switch.undone" if undo_of else "switch.done"
    text = ct(key, lang, region=plan.region, new=new, backup=backup, old=old, version=rules.version[:12], by=actor)
    payload: dict[str, Any] = {"text": text, "region": plan.region, "before": choice_json(plan.before),
                               "after": choice_json(plan.after), "version": rules.version, "by": actor,
                               "undo_of": undo_of, "alert_id": alert_id, "source": source,
                               "carrier": carriers.choice(plan.region).primary}
    dedup = _undo_key(undo_of) if undo_of else f"carrier_switch:{uuid.uuid4().hex}"
    role = carriers.degradation.notify_role
    linked = deps.users is None or bool(await deps.users.identities_of([viewer.user_id]))
    if linked:  # the card with Undo to whoever switched, the news to the alert's role
        rows = [NewOutbox(dedup, KIND, now, payload, recipient_user_id=viewer.user_id),
                NewOutbox(f"{dedup}:notice", NOTICE, now, {"text": text}, recipient_role=role)]
    else:  # switched from the CLI by someone with no chat: the alert's role gets the card (Undo stays checked)
        rows = [NewOutbox(dedup, KIND, now, payload, recipient_role=role)]
    ids = await deps.outbox.enqueue(rows, now)
    if not ids:
        raise SwitchRefused("undone", id=undo_of)
    switch_id = ids[0]
    await deps.audit.audit(AuditEntry(actor, "carrier.undo" if undo_of else "carrier.switch",
                                      f"region:{plan.region}",
                                      {"before": payload["before"], "after": payload["after"],
                                       "version": rules.version, "switch_id": switch_id, "undo_of": undo_of,
                                       "alert_id": alert_id, "source": source}), now)
    return SwitchResult(switch_id, plan, rules.version, text, tuple(ids), undo_of)


# --- cards ----------------------------------------------------------------------------------------------------------

def degraded_card(outbox_id: int, payload: Mapping[str, Any], key: bytes, lang: str) -> Card:
    """The degradation alert with a button switching its region to the backup carrier (when the rules name one)."""
    head, *rest = str(payload.get("text", "")).split("\n")
    backup = payload.get("backup")
    buttons = ()
    if backup and backup != payload.get("carrier") and payload.get("region"):  # no region: nothing to switch
        buttons = (Button(ct("switch.button", lang, carrier=_name(str(backup), lang)),
                          sign(key, Action.CARRIER_SWITCH, outbox_id)),)
    return Card(head, status="\n".join(rest), buttons=buttons)


def switched_card(outbox_id: int, payload: Mapping[str, Any], key: bytes, lang: str) -> Card:
    """A switch's confirmation with its Undo button (an undo's confirmation has none)."""
    head, *rest = str(payload.get("text", "")).split("\n")
    buttons = () if payload.get("undo_of") else (Button(ct("switch.undo_button", lang),
                                                        sign(key, Action.CARRIER_UNDO, outbox_id)),)
    return Card(head, status="\n".join(rest), buttons=buttons)


# --- buttons --------------------------------------------------------------------------------------------------------

async def on_button(event: ButtonPressed, tok: ActionToken, ctx: ChatContext) -> None:
    """Switch (on a degradation card) or Undo (on a switch's card), as the person who pressed."""
    channel, lang = ctx.channel(event.sender.platform), ctx.language
    deps: SwitchDeps | None = ctx.carrier_switch
    user = await ctx.repo.user_by_identity(event.sender.platform, event.sender.user_id)
    if deps is None or user is None or not user.is_staff:
        await toast(channel, event.callback_id, t("toast.not_linked", lang) if user is None else t("toast.no_permission", lang), alert=True)
        return
    viewer, now = Viewer(user.id, user.role, user.regions), ctx.clock.now()
    try:
        if tok.action == Action.CARRIER_SWITCH:
            alert = await deps.outbox.outbox_item(tok.id)
            if alert is None or alert.kind != DEGRADED or not alert.payload.get("backup") \
                    or not alert.payload.get("region"):
                await toast(channel, event.callback_id, ct("switch.gone", lang), alert=True)
                return
            result = await switch_carrier(deps, viewer, user.name, str(alert.payload["region"]),
                                          str(alert.payload["backup"]), now, source="chat", alert_id=tok.id)
            done = ct("switch.toast_done", lang, region=result.switch.region, carrier=_name(result.switch.after.primary
                                                                                           if result.switch.after
                                                                                           else None, lang))
            status = ct("switch.status_done", lang, by=user.name, carrier=_name(str(alert.payload["backup"]), lang))
        else:
            result = await undo_switch(deps, viewer, user.name, tok.id, now, source="chat")
            back = deps.rules().model.carriers.choice(result.switch.region).primary
            done = ct("switch.toast_undone", lang, region=result.switch.region, carrier=_name(back, lang))
            status = ct("switch.status_undone", lang, by=user.name)
    except SwitchRefused as e:
        text = e.message(lang) if e.code == "forbidden" else ct("switch.refused", lang, detail=e.message(lang))
        await toast(channel, event.callback_id, text, alert=True)
        return
    await toast(channel, event.callback_id, done)
    if event.message is not None:  # the pressed card no longer offers the button
        try:
            await channel.update(event.message, Card(done, status=status))
        except SendError as exc:
            log.warning("could not update the pressed card: %s", exc)
    if ctx.delivery is not None:
        await ctx.delivery.deliver_ids(result.outbox_ids)
