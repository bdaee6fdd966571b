"""E-mail for stall escalations: the port the notifier sends through, and the message it sends.

Chat is where people act on an alert; the e-mail is the supervisor's second copy of an escalation, so it says the
same as the card and points back to chat. Senders raise `handlers.chat` errors, classified like the chat adapters:
`RetryableSendError` (connection refused, timeout, 4xx reply) waits for the row's backoff, `PermanentSendError`
(5xx reply, e.g. 550 unknown mailbox) is recorded and an admin told.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from engine.stages import label
from engine.text import fmt_duration, mask_name, mask_phone, t
from handlers.cards import order_title
from handlers.chat import Card
from handlers.chat_ports import ChatOrderView

MAIL_PLATFORM = "email"  # the message reference that records a sent e-mail: ("email", user id, outbox id)


class MailSender(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None:
        """Hand one plain-text message to the mail server; raise a `SendError` when it does not take it."""
        ...


def breach_mail(view: ChatOrderView, card: Card, overdue: timedelta, owner: str | None, language: str = "zh",
                timezone: str = "Asia/Shanghai") -> tuple[str, str]:
    """(subject, body) of the breach's copy to the supervisor: the order's facts as on the card, the owner, the
    customer only masked (a mailbox is forwarded and archived: never a full phone number), how to act in chat."""
    subject = t("mail.breach_subject", language, order=order_title(view), stage=label(view.order.stage, language),
                overdue=fmt_duration(overdue, language))
    body = "\n".join([t("mail.breach_intro", language), "", *_breach_facts(view, card, owner, language), "",
                      t("mail.stall_act", language)])
    return subject, body + "\n"


def breach_mail_batch(copies: Sequence[BreachCopy], language: str = "zh") -> tuple[str, str]:
    """One e-mail for the breaches that fall due for one supervisor together (a burst of stalls at one base): the
    mailbox gets one copy listing every order, as the chat gets one grouped card, not one message per order."""
    longest = max(c.overdue for c in copies)
    subject = t("mail.breach_batch_subject", language, n=len(copies), overdue=fmt_duration(longest, language))
    parts = [t("mail.breach_batch_intro", language, n=len(copies))]
    for c in sorted(copies, key=lambda c: -c.overdue):
        parts += ["", "—" * 20, *_breach_facts(c.view, c.card, c.owner, language)]
    return subject, "\n".join([*parts, "", t("mail.stall_act", language)]) + "\n"


@dataclass(frozen=True, slots=True)
class BreachCopy:
    """What one breach's copy says: the order, its card, how long overdue, its owner's name."""

    view: ChatOrderView
    card: Card
    overdue: timedelta
    owner: str | None


def _breach_facts(view: ChatOrderView, card: Card, owner: str | None, language: str) -> list[str]:
    o = view.order
    facts = [card.as_text(), f"{t('f.order', language)}: {o.data.external_id}",
             f"{t('f.customer', language)}: {mask_name(o.data.customer.name)} {mask_phone(o.data.customer.phone)}"]
    if not view.owner_name:  # the card names an owner it knows; else the one looked up, or that there is none
        facts.append(f"{t('f.owner', language)}: {owner or '—'}")
    if view.production_base:
        facts.append(f"{t('f.base', language)}: {view.production_base}")
    return facts
