"""TelegramChannel through python-telegram-bot, over HTTP, against the Bot API stand-in."""

from __future__ import annotations

import logging
import traceback

import pytest

from bot.platforms.telegram.channel import TelegramChannel
from handlers.chat import Button, Card, ChatRef, Outgoing, PermanentSendError, RetryableSendError, SendError
from tests.standins.telegram_api import TEXT_LIMIT, Faults, TelegramStandIn, parse_html, utf16_len

CARD = Card(
    title="审批 <TM-1> & co",
    fields=(("客户", "王女士 <b>x</b>"), ("金额", "8,800.00 CNY"), ("备注", 'a "quoted" & <tag>')),
    status="待审批",
    buttons=(Button("✅ 同意", "a1.approve.sig"), Button("❌ 拒绝", "a1.reject.sig"), Button("详情", "a1.det.sig")),
)


def _secret_parts(token: str) -> tuple[str, str]:
    return token, token.partition(":")[2]


def assert_no_token(exc: BaseException, token: str) -> None:
    """The message, the repr and anything a printed traceback would show must be free of the token."""
    shown = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)
    for part in _secret_parts(token):
        assert part not in shown


async def test_send_card_escapes_html_and_attaches_buttons(channel: TelegramChannel,
                                                          telegram_api: TelegramStandIn) -> None:
    ref = await channel.send(Outgoing(chat_id="4242", card=CARD))

    [sent] = telegram_api.ok_calls("sendMessage")
    assert sent["parse_mode"] == "HTML"
    assert parse_html(sent["text"]).split("\n") == [
        "审批 <TM-1> & co", "客户: 王女士 <b>x</b>", "金额: 8,800.00 CNY", '备注: a "quoted" & <tag>', "待审批"]
    assert "<b>审批 &lt;TM-1&gt; &amp; co</b>" in sent["text"]  # our tags stay tags, the data's are escaped
    rows = sent["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for row in rows for b in row] == ["a1.approve.sig", "a1.reject.sig", "a1.det.sig"]
    assert [b["text"] for row in rows for b in row] == ["✅ 同意", "❌ 拒绝", "详情"]
    assert ref == ChatRef("telegram", "4242", "101")
    assert telegram_api.messages[("4242", 101)]["text"] == sent["text"]


async def test_plain_text_is_escaped(channel: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    await channel.send(Outgoing(chat_id="7", text="1 < 2 && 3 > 2 </b>"))
    [sent] = telegram_api.ok_calls("sendMessage")
    assert parse_html(sent["text"]) == "1 < 2 && 3 > 2 </b>"
    assert "reply_markup" not in sent


async def test_force_reply_and_contact_request(channel: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    await channel.send(Outgoing(chat_id="-1001", text="原因？", force_reply=True,
                                extra={"reply_to": "55", "placeholder": "拒绝原因"}))
    await channel.send(Outgoing(chat_id="8", text="请分享手机号", request_contact=True))
    await channel.send(Outgoing(chat_id="9", text="私聊", force_reply=True))

    in_group, contact, private = telegram_api.ok_calls("sendMessage")
    assert in_group["reply_markup"] == {"force_reply": True, "selective": True, "input_field_placeholder": "拒绝原因"}
    assert in_group["reply_parameters"]["message_id"] == 55
    keyboard = contact["reply_markup"]["keyboard"]
    assert len(keyboard) == 1 and len(keyboard[0]) == 1 and keyboard[0][0]["request_contact"] is True
    assert contact["reply_markup"]["one_time_keyboard"] is True
    # Without a message to answer, selective would hide the prompt from everybody in a group.
    assert private["reply_markup"] == {"force_reply": True, "selective": False}


async def test_200_item_card_is_split_never_over_4096_and_nothing_dropped(
        channel: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    items = "\n".join(f"SKU-{i:03d} 亚麻遮光窗帘 <定制> 280×260cm × {i % 7 + 1} & 配件" for i in range(200))
    card = Card("订单 TM-200 <大单>", (("客户", "王女士"), ("商品", items)), "待审批", (Button("同意", "t.ok"),))

    ref = await channel.send(Outgoing(chat_id="55", card=card))

    sent = telegram_api.ok_calls("sendMessage")
    assert len(sent) > 1
    assert all(utf16_len(m["text"]) <= TEXT_LIMIT for m in sent)  # raw HTML, stricter than Telegram's count
    assert all(c.status == 200 for c in telegram_api.all_calls("sendMessage"))  # the server accepted every part
    assert [("reply_markup" in m) for m in sent] == [False] * (len(sent) - 1) + [True]
    shown = "\n".join(parse_html(m["text"]) for m in sent).split("\n")
    item_lines = [line for line in shown if "SKU-" in line]
    assert len(item_lines) == 200 and item_lines[0].endswith("SKU-000 亚麻遮光窗帘 <定制> 280×260cm × 1 & 配件")
    assert item_lines[-1].startswith("SKU-199")
    assert shown[0] == "订单 TM-200 <大单>" and shown[-1] == "待审批"
    assert ref.message_id == str(100 + len(sent))  # the reference is the message holding the buttons


async def test_one_huge_line_is_cut_into_valid_messages(channel: TelegramChannel,
                                                         telegram_api: TelegramStandIn) -> None:
    await channel.send(Outgoing(chat_id="3", text="&<" * 5000 + "😀" * 3000))
    sent = telegram_api.ok_calls("sendMessage")
    assert len(sent) >= 3 and all(utf16_len(m["text"]) <= TEXT_LIMIT for m in sent)
    assert "".join(parse_html(m["text"]) for m in sent) == "&<" * 5000 + "😀" * 3000


@pytest.mark.parametrize("token", ["x" * 65, "令" * 22, ""])  # 65 bytes; 66 bytes of UTF-8; empty
async def test_button_token_over_64_bytes_is_refused_before_any_request(
        channel: TelegramChannel, telegram_api: TelegramStandIn, token: str) -> None:
    with pytest.raises(PermanentSendError, match="1-64"):
        await channel.send(Outgoing(chat_id="1", card=Card("t", buttons=(Button("b", token),))))
    assert telegram_api.all_calls("sendMessage") == []


async def test_token_of_exactly_64_bytes_is_sent(channel: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    await channel.send(Outgoing(chat_id="1", card=Card("t", buttons=(Button("b", "令" * 21 + "x"),))))
    assert len(telegram_api.ok_calls("sendMessage")) == 1


async def test_429_surfaces_the_exact_retry_after(channel: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    telegram_api.script("sendMessage", 429, "Too Many Requests: retry after 7", {"retry_after": 7})
    with pytest.raises(RetryableSendError) as info:
        await channel.send(Outgoing(chat_id="1", text="hi"))
    assert info.value.retry_after == 7
    assert_no_token(info.value, telegram_api.token)


async def test_5xx_is_retryable_without_retry_after(channel: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    telegram_api.faults = Faults(share_500=1.0)
    with pytest.raises(RetryableSendError) as info:
        await channel.send(Outgoing(chat_id="1", text="hi"))
    assert info.value.retry_after is None
    assert_no_token(info.value, telegram_api.token)


async def test_blocked_by_user_and_chat_not_found_are_permanent(channel: TelegramChannel,
                                                               telegram_api: TelegramStandIn) -> None:
    telegram_api.blocked_chats.add("10")
    telegram_api.missing_chats.add("11")
    with pytest.raises(PermanentSendError, match="blocked") as blocked:
        await channel.send(Outgoing(chat_id="10", text="hi"))
    with pytest.raises(PermanentSendError, match=r"(?i)chat not found") as missing:
        await channel.send(Outgoing(chat_id="11", text="hi"))
    for exc in (blocked.value, missing.value):
        assert not isinstance(exc, RetryableSendError)
        assert_no_token(exc, telegram_api.token)


async def test_timeout_is_retryable(telegram_api: TelegramStandIn) -> None:
    telegram_api.faults = Faults(delay_s=1.0)
    ch = TelegramChannel(telegram_api.token, telegram_api.url, connect_timeout=0.5, read_timeout=0.2)
    try:
        with pytest.raises(RetryableSendError, match="TimedOut") as info:
            await ch.send(Outgoing(chat_id="1", text="hi"))
        assert_no_token(info.value, telegram_api.token)
    finally:
        await ch.close()


async def test_unreachable_server_is_retryable_and_token_free(telegram_api: TelegramStandIn) -> None:
    ch = TelegramChannel(telegram_api.token, "http://127.0.0.1:9", connect_timeout=0.5, read_timeout=0.5)
    try:
        with pytest.raises(RetryableSendError) as info:
            await ch.send(Outgoing(chat_id="1", text="hi"))
        assert_no_token(info.value, telegram_api.token)
    finally:
        await ch.close()


async def test_rejected_token_never_appears_in_the_error(telegram_api: TelegramStandIn) -> None:
    # PTB's own InvalidToken message quotes the token it was given: "The token `…` was rejected by the server."
    wrong = "999999:WRONG-secret-token-value-xyz"
    ch = TelegramChannel(wrong, telegram_api.url, read_timeout=2)
    try:
        with pytest.raises(PermanentSendError, match="rejected") as info:
            await ch.start()
        assert_no_token(info.value, wrong)
    finally:
        await ch.close()


async def test_token_not_logged_by_http_client(telegram_api: TelegramStandIn, caplog: pytest.LogCaptureFixture
                                               ) -> None:
    caplog.set_level(logging.DEBUG)
    # httpx's own level too: a test that ran `bot.logs` setup before this one left it at WARNING (its quiet loggers)
    caplog.set_level(logging.DEBUG, logger="httpx")
    ch = TelegramChannel(telegram_api.token, telegram_api.url, read_timeout=2)
    try:
        await ch.start()
        await ch.send(Outgoing(chat_id="1", text="hi"))
    finally:
        await ch.close()
    assert "sendMessage" in caplog.text  # httpx did log the request line…
    for part in _secret_parts(telegram_api.token):
        assert part not in caplog.text  # …without the token


async def test_update_edits_the_card_and_removes_buttons(channel: TelegramChannel,
                                                         telegram_api: TelegramStandIn) -> None:
    ref = await channel.send(Outgoing(chat_id="20", card=CARD))
    await channel.update(ref, Card(CARD.title, CARD.fields, "已同意 · 张经理 · 11-11 10:00"))

    [edit] = telegram_api.ok_calls("editMessageText")
    assert (edit["chat_id"], edit["message_id"]) == ("20", ref.message_id)
    assert parse_html(edit["text"]).endswith("已同意 · 张经理 · 11-11 10:00")
    assert "reply_markup" not in edit
    assert telegram_api.messages[("20", int(ref.message_id))]["reply_markup"] is None


async def test_update_not_modified_is_success(channel: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    ref = await channel.send(Outgoing(chat_id="21", card=CARD))
    done = Card("t", status="已拒绝")
    await channel.update(ref, done)
    await channel.update(ref, done)  # Telegram answers 400 "message is not modified": the card already says so
    assert [c.status for c in telegram_api.all_calls("editMessageText")] == [200, 400]


async def test_update_of_a_vanished_message_is_permanent(channel: TelegramChannel,
                                                         telegram_api: TelegramStandIn) -> None:
    with pytest.raises(PermanentSendError, match=r"(?i)message to edit not found"):
        await channel.update(ChatRef("telegram", "21", "999"), Card("t"))


async def test_update_with_huge_card_fits_one_message(channel: TelegramChannel, telegram_api: TelegramStandIn
                                                      ) -> None:
    ref = await channel.send(Outgoing(chat_id="22", text="x"))
    fields = tuple((f"item {i}", "窗帘 " * 20) for i in range(200))
    await channel.update(ref, Card("大单", fields, "已同意", (Button("详情", "d"),)))
    [edit] = telegram_api.ok_calls("editMessageText")
    shown = parse_html(edit["text"]).split("\n")
    assert utf16_len(edit["text"]) <= TEXT_LIMIT
    assert shown[0] == "大单" and shown[-1] == "已同意" and shown[-2].startswith("… (+")
    kept = sum(1 for line in shown if line.startswith("item "))
    assert shown[-2] == f"… (+{200 - kept})" and kept > 10
    assert edit["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "d"


async def test_answer_toast_and_alert(channel: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    await channel.answer("cb-1", "无权审批此订单")
    await channel.answer("cb-2", "长" * 300, alert=True)
    first, second = telegram_api.ok_calls("answerCallbackQuery")
    assert first == {"callback_query_id": "cb-1", "text": "无权审批此订单", "show_alert": "false"}
    assert second["show_alert"] == "true" and len(second["text"]) == 200 and second["text"].endswith("…")


async def test_image_card_previews_the_image_only(channel: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    await channel.send(Outgoing(chat_id="1", card=Card("t", image_url='https://img.example/a.png?x=1&y="2"')))
    await channel.send(Outgoing(chat_id="1", text="see https://example.com"))
    with_image, plain = telegram_api.ok_calls("sendMessage")
    assert with_image["link_preview_options"]["url"] == 'https://img.example/a.png?x=1&y="2"'
    assert 'href="https://img.example/a.png?x=1&amp;y=&quot;2&quot;"' in with_image["text"]
    assert plain["link_preview_options"] == {"is_disabled": True}


async def test_every_failure_is_a_send_error(channel: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    for status, text in [(400, "Bad Request: can't parse entities"), (409, "Conflict"), (502, "Bad Gateway"),
                         (429, "Too Many Requests")]:
        telegram_api.script("sendMessage", status, text)
        with pytest.raises(SendError):
            await channel.send(Outgoing(chat_id="1", text="hi"))


def _long_card() -> Card:
    items = "\n".join(f"SKU-{i:03d} 亚麻遮光窗帘 280×260cm" for i in range(400))
    return Card("大单", (("商品", items),), "待审批", (Button("同意", "t.ok"),))


async def test_a_later_part_waits_out_429_instead_of_repeating_the_first(telegram_api: TelegramStandIn) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    ch = TelegramChannel(telegram_api.token, telegram_api.url, read_timeout=2, sleep=sleep)
    # The first part goes through; the second meets a 429 and then a 500 before it is accepted.
    telegram_api.script("sendMessage", 200)
    telegram_api.script("sendMessage", 429, "Too Many Requests: retry after 3", {"retry_after": 3})
    telegram_api.script("sendMessage", 500, "Internal Server Error")
    try:
        await ch.send(Outgoing(chat_id="1", card=_long_card()))
    finally:
        await ch.close()
    statuses = [c.status for c in telegram_api.all_calls("sendMessage")]
    assert statuses[:4] == [200, 429, 500, 200] and set(statuses[4:]) <= {200}
    assert waits == [3, 1.0]  # retry_after exactly; then the backoff for a second try (0.5 s doubling)
    texts = [parse_html(m["text"]) for m in telegram_api.ok_calls("sendMessage")]
    assert sum("SKU-000 " in t for t in texts) == 1  # the first part was not repeated
    assert sum(t.count("SKU-") for t in texts) == 400


async def test_first_part_failures_and_long_bans_go_back_to_the_caller(telegram_api: TelegramStandIn) -> None:
    async def never(seconds: float) -> None:
        raise AssertionError("not to be waited out here")

    ch = TelegramChannel(telegram_api.token, telegram_api.url, read_timeout=2, sleep=never)
    try:
        telegram_api.script("sendMessage", 429, "Too Many Requests: retry after 2", {"retry_after": 2})
        with pytest.raises(RetryableSendError) as first:
            await ch.send(Outgoing(chat_id="1", card=_long_card()))
        assert first.value.retry_after == 2 and telegram_api.ok_calls("sendMessage") == []

        telegram_api.script("sendMessage", 200)
        telegram_api.script("sendMessage", 429, "Too Many Requests: retry after 60", {"retry_after": 60})
        with pytest.raises(RetryableSendError) as later:
            await ch.send(Outgoing(chat_id="1", card=_long_card()))
        assert later.value.retry_after == 60
    finally:
        await ch.close()


async def test_group_upgraded_to_supergroup_is_permanent_and_names_the_new_chat(
        channel: TelegramChannel, telegram_api: TelegramStandIn) -> None:
    telegram_api.script("sendMessage", 400, "Bad Request: group chat was upgraded to a supergroup chat",
                        {"migrate_to_chat_id": -1001234567890})
    with pytest.raises(PermanentSendError, match="-1001234567890"):
        await channel.send(Outgoing(chat_id="-4242", text="hi"))
