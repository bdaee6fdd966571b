"""E-mail for stall escalations: the port the notifier sends through, and the message it sends.

Chat is where people act on an alert; the e-mail is the supervisor's second copy of an escalation, so it says the
same as the card and points back to chat. Senders raise `handlers.chat` errors, classified like the chat adapters:
`RetryableSendError` (connection refused, timeout, 4xx reply) waits for the row's backoff, `PermanentSendError`
(5xx reply, e.g. 550 unknown mailbox) is recorded and an admin told.
"""

from __future__ import annotations

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
    o = view.order
    subject = t("mail.breach_subject", language, order=order_title(view), stage=label(o.stage, language),
                overdue=fmt_duration(overdue, language))
    facts = [f"{t('f.order', language)}: {o.data.external_id}",
             f"{t('f.customer', language)}: {mask_name(o.data.customer.name)} {mask_phone(o.data.customer.phone)}"]
    if not view.owner_name:  # the card names an owner it knows; else the one looked up, or that there is none
        facts.append(f"{t('f.owner', language)}: {owner or '—'}")
    if view.production_base:
        facts.append(f"{t('f.base', language)}: {view.production_base}")
    body = "\n".join([t("mail.breach_intro", language), "", card.as_text(), *facts, "", t("mail.stall_act", language)])
    return subject, body + "\n"
