"""Telegram update JSON → one neutral inbound event (or None for what OrderHub does not act on).

- callback_query → ButtonPressed (the button token is callback_data; the message is the card to edit later)
- message text "/cmd@OurBot a b" → CommandReceived("cmd", ("a", "b")); a command addressed to another bot is ignored
- other text → TextReceived, with reply_to when it answers one of our messages (the reject-reason ForceReply)
- contact → ContactShared with contact.user_id: the core only trusts a contact whose user_id is the sender's own
Edited messages, channel posts, anonymous group admins (no `from`), inline queries… are ignored.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from telegram import Message, Update, User

from handlers.chat import (
    ButtonPressed,
    ChatRef,
    CommandReceived,
    ContactShared,
    InboundEvent,
    PhotoReceived,
    Sender,
    TextReceived,
)

log = logging.getLogger(__name__)

PLATFORM = "telegram"
_WANTED = ("update_id", "message", "callback_query")  # as runner.ALLOWED_UPDATES asks Telegram for
# Bot API: commands are 1-32 characters of latin letters, digits and underscores.
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{3,64}))?$")


def to_event(data: dict[str, Any], bot_username: str | None = None, bot_id: int | None = None) -> InboundEvent | None:
    """`bot_username` / `bot_id` (from getMe) tell our commands and our messages from other bots' in a group."""
    # Only what we act on is parsed: PTB's constructors raise on fields of update types they model differently
    # from the server's Bot API version (e.g. polls), and such an update must not poison the queue.
    wanted = {k: data[k] for k in _WANTED if k in data}
    if len(wanted) < 2:
        return None
    try:
        update = Update.de_json(wanted, None)
    except (TypeError, KeyError, ValueError) as exc:
        log.warning("telegram update %s not understood (%s); ignored", data.get("update_id"), exc)
        return None
    if update is None:
        return None
    if update.callback_query is not None:
        return _button(update)
    message = update.message  # not edited_message: editing an old text must not re-run a command
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    sender = _sender(message.from_user, message.chat.id)
    if message.contact is not None:
        contact = message.contact
        return ContactShared(
            sender=sender,
            phone=contact.phone_number,  # as the client sent it: with or without "+" and the country code
            contact_user_id=str(contact.user_id) if contact.user_id else None,
        )
    if message.photo:  # sizes of one photo, smallest first: the largest reads best
        best = message.photo[-1]
        return PhotoReceived(sender=sender, file_ref=best.file_id, size=best.file_size,
                             caption=(message.caption or "").strip())
    if message.document is not None:  # a photo sent "as a file": its type is checked by content later
        doc = message.document
        return PhotoReceived(sender=sender, file_ref=doc.file_id, size=doc.file_size,
                             caption=(message.caption or "").strip(), file_name=doc.file_name or "")
    text = message.text
    if not text or not text.strip():
        return None
    if text.startswith("/"):
        head, *args = text.split()
        match = _COMMAND.match(head)
        if match:
            addressee = match.group(2)
            if addressee and bot_username and addressee.lower() != bot_username.lower():
                return None  # "/help@OtherBot" in a shared group is not for us
            return CommandReceived(sender=sender, command=match.group(1).lower(), args=tuple(args))
    return TextReceived(sender=sender, text=text.strip(), reply_to=_reply_to(message, bot_id))


def _sender(user: User, chat_id: int) -> Sender:
    return Sender(platform=PLATFORM, user_id=str(user.id), chat_id=str(chat_id), display_name=user.full_name)


def _button(update: Update) -> ButtonPressed | None:
    query = update.callback_query
    assert query is not None
    if query.data is None:  # game buttons carry no data: nothing for us
        return None
    # The card's message may be "inaccessible" (older than 48 h): it still names its chat and message id.
    msg = query.message
    chat_id = str(msg.chat.id) if msg is not None else str(query.from_user.id)
    ref = ChatRef(PLATFORM, str(msg.chat.id), str(msg.message_id)) if msg is not None else None
    return ButtonPressed(sender=_sender(query.from_user, int(chat_id)), token=query.data, callback_id=query.id,
                         message=ref)


def _reply_to(message: Message, bot_id: int | None) -> ChatRef | None:
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or not replied.from_user.is_bot:
        return None
    if bot_id is not None and replied.from_user.id != bot_id:
        return None
    return ChatRef(PLATFORM, str(replied.chat.id), str(replied.message_id))
