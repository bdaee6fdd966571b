"""`WecomChannel`: the `ChatChannel` for WeCom (企业微信) application messages, through wechatpy.

A chat is a member's userid (messages go `touser=<userid>`; "@all" and "a|b" lists are refused, so a bad chat id can
never broadcast). What differs from Telegram, and how:
- Cards: a `button_interaction` template card (see render.py). Content that does not fit the card is sent as text
  first, then the compact card with the buttons; the returned ChatRef names the card's task_id.
- Edits: `message/update_template_card` needs a one-time response_code (codes.py): the one from `message/send`, or
  the fresher one of the last click. A card whose code is used up cannot be edited (PermanentSendError). A card
  without buttons cannot be a button_interaction card: its buttons are greyed out with the status instead.
- `answer` (Telegram's toast): WeCom has none for application messages, so a non-empty answer is a short text
  message to the person who pressed (`callback_id` is their userid); an empty answer sends nothing.
- `force_reply`: plain text; the core takes the person's next message as the reply anyway.
- `request_contact`: WeCom cannot share a phone number (`capabilities`), so handlers ask for "order number + last 4
  digits" instead and never set it.
- `download` (a refund's proof photo): `media/get` with the image message's MediaId, streamed and size-capped.
- Outbox sends carry `Outgoing.extra["send_key"]` (handlers/send_attempts.py): the card's task_id is derived from it
  and every part goes with `enable_duplicate_check=1`, so a takeover's resend of an unfinished send is dropped by
  WeCom as a duplicate (identical request JSON within `duplicate_check_interval`).
- A message that WeCom accepts but lists under `invaliduser` (not in the app's visible range, left the company)
  reached nobody: PermanentSendError.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.platforms.split_send import send_later_part
from bot.platforms.wecom.client import DEFAULT_API_ROOT, WecomApi, fetch_media
from bot.platforms.wecom.codes import MemoryResponseCodes, ResponseCodes
from bot.platforms.wecom.render import REPLACE_NAME_MAX, cut, render_card, text_chunks
from handlers.chat import (
    Capabilities,
    Card,
    ChatRef,
    FileUnavailable,
    Outgoing,
    OutgoingPhoto,
    PermanentSendError,
    RetryableSendError,
    SendError,
)
from handlers.send_attempts import SEND_KEY

if TYPE_CHECKING:
    from bot.settings import WecomSettings

PLATFORM = "wecom"
DEDUP_INTERVAL_S = 1800  # duplicate_check_interval of an outbox send (WeCom's default; at most 4 h)
DEDUP_MARGIN_S = 60  # resends later than interval - margin are counted as possible duplicates
ANSWER_MAX = 200  # characters: an answer stands in for a toast, keep it short


class WecomChannel:
    platform = PLATFORM
    # No phone-number sharing and no toasts (`answer` sends a short text instead); group chats are `group:<id>`.
    capabilities = Capabilities(contact_sharing=False, toasts=False, replies=False, group_prefixes=("group:",))
    dedup_window_s = DEDUP_INTERVAL_S - DEDUP_MARGIN_S  # a resend within this is deduplicated by WeCom

    def __init__(
        self,
        corp_id: str,
        secret: str,
        agent_id: int | str,
        api_root: str = DEFAULT_API_ROOT,
        *,
        codes: ResponseCodes | None = None,
        language: str = "zh",
        timeout: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.api = WecomApi(corp_id, secret, api_root, timeout=timeout)
        self.agent_id = int(agent_id)
        self.codes: ResponseCodes = codes or MemoryResponseCodes()
        self.language = language
        self._sleep = sleep

    @classmethod
    def from_config(cls, config: WecomSettings, codes: ResponseCodes | None = None) -> WecomChannel:
        return cls(config.corp_id, config.secret.get_secret_value(), config.agent_id, config.api_url, codes=codes,
                   language=config.language)

    def __repr__(self) -> str:
        return f"WecomChannel(agent_id={self.agent_id})"

    async def close(self) -> None:
        await self.api.close()

    # --- ChatChannel ----------------------------------------------------------------------------------------------

    async def send(self, message: Outgoing) -> ChatRef:
        user = _userid(message.chat_id)
        text = message.text  # `request_contact` never comes: the capabilities say WeCom has no contact sharing
        parts: list[dict[str, Any]] = [_text(chunk) for chunk in text_chunks(text)] if text else []
        task_id = ""
        key = message.extra.get(SEND_KEY, "")
        if message.card is not None:
            task_id = f"oh-{key}" if key else f"oh-{uuid.uuid4().hex}"
            if message.card.buttons:
                rendered = render_card(message.card, task_id, self.language)
                if not rendered.complete:
                    parts += [_text(chunk) for chunk in text_chunks(message.card.as_text())]
                parts.append({"msgtype": "template_card", "template_card": rendered.template_card})
            else:  # nothing to press: a card is just text
                task_id = ""
                parts += [_text(chunk) for chunk in text_chunks(message.card.as_text())]
        if not parts:
            raise PermanentSendError("nothing to send: the message has neither text nor card")
        result: dict[str, Any] = {}
        for i, part in enumerate(parts):
            result = await (self._send(user, part, dedup=bool(key)) if i == 0
                            else send_later_part(lambda p=part: self._send(user, p, dedup=bool(key)), self._sleep))
        if task_id and result.get("response_code"):
            await self.codes.put(task_id, str(result["response_code"]))
        return ChatRef(PLATFORM, user, task_id or str(result.get("msgid", "")))

    async def send_photo(self, photo: OutgoingPhoto) -> ChatRef:
        """media/upload (type=image) then an `image` message with the media_id; the caption follows as text (an
        application image message has no caption)."""
        user = _userid(photo.chat_id)
        uploaded: dict[str, Any] = await self.api.call("media/upload", lambda c: c.media.upload(
            "image", (photo.file_name, io.BytesIO(photo.data), photo.mime_type)))
        media_id = str(uploaded.get("media_id") or "")
        if not media_id:
            raise PermanentSendError("wecom media/upload answered without a media_id")
        result = await self._send(user, {"msgtype": "image", "image": {"media_id": media_id}})
        ref = ChatRef(PLATFORM, user, str(result.get("msgid", "")))
        if photo.caption.strip():
            ref = await send_later_part(lambda: self.send(Outgoing(chat_id=photo.chat_id, text=photo.caption)),
                                        self._sleep)
        return ref

    async def download(self, file_ref: str, max_bytes: int) -> bytes:
        """A photo a member sent (its MediaId), through `media/get`; FileTooLarge past `max_bytes` (checked before
        reading when WeCom says the length), FileUnavailable when WeCom cannot hand it over (an expired media_id:
        temporary media live 3 days)."""
        try:
            return await self.api.call("media/get", lambda c: fetch_media(c, file_ref, max_bytes))
        except SendError as exc:
            raise FileUnavailable(str(exc)) from None

    async def update(self, ref: ChatRef, card: Card) -> None:
        """Edit the card in place with its newest unused response_code."""
        user, task_id = _userid(ref.chat_id), ref.message_id
        code = await self.codes.take(task_id)
        if code is None:
            raise PermanentSendError(f"wecom card {task_id} cannot be edited: no unused response_code")
        data: dict[str, Any] = {"userids": [user], "agentid": self.agent_id, "response_code": code}
        if card.buttons:
            data["template_card"] = render_card(card, task_id, self.language, for_update=True).template_card
        else:
            label = (card.status.strip().split("\n")[0] if card.status.strip() else card.title) or "✔"
            data["button"] = {"replace_name": cut(label, REPLACE_NAME_MAX)}
        try:
            await self.api.call("message/update_template_card",
                                lambda c: c.post("message/update_template_card", data=data))
        except RetryableSendError:
            await self.codes.put(task_id, code)  # not known to be spent: the retry may use it
            raise

    async def answer(self, callback_id: str, text: str, alert: bool = False) -> None:
        """No toast on WeCom: a short text message to whoever pressed (their userid is the callback id)."""
        if not text.strip() or not callback_id:
            return
        await self._send(_userid(callback_id), _text(cut(text, ANSWER_MAX)))

    # --- helpers --------------------------------------------------------------------------------------------------

    async def _send(self, user: str, msg: dict[str, Any], dedup: bool = False) -> dict[str, Any]:
        # WeCom drops a request whose JSON equals one sent within the interval, flag included: the first send and
        # a takeover's resend (same send key, so same task_id) must both carry it.
        check = {"enable_duplicate_check": 1, "duplicate_check_interval": DEDUP_INTERVAL_S} if dedup \
            else {"enable_duplicate_check": 0}
        body = {"touser": user, "agentid": self.agent_id, **check, **msg}
        result: dict[str, Any] = await self.api.call(f"message/send ({msg['msgtype']})",
                                                     lambda c: c.post("message/send", data=body))
        invalid = [u for k in ("invaliduser", "unlicenseduser") for u in str(result.get(k) or "").split("|") if u]
        if invalid:
            raise PermanentSendError(f"wecom message/send reached nobody: {', '.join(invalid)} not reachable "
                                     "(not in the app's visible range, or not a member)")
        return result



def _text(content: str) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": content}}


def _userid(chat_id: str) -> str:
    """One member's userid. WeCom reads "@all" as everyone and "a|b" as a list: never from a stored chat id."""
    user = chat_id.strip()
    if not user or user == "@all" or "|" in user:
        raise PermanentSendError(f"not a single WeCom userid: {chat_id!r}")
    return user
