"""`TelegramChannel`: the `ChatChannel` for Telegram, on python-telegram-bot's `Bot` pointed at a configurable API root.

Rendering rules (see `render.py`):
- parse_mode=HTML, every piece of text escaped; a card's buttons become an inline keyboard whose callback_data is
  the button token (Telegram allows 1-64 bytes; a longer token is a bug and is refused before any request).
- A message never exceeds 4,096 characters: longer content goes out as several messages, in order, and the
  keyboard (inline buttons, ForceReply or contact request) rides on the last one, whose reference is returned, so
  `update()` edits the message that carries the buttons. Once the first part is out, later parts wait out short
  429s/5xx themselves (a retry of the whole send would repeat the first parts). An edit cannot add messages:
  `update()` keeps the title and status and cuts fields with "… (+N)" if the new card would not fit.
- A message has one reply markup: inline buttons win over `force_reply`, which wins over `request_contact`.
- `Outgoing.extra`: `reply_to` (message id to answer; with `force_reply` it makes the prompt selective, so in a group
  only the person who pressed Reject is asked), `placeholder` (ForceReply input hint), `contact_label`.

Every failure leaves as `RetryableSendError` (429 with the server's exact retry_after, 5xx, timeouts, connection
errors) or `PermanentSendError` (blocked, chat not found, bad request), with the token scrubbed from the message.
"""

from __future__ import annotations

import asyncio
import functools
import html
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    LinkPreviewOptions,
    Message,
    ReplyKeyboardMarkup,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

from bot.platforms.split_send import send_later_part
from bot.platforms.telegram.errors import install_log_redaction, is_not_modified, translate
from bot.platforms.telegram.render import TEXT_LIMIT, render_chunks, render_single
from handlers.chat import (
    Button,
    Capabilities,
    Card,
    ChatRef,
    FileTooLarge,
    FileUnavailable,
    Outgoing,
    OutgoingPhoto,
    PermanentSendError,
    SendError,
)

if TYPE_CHECKING:
    from bot.settings import TelegramSettings

T = TypeVar("T")

DEFAULT_API_ROOT = "https://api.telegram.org"
CALLBACK_DATA_LIMIT = 64  # bytes, Bot API InlineKeyboardButton.callback_data
CALLBACK_ANSWER_LIMIT = 200  # characters, answerCallbackQuery text
BUTTONS_PER_ROW = 3
CAPTION_LIMIT = 1024  # characters, sendPhoto caption
CONTACT_LABEL = {"zh": "📱 分享我的手机号", "en": "📱 Share my phone number"}


def keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup:
    """Buttons in rows of three (Approve / Reject / Details fit one row)."""
    for b in buttons:
        size = len(b.token.encode())
        if not 1 <= size <= CALLBACK_DATA_LIMIT:
            raise PermanentSendError(f"button {b.label!r}: token is {size} bytes; Telegram allows 1-64")
    rows = [buttons[i:i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)]
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.token) for b in row] for row in rows])


