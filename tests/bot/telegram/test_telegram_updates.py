"""Telegram update JSON → neutral events, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from bot.platforms.telegram.updates import to_event
from handlers.chat import (ButtonPressed, ChatRef, CommandReceived, ContactShared, InboundEvent, PhotoReceived, Sender,
                           TextReceived)

BOT_ID = 7000001
ALICE = {"id": 111, "is_bot": False, "first_name": "丽", "last_name": "王", "username": "alice"}
GROUP = {"id": -100200, "type": "supergroup", "title": "华东审批"}
PRIVATE = {"id": 111, "type": "private", "first_name": "丽"}
OUR_BOT = {"id": BOT_ID, "is_bot": True, "first_name": "OrderHub", "username": "OrderHubBot"}
OTHER_BOT = {"id": 999, "is_bot": True, "first_name": "Other", "username": "OtherBot"}


def message(text: str | None = None, chat: dict[str, Any] = PRIVATE, **extra: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"message_id": 5, "date": 1731290000, "chat": chat, "from": ALICE, **extra}
    if text is not None:
        msg["text"] = text
    return {"update_id": 1, "message": msg}


def alice(chat_id: str = "111") -> Sender:
    return Sender("telegram", "111", chat_id, "丽 王")


def replied(sender: dict[str, Any]) -> dict[str, Any]:
    return {"message_id": 77, "date": 1731280000, "chat": GROUP, "from": sender, "text": "请回复拒绝原因"}


CASES: list[tuple[str, dict[str, Any], InboundEvent | None]] = [
    ("button in a group",
     {"update_id": 1, "callback_query": {"id": "cbq-1", "from": ALICE, "chat_instance": "ci", "data": "tok.abc",
                                         "message": {"message_id": 42, "date": 1731280000, "chat": GROUP,
                                                     "from": OUR_BOT, "text": "card"}}},
     ButtonPressed(alice("-100200"), "tok.abc", "cbq-1", ChatRef("telegram", "-100200", "42"))),
    ("button on a message older than 48 h (inaccessible: date 0)",
     {"update_id": 1, "callback_query": {"id": "cbq-2", "from": ALICE, "chat_instance": "ci", "data": "t",
                                         "message": {"message_id": 43, "date": 0, "chat": GROUP}}},
     ButtonPressed(alice("-100200"), "t", "cbq-2", ChatRef("telegram", "-100200", "43"))),
    ("button of an inline message (no message)",
     {"update_id": 1, "callback_query": {"id": "cbq-3", "from": ALICE, "chat_instance": "ci", "data": "t",
                                         "inline_message_id": "im"}},
     ButtonPressed(alice("111"), "t", "cbq-3", None)),
    ("game button without data",
     {"update_id": 1, "callback_query": {"id": "cbq-4", "from": ALICE, "chat_instance": "ci",
                                         "game_short_name": "g"}},
     None),
    ("command with args", message("/order TM20251111-000123"),
     CommandReceived(alice(), "order", ("TM20251111-000123",))),
    ("command addressed to us, upper case", message("/Stalled@OrderHubBot 杭州", GROUP),
     CommandReceived(alice("-100200"), "stalled", ("杭州",))),
    ("command for another bot in the group", message("/help@OtherBot", GROUP), None),
    ("bare command", message("/start"), CommandReceived(alice(), "start", ())),
    ("slash but not a command", message("/ 到哪了"), TextReceived(alice(), "/ 到哪了")),
    ("free text", message("  TM123 到哪了 "), TextReceived(alice(), "TM123 到哪了")),
    ("reply to our ForceReply", message("客户取消", GROUP, reply_to_message=replied(OUR_BOT)),
     TextReceived(alice("-100200"), "客户取消", ChatRef("telegram", "-100200", "77"))),
    ("reply to another bot's message is just text", message("客户取消", GROUP, reply_to_message=replied(OTHER_BOT)),
     TextReceived(alice("-100200"), "客户取消", None)),
    ("reply to a person is just text", message("好的", GROUP, reply_to_message=replied(ALICE)),
     TextReceived(alice("-100200"), "好的", None)),
    ("own contact shared",
     message(contact={"phone_number": "+8613800138000", "first_name": "丽", "user_id": 111}),
     ContactShared(alice(), "+8613800138000", "111")),
    ("someone else's contact (forwarded card)",
     message(contact={"phone_number": "8613900139000", "first_name": "张", "user_id": 222}),
     ContactShared(alice(), "8613900139000", "222")),
    ("contact without a Telegram account",
     message(contact={"phone_number": "13700137000", "first_name": "李"}),
     ContactShared(alice(), "13700137000", None)),
    ("photo: the largest size, for a refund proof",
     message(photo=[{"file_id": "s", "file_unique_id": "u1", "width": 1, "height": 1},
                    {"file_id": "f", "file_unique_id": "u", "width": 9, "height": 9, "file_size": 70}], caption=" 退货 "),
     PhotoReceived(alice(), "f", 70, "退货")),
    ("a file sent as a document: name kept, never trusted",
     message(document={"file_id": "d", "file_unique_id": "u", "file_name": "a.jpg", "file_size": 5}),
     PhotoReceived(alice(), "d", 5, "", "a.jpg")),
    ("whitespace only", message("   "), None),
    ("edited message is ignored",
     {"update_id": 1, "edited_message": message("/order TM1")["message"] | {"edit_date": 1731290100}}, None),
    ("message from a bot is ignored", {"update_id": 1, "message": message("/help")["message"] | {"from": OTHER_BOT}},
     None),
    ("channel post (no sender)", {"update_id": 1, "channel_post": {"message_id": 1, "date": 1, "text": "x",
                                                                  "chat": {"id": -1003, "type": "channel"}}}, None),
    ("message this PTB version cannot model",
     message(poll={"id": "p", "question": "q", "options": [], "total_voter_count": 0, "is_closed": False,
                   "is_anonymous": True, "type": "regular", "allows_multiple_answers": False}), None),
    ("unknown update type", {"update_id": 1, "poll": {"id": "p", "question": "q", "options": [],
                                                     "total_voter_count": 0, "is_closed": False,
                                                     "is_anonymous": True, "type": "regular",
                                                     "allows_multiple_answers": False}}, None),
]


@pytest.mark.parametrize(("update", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_update_to_event(update: dict[str, Any], expected: InboundEvent | None) -> None:
    assert to_event(update, bot_username="OrderHubBot", bot_id=BOT_ID) == expected


def test_without_identity_any_bot_reply_counts_and_any_addressee_is_accepted() -> None:
    # Before getMe answered we cannot tell bots apart; replies to a bot still reach the reject-reason flow.
    assert to_event(message("x", GROUP, reply_to_message=replied(OTHER_BOT))) == TextReceived(
        alice("-100200"), "x", ChatRef("telegram", "-100200", "77"))
    assert to_event(message("/help@SomeBot")) == CommandReceived(alice(), "help", ())
