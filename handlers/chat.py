"""Platform-neutral chat types: what handlers say and hear, whatever the chat app.

An adapter in `bot/` renders a `Card` natively (Telegram inline keyboard, WeCom template card) or falls back to
`Card.as_text()`, and turns platform input into the `Inbound*` events below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    token: str  # short opaque action token (<= 64 bytes: Telegram's callback_data limit)


@dataclass(frozen=True, slots=True)
class Card:
    title: str
    fields: tuple[tuple[str, str], ...] = ()
    status: str = ""
    buttons: tuple[Button, ...] = ()
    image_url: str | None = None

    def as_text(self) -> str:
        lines = [self.title]
        lines += [f"{k}: {v}" for k, v in self.fields]
        if self.status:
            lines.append(self.status)
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ChatRef:
    """Where a message went: enough to edit it later."""

    platform: str
    chat_id: str
    message_id: str


@dataclass(frozen=True, slots=True)
class Sender:
    platform: str
    user_id: str  # the platform's id of the person (Telegram user id, WeCom userid)
    chat_id: str  # where to answer
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class ButtonPressed:
    sender: Sender
    token: str
    callback_id: str  # to answer the press (toast)
    message: ChatRef | None = None


@dataclass(frozen=True, slots=True)
class TextReceived:
    sender: Sender
    text: str
    reply_to: ChatRef | None = None


@dataclass(frozen=True, slots=True)
class CommandReceived:
    sender: Sender
    command: str  # without the slash, lower case
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ContactShared:
    sender: Sender
    phone: str
    contact_user_id: str | None  # whose contact it is; only the sender's own counts


@dataclass(frozen=True, slots=True)
class PhotoReceived:
    """A photo (or a file sent as a document) from a person; the bytes are fetched only when a use case wants them,
    through the channel's `download(file_ref, max_bytes)` (Telegram getFile, WeCom media/get)."""

    sender: Sender
    file_ref: str  # the platform's file id / media id
    size: int | None = None  # as the platform announced it (None: unknown)
    caption: str = ""
    file_name: str = ""  # what the sender called it; never trusted for the type


class FileTooLarge(Exception):
    """A download refused for its size, before or while reading it."""


class FileUnavailable(Exception):
    """The platform could not hand over the file (expired id, a download error)."""


InboundEvent = ButtonPressed | TextReceived | CommandReceived | ContactShared | PhotoReceived


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to one chat: a card, or plain text; `force_reply` asks the client for a reply (reject reason)."""

    chat_id: str
    card: Card | None = None
    text: str = ""
    force_reply: bool = False
    request_contact: bool = False
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutgoingPhoto:
    """An image to one chat (the digest chart); `caption` carries the numbers, so the text survives without it."""

    chat_id: str
    data: bytes
    caption: str = ""
    file_name: str = "chart.png"
    mime_type: str = "image/png"


class SendError(Exception):
    """Base of what an adapter may raise; never a bare library exception."""


class RetryableSendError(SendError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Blocked by the user, chat not found, bad request: retrying will not help; record it and tell an admin."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a chat platform can do, declared by its adapter: handlers ask this, never the platform's name.

    contact_sharing: a button that shares the person's phone number (else they verify by order number + last 4).
    toasts:          a press can be answered with a pop-up (else the adapter's `answer` stands in, e.g. a short text).
    photos:          an image can be sent (else its caption goes as text).
    card_edits:      a sent card can be edited in place (else the copy stays as sent).
    replies:         an inbound message says which of ours it replies to (else a note is taken from a staff member's
                     next message soon after one of our cards: handlers.note_chat).
    group_prefixes:  chat ids of group chats start with one of these (groups get the per-minute flood limit).
    """

    contact_sharing: bool = True
    toasts: bool = True
    photos: bool = True
    card_edits: bool = True
    replies: bool = True
    group_prefixes: tuple[str, ...] = ()

    def is_group(self, chat_id: str) -> bool:
        return bool(self.group_prefixes) and chat_id.startswith(self.group_prefixes)


class ChatChannel(Protocol):
    platform: str
    capabilities: Capabilities

    async def send(self, message: Outgoing) -> ChatRef: ...

    async def update(self, ref: ChatRef, card: Card) -> None: ...

    async def answer(self, callback_id: str, text: str, alert: bool = False) -> None: ...


@runtime_checkable
class PhotoChannel(Protocol):
    """A channel that can send an image (Telegram sendPhoto, WeCom media/upload + image message)."""

    async def send_photo(self, photo: OutgoingPhoto) -> ChatRef: ...


async def send_photo_or_text(channel: ChatChannel, photo: OutgoingPhoto) -> ChatRef:
    """The photo where the platform can show one, else its caption as plain text (the numbers always arrive)."""
    if channel.capabilities.photos and isinstance(channel, PhotoChannel):
        return await channel.send_photo(photo)
    if not photo.caption:
        raise PermanentSendError("this chat platform cannot show images and the photo has no caption")
    return await channel.send(Outgoing(chat_id=photo.chat_id, text=photo.caption))