class TelegramChannel:
    platform = "telegram"
    capabilities = Capabilities(group_prefixes=("-",))  # group and channel ids are negative

    def __init__(
        self,
        token: str,
        api_root: str = DEFAULT_API_ROOT,
        *,
        language: str = "zh",
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        pool_size: int = 16,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not token:
            raise ValueError("a Telegram bot token is required")
        self._token = token
        self.language = language
        self._sleep = sleep
        install_log_redaction(token)
        root = api_root.rstrip("/")
        # PTB appends the token to base_url: requests go to <root>/bot<token>/<method>, as the Bot API expects.
        self._requests = (
            HTTPXRequest(connection_pool_size=pool_size, connect_timeout=connect_timeout,
                         read_timeout=read_timeout, write_timeout=read_timeout, pool_timeout=read_timeout),
            # getUpdates gets its own connection: a long poll must not hold one that sends need. PTB adds the
            # long-poll timeout to this read timeout by itself.
            HTTPXRequest(connection_pool_size=1, connect_timeout=connect_timeout, read_timeout=read_timeout,
                         write_timeout=read_timeout),
        )
        self.bot = Bot(
            token,
            base_url=f"{root}/bot",
            base_file_url=f"{root}/file/bot",
            request=self._requests[0],
            get_updates_request=self._requests[1],
        )
        self.username: str | None = None
        self.bot_id: int | None = None

    @classmethod
    def from_config(cls, config: TelegramSettings) -> TelegramChannel:
        return cls(config.token.get_secret_value(), config.api_url, language=config.language)

    def __repr__(self) -> str:  # never the token
        return f"TelegramChannel(username={self.username!r})"

    async def call(self, what: str, call: Awaitable[T]) -> T:
        """Await a PTB coroutine, its errors translated to send errors with the token scrubbed."""
        try:
            return await call
        except TelegramError as exc:
            raise translate(exc, what, self._token) from None

    async def start(self) -> None:
        """Open the HTTP pools and learn who we are (getMe): the username tells our commands from other bots'."""
        await self.call("getMe", self.bot.initialize())
        self.username, self.bot_id = self.bot.username, self.bot.id

    async def close(self) -> None:
        await self.bot.shutdown()
        # Bot.shutdown() skips the HTTP pools when start() never ran (the CLI sends without getMe): close them here.
        for request in self._requests:
            await request.shutdown()

    # --- ChatChannel ----------------------------------------------------------------------------------------------

    async def send(self, message: Outgoing) -> ChatRef:
        chunks = render_chunks(message.card, message.text, TEXT_LIMIT)
        if not chunks:
            raise PermanentSendError("nothing to send: the message has neither text nor card")
        markup = self._markup(message)
        reply_to = message.extra.get("reply_to", "")
        reply_to = reply_to if reply_to.isdigit() else ""  # a message id, or nothing (never a failed send)
        last: Message | None = None
        for i, chunk in enumerate(chunks):
            final = i == len(chunks) - 1
            send = functools.partial(
                self.bot.send_message,
                chat_id=message.chat_id,
                text=chunk,
                parse_mode=ParseMode.HTML,
                reply_markup=markup if final else None,
                link_preview_options=self._preview(message.card),
                reply_parameters=ReplyParameters(int(reply_to), allow_sending_without_reply=True)
                if reply_to and i == 0 else None,
            )
            last = await (self.call("sendMessage", send()) if i == 0
                          else send_later_part(lambda s=send: self.call("sendMessage", s()), self._sleep))
        assert last is not None
        return ChatRef(self.platform, str(last.chat.id), str(last.message_id))

    async def send_photo(self, photo: OutgoingPhoto) -> ChatRef:
        """sendPhoto with the bytes uploaded (multipart); a caption longer than Telegram's 1,024 goes as text after."""
        caption, rest = _split_caption(photo.caption)
        message = await self.call("sendPhoto", self.bot.send_photo(
            chat_id=photo.chat_id, photo=InputFile(photo.data, filename=photo.file_name),
            caption=html.escape(caption) or None, parse_mode=ParseMode.HTML))
        if rest:
            return await send_later_part(lambda: self.send(Outgoing(chat_id=photo.chat_id, text=rest)), self._sleep)
        return ChatRef(self.platform, str(message.chat.id), str(message.message_id))

    async def download(self, file_ref: str, max_bytes: int) -> bytes:
        """A file a person sent (getFile, then the file URL), refused past `max_bytes` before it is fetched when
        Telegram announces the size, and while reading otherwise."""
        try:
            f = await self.call("getFile", self.bot.get_file(file_ref))
        except SendError as exc:
            raise FileUnavailable(str(exc)) from None
        if f.file_size is not None and f.file_size > max_bytes:
            raise FileTooLarge(f"{f.file_size} bytes")
        try:
            data = bytes(await f.download_as_bytearray())
        except TelegramError as exc:
            raise FileUnavailable(translate(exc, "download", self._token).args[0]) from None
        if len(data) > max_bytes:
            raise FileTooLarge(f"{len(data)} bytes")
        return data

    async def update(self, ref: ChatRef, card: Card) -> None:
        """Edit the message in place; buttons not on the new card disappear (no reply_markup removes them)."""
        markup = keyboard(card.buttons) if card.buttons else None
        try:
            await self.bot.edit_message_text(
                chat_id=ref.chat_id,
                message_id=int(ref.message_id),
                text=render_single(card, TEXT_LIMIT),
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                link_preview_options=self._preview(card),
            )
        except TelegramError as exc:
            if is_not_modified(exc):  # a second decision-copy edit, or a replayed outbox row: already shown
                return
            raise translate(exc, "editMessageText", self._token) from None

    async def answer(self, callback_id: str, text: str, alert: bool = False) -> None:
        """The toast (or alert box with `alert`) after a button press; Telegram shows at most 200 characters."""
        if len(text) > CALLBACK_ANSWER_LIMIT:
            text = text[: CALLBACK_ANSWER_LIMIT - 1] + "…"
        await self.call("answerCallbackQuery",
                         self.bot.answer_callback_query(callback_id, text=text or None, show_alert=alert))

    # --- helpers --------------------------------------------------------------------------------------------------

    def _markup(self, message: Outgoing) -> InlineKeyboardMarkup | ForceReply | ReplyKeyboardMarkup | None:
        if message.card and message.card.buttons:
            return keyboard(message.card.buttons)
        if message.force_reply:
            # selective=True without a reply target would show the prompt to nobody in a group.
            return ForceReply(selective=message.extra.get("reply_to", "").isdigit(),
                              input_field_placeholder=message.extra.get("placeholder") or None)
        if message.request_contact:
            # A contact-request button only works in private chats; Telegram sends the user's own contact back.
            label = message.extra.get("contact_label") or CONTACT_LABEL.get(self.language, CONTACT_LABEL["en"])
            return ReplyKeyboardMarkup([[KeyboardButton(label, request_contact=True)]],
                                       resize_keyboard=True, one_time_keyboard=True)
        return None

    @staticmethod
    def _preview(card: Card | None) -> LinkPreviewOptions:
        # Order notes and addresses may contain URLs: no previews, except the card's own image shown on top.
        if card and card.image_url:
            return LinkPreviewOptions(url=card.image_url, prefer_large_media=True, show_above_text=True)
        return LinkPreviewOptions(is_disabled=True)


def _split_caption(text: str) -> tuple[str, str]:
    """(caption, rest): whole lines into the caption while they fit; an over-long first line is cut with "…"."""
    if len(text) <= CAPTION_LIMIT:
        return text, ""
    lines = text.split("\n")
    head: list[str] = []
    for i, line in enumerate(lines):
        if len("\n".join([*head, line])) > CAPTION_LIMIT:
            return ("\n".join(head), "\n".join(lines[i:])) if head else (line[:CAPTION_LIMIT - 1] + "…", text)
        head.append(line)
    return text, ""
