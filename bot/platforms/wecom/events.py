"""Decrypted WeCom callback XML → one neutral inbound event (or None for what OrderHub does not act on).

- text "/cmd a b" → CommandReceived("cmd", ("a", "b")) (a full-width "／" counts: Chinese keyboards type it)
- other text → TextReceived (a reject reason, "TM123 到哪了", "order number + last 4 digits")
- event template_card_event → ButtonPressed: EventKey is our button token, TaskId names the card (the ChatRef's
  message id) and ResponseCode, the one-time code that may edit it, is stored before the core sees the press
- image → PhotoReceived: MediaId is the file reference the channel's `download` fetches with `media/get`
- everything else (enter_agent, subscribe, voice, location…) → None
wechatpy 1.8 predates template_card_event, so the XML is read with xmltodict directly.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from bot.platforms.wecom.codes import ResponseCodes
from handlers.chat import ButtonPressed, ChatRef, CommandReceived, InboundEvent, PhotoReceived, Sender, TextReceived

log = logging.getLogger(__name__)

PLATFORM = "wecom"
_COMMAND = re.compile(r"^[/／]([A-Za-z0-9_]{1,32})$")


def parse(xml: bytes | str) -> dict[str, Any]:
    """The `<xml>` element as a dict of strings; ValueError when it is not a WeCom message."""
    try:
        doc = xmltodict.parse(xml, disable_entities=True)
    except (ExpatError, ValueError, TypeError) as exc:
        raise ValueError(f"not XML: {type(exc).__name__}") from None
    data = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(data, dict) or not data.get("MsgType"):
        raise ValueError("not a WeCom message (no <xml><MsgType>)")
    return data


def dedup_id(data: dict[str, Any]) -> str:
    """WeCom redelivers a callback it got no quick answer to: messages carry MsgId, events do not (WeCom's advice:
    FromUserName + CreateTime, plus what tells two clicks in the same second apart)."""
    if data.get("MsgId"):
        return f"m:{data['MsgId']}"
    parts = [str(data.get(k) or "") for k in ("FromUserName", "CreateTime", "Event", "EventKey", "TaskId",
                                               "ResponseCode")]
    return "e:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class EventReader:
    """Turns queued callback XML into events; stores a click's response_code first (see codes.py)."""

    def __init__(self, codes: ResponseCodes, agent_id: int | None = None) -> None:
        self.codes, self.agent_id = codes, agent_id

    async def __call__(self, raw: bytes) -> InboundEvent | None:
        data = parse(raw)
        if self.agent_id is not None and data.get("AgentID") and str(data["AgentID"]) != str(self.agent_id):
            return None  # another application of the corp: not ours to answer
        user = str(data.get("FromUserName") or "").strip()
        if not user:
            return None
        sender = Sender(platform=PLATFORM, user_id=user, chat_id=user)
        kind = str(data["MsgType"]).lower()
        if kind == "event":
            return await self._event(data, sender)
        if kind == "image":
            media_id = str(data.get("MediaId") or "").strip()
            return PhotoReceived(sender=sender, file_ref=media_id) if media_id else None
        if kind != "text":
            return None
        text = str(data.get("Content") or "").strip()
        if not text:
            return None
        head, *args = text.split()
        match = _COMMAND.match(head)
        if match:
            return CommandReceived(sender=sender, command=match.group(1).lower(), args=tuple(args))
        return TextReceived(sender=sender, text=text)

    async def _event(self, data: dict[str, Any], sender: Sender) -> InboundEvent | None:
        if str(data.get("Event") or "").lower() != "template_card_event":
            return None
        token = str(data.get("EventKey") or "")
        task_id = str(data.get("TaskId") or "")
        if not token:
            return None
        code = str(data.get("ResponseCode") or "")
        if task_id and code:
            await self.codes.put(task_id, code)
        ref = ChatRef(PLATFORM, sender.chat_id, task_id) if task_id else None
        return ButtonPressed(sender=sender, token=token, callback_id=sender.user_id, message=ref)
