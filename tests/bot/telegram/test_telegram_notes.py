"""Exception notes on the Telegram stand-in: a manager replies to an approval card (reply_to_message) → a note on
that card's order, answered with its category and a Correct button; Correct → the category menu; a category press
relabels the note and the menu card is edited."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from bot.wiring.notes import note_chat
from bot.platforms.telegram.runner import SECRET_HEADER, UpdateConsumer
from storage.models import ExceptionNoteRow
from tests.bot.telegram.test_telegram_e2e import (  # noqa: F401 - the fixtures
    SECRET,
    _approval_card,
    press_update,
    tg_world,
    webhook,
)
from tests.handlers.conftest import World
from tests.standins.telegram_api import BOT_USER, TelegramStandIn, parse_html

_ids = iter(range(20_000, 30_000))


def reply_update(user_id: int, chat_id: int, to_message_id: int, text: str) -> dict[str, Any]:
    chat = {"id": chat_id, "type": "private", "first_name": "m"}
    return {"update_id": next(_ids),
            "message": {"message_id": next(_ids), "date": 1731290100, "text": text,
                        "from": {"id": user_id, "is_bot": False, "first_name": f"u{user_id}"}, "chat": chat,
                        "reply_to_message": {"message_id": to_message_id, "date": 1731290000, "text": "card",
                                             "from": BOT_USER, "chat": chat}}}


def buttons(message: dict[str, Any]) -> list[dict[str, str]]:
    return [b for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


async def test_a_reply_to_a_card_is_a_classified_note_with_a_correct_button(
        tg_world: World, telegram_api: TelegramStandIn, webhook: tuple[httpx.AsyncClient, UpdateConsumer]) -> None:
    client, consumer = webhook
    tg_world.ctx.notes = note_chat(tg_world.repo, lambda: tg_world.rules)
    order_id, _, _ = await _approval_card(tg_world, telegram_api)
    card_id = max(mid for chat, mid in telegram_api.messages if chat == "101")

    resp = await client.post("/webhooks/telegram", json=reply_update(101, 101, card_id, "顺丰中转站滞留三天"),
                             headers={SECRET_HEADER: SECRET})
    assert resp.status_code == 200 and await consumer.drain() == 1
    async with tg_world.engine.connect() as conn:
        [note] = (await conn.execute(select(ExceptionNoteRow.__table__))).all()
    assert (note.order_id, note.text, note.category) == (order_id, "顺丰中转站滞留三天", "logistics_delay")
    answer = telegram_api.ok_calls("sendMessage")[-1]
    assert answer["chat_id"] == "101" and "物流延迟" in parse_html(answer["text"])
    [correct] = buttons(answer)
    assert correct["text"] == "✏️ 更正类别"

    answer_id = max(mid for chat, mid in telegram_api.messages if chat == "101")
    await client.post("/webhooks/telegram", json=press_update(101, 101, answer_id, correct["callback_data"]),
                      headers={SECRET_HEADER: SECRET})
    assert await consumer.drain() == 1
    menu = telegram_api.ok_calls("sendMessage")[-1]
    stock = next(b for b in buttons(menu) if b["text"] == "库存不足")
    menu_id = max(mid for chat, mid in telegram_api.messages if chat == "101")
    await client.post("/webhooks/telegram", json=press_update(101, 101, menu_id, stock["callback_data"]),
                      headers={SECRET_HEADER: SECRET})
    assert await consumer.drain() == 1
    async with tg_world.engine.connect() as conn:
        assert (await conn.execute(select(ExceptionNoteRow.__table__.c.category))).scalar_one() == "stock_shortage"
    assert telegram_api.ok_calls("answerCallbackQuery")[-1]["text"] == "已更正为 库存不足"
    [edit] = telegram_api.ok_calls("editMessageText")
    assert int(edit["message_id"]) == menu_id and "库存不足" in parse_html(edit["text"])
