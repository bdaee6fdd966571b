"""WecomChannel through wechatpy against the WeCom API stand-in: rendering, limits, token refresh, error classes."""

from __future__ import annotations

import logging

import pytest

from bot.platforms.wecom.channel import WecomChannel
from bot.platforms.wecom.codes import MemoryResponseCodes
from bot.platforms.wecom.render import BUTTON_KEY_MAX, SUBTITLE_MAX, TEXT_LIMIT_BYTES, render_card, text_chunks
from handlers.chat import Button, Card, ChatRef, Outgoing, PermanentSendError, RetryableSendError
from tests.standins.wecom_api import AGENT_ID, Faults, WecomStandIn

SMALL = Card("审批请求 · 订单 G1", (("客户", "王* 138****0001"), ("金额", "¥8,600.00")), "⏳ 待审批",
             (Button("批准", "tok-approve"), Button("驳回", "tok-reject"), Button("详情", "tok-details")))


async def test_a_small_card_is_one_button_interaction_template_card(wecom: WecomChannel,
                                                                    wecom_api: WecomStandIn) -> None:
    ref = await wecom.send(Outgoing(chat_id="zhangsan", card=SMALL))
    [sent] = wecom_api.ok_calls("message/send")
    assert sent["touser"] == "zhangsan" and sent["agentid"] == AGENT_ID and sent["msgtype"] == "template_card"
    card = sent["template_card"]
    assert card["card_type"] == "button_interaction"
    assert card["main_title"] == {"title": "审批请求 · 订单 G1", "desc": "⏳ 待审批"}
    assert card["horizontal_content_list"] == [{"keyname": "客户", "value": "王* 138****0001"},
                                               {"keyname": "金额", "value": "¥8,600.00"}]
    assert [(b["text"], b["key"]) for b in card["button_list"]] == [("批准", "tok-approve"), ("驳回", "tok-reject"),
                                                                    ("详情", "tok-details")]
    assert ref == ChatRef("wecom", "zhangsan", card["task_id"])
    assert await wecom.codes.take(card["task_id"]) is not None  # the send's response_code, kept for an edit


async def test_long_card_goes_out_as_text_then_card_within_limits_and_nothing_dropped(
        wecom: WecomChannel, wecom_api: WecomStandIn) -> None:
    items = "\n".join(f"• 亚麻遮光窗帘 #{i} ×2 @ ¥1,890.00 (CUR-LINEN-{i:03d}) [width_cm=280]" for i in range(120))
    card = Card("审批请求 · 订单 TM20251111-000200 这个标题特别长超过了三十六个字的限制需要截断", (
        ("客户", "王* 138****0001"), ("城市", "上海 (华东)"), ("自定义字段", "install_date: 2025-11-20"),
        ("商品", "\n" + items)), "⏳ 待审批（第 1 级 · 经理 · 华东）\n⏫ 已升级", SMALL.buttons)
    ref = await wecom.send(Outgoing(chat_id="zhangsan", card=card))
    calls = wecom_api.all_calls("message/send")
    assert all(c.errcode == 0 and c.http_status == 200 for c in calls)  # no limit of the stand-in was hit
    texts = [c.body["text"]["content"] for c in calls if c.body["msgtype"] == "text"]
    assert len(texts) > 1 and all(len(x.encode()) <= TEXT_LIMIT_BYTES for x in texts)
    assert "\n".join(texts) == card.as_text()  # every character of the card, in order
    last = calls[-1].body
    assert last["msgtype"] == "template_card" and ref.message_id == last["template_card"]["task_id"]
    tc = last["template_card"]
    assert len(tc["main_title"]["title"]) <= 36 and tc["sub_title_text"] == "完整内容见上一条消息"
    assert len(tc["button_list"]) == 3  # the buttons ride on the last message


def test_text_chunks_respect_the_byte_limit_and_keep_everything() -> None:
    one_line = "订" * 3000  # 9,000 bytes in a single line: cut between characters
    lines = "\n".join(f"第 {i} 行：" + "内容" * 20 for i in range(200))
    for text in (one_line, lines, "a\n\n\nb"):
        chunks = text_chunks(text)
        assert all(len(c.encode()) <= TEXT_LIMIT_BYTES for c in chunks)
        assert "".join(chunks) == text.replace("\n", "") if text is one_line else "\n".join(chunks) == text


def test_card_edit_cuts_overflow_into_the_subtitle_with_a_count() -> None:
    fields = tuple((f"字段{i}号很长", "值" * 50) for i in range(10))
    rendered = render_card(Card("T", fields, "", SMALL.buttons), "task-1", for_update=True)
    sub = rendered.template_card["sub_title_text"]
    assert not rendered.complete and len(sub) <= SUBTITLE_MAX and sub.endswith(")") and "… (+" in sub


def test_wecom_declares_what_it_cannot_do() -> None:
    """Handlers read these instead of the platform's name: no share-contact button, no toast, `group:` chats."""
    caps = WecomChannel.capabilities
    assert not caps.contact_sharing and not caps.toasts and caps.photos and caps.card_edits
    assert caps.is_group("group:wr123") and not caps.is_group("zhangsan") and not caps.is_group("-100")


async def test_update_uses_the_newest_response_code_once(wecom: WecomChannel, wecom_api: WecomStandIn) -> None:
    ref = await wecom.send(Outgoing(chat_id="zhangsan", card=SMALL))
    await wecom.codes.put(ref.message_id, wecom_api.click_code(ref.message_id))  # what a click brings
    decided = Card(SMALL.title, SMALL.fields, "✅ 已批准 · 张经理", (Button("详情", "tok-order"),))
    await wecom.update(ref, decided)
    [edit] = wecom_api.ok_calls("message/update_template_card")
    assert edit["userids"] == ["zhangsan"] and edit["response_code"].startswith("rc-click-")
    assert edit["template_card"]["main_title"]["desc"] == "✅ 已批准 · 张经理"
    assert wecom_api.cards[ref.message_id]["card"]["button_list"] == [{"text": "详情", "style": 1, "key": "tok-order"}]
    with pytest.raises(PermanentSendError, match="no unused response_code"):  # the code is spent
        await wecom.update(ref, decided)


async def test_update_without_buttons_greys_the_buttons_out_with_the_status(wecom: WecomChannel,
                                                                           wecom_api: WecomStandIn) -> None:
    ref = await wecom.send(Outgoing(chat_id="zhangsan", card=SMALL))
    await wecom.update(ref, Card(SMALL.title, SMALL.fields, "➡️ 已推进到「设计中」"))
    assert wecom_api.cards[ref.message_id]["replaced"] == "➡️ 已推进到「设计中」"


async def test_a_retryable_failed_update_keeps_its_code(wecom: WecomChannel, wecom_api: WecomStandIn) -> None:
    ref = await wecom.send(Outgoing(chat_id="zhangsan", card=SMALL))
    wecom_api.script("message/update_template_card", http_status=500)
    with pytest.raises(RetryableSendError):
        await wecom.update(ref, SMALL)
    await wecom.update(ref, SMALL)  # the retry still has the code
    assert len(wecom_api.ok_calls("message/update_template_card")) == 1


async def test_answer_is_a_short_text_to_the_presser_and_empty_sends_nothing(wecom: WecomChannel,
                                                                            wecom_api: WecomStandIn) -> None:
    await wecom.answer("lisi", "")
    await wecom.answer("lisi", "无权审批此订单", alert=True)
    [sent] = wecom_api.ok_calls("message/send")
    assert (sent["touser"], sent["text"]["content"]) == ("lisi", "无权审批此订单")


async def test_expired_token_is_refreshed_once_and_the_call_repeated(wecom: WecomChannel,
                                                                    wecom_api: WecomStandIn) -> None:
    await wecom.send(Outgoing(chat_id="zhangsan", text="one"))
    wecom_api.expire_tokens()
    await wecom.send(Outgoing(chat_id="zhangsan", text="two"))
    assert len(wecom_api.all_calls("gettoken")) == 2
    assert [c.errcode for c in wecom_api.all_calls("message/send")] == [0, 42001, 0]
    # a token that stays bad is not refreshed forever: one refresh, then a send error
    wecom_api.script("message/send", 40014, "invalid access_token")
    wecom_api.script("message/send", 40014, "invalid access_token")
    with pytest.raises(PermanentSendError, match="40014"):
        await wecom.send(Outgoing(chat_id="zhangsan", text="three"))
    assert len(wecom_api.all_calls("gettoken")) == 3


async def test_the_token_is_cached_between_sends(wecom: WecomChannel, wecom_api: WecomStandIn) -> None:
    for i in range(3):
        await wecom.send(Outgoing(chat_id="zhangsan", text=str(i)))
    assert len(wecom_api.all_calls("gettoken")) == 1
    assert all(c.query["access_token"] in wecom_api.tokens for c in wecom_api.all_calls("message/send"))


@pytest.mark.parametrize(("errcode", "status", "kind"), [
    (45009, 200, RetryableSendError), (-1, 200, RetryableSendError), (0, 500, RetryableSendError),
    (0, 502, RetryableSendError), (81013, 200, PermanentSendError), (60111, 200, PermanentSendError),
    (40003, 200, PermanentSendError), (301002, 200, PermanentSendError), (0, 403, PermanentSendError),
])
async def test_errors_are_classified(wecom: WecomChannel, wecom_api: WecomStandIn, errcode: int, status: int,
                                     kind: type[Exception]) -> None:
    wecom_api.script("message/send", errcode, "scripted", http_status=status)
    with pytest.raises(kind) as info:
        await wecom.send(Outgoing(chat_id="zhangsan", text="hi"))
    if errcode == 45009:
        assert info.value.retry_after == 1.0  # type: ignore[attr-defined]


async def test_unknown_user_and_invalid_chat_ids_are_permanent(wecom: WecomChannel, wecom_api: WecomStandIn) -> None:
    wecom_api.users = {"zhangsan"}
    with pytest.raises(PermanentSendError, match="81013"):
        await wecom.send(Outgoing(chat_id="ghost", text="hi"))
    for bad in ("@all", "a|b", " "):
        with pytest.raises(PermanentSendError, match="single WeCom userid"):
            await wecom.send(Outgoing(chat_id=bad, text="hi"))
    assert [c.body["touser"] for c in wecom_api.all_calls("message/send")] == ["ghost"]  # never broadcast


async def test_a_send_that_lists_the_user_as_invalid_is_permanent(wecom: WecomChannel, wecom_api: WecomStandIn,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    original = wecom_api._m_message_send
    monkeypatch.setattr(wecom_api, "_m_message_send", lambda body: {**original(body), "invaliduser": body["touser"]})
    with pytest.raises(PermanentSendError, match="reached nobody"):
        await wecom.send(Outgoing(chat_id="left-company", text="hi"))


async def test_timeouts_are_retryable(wecom_api: WecomStandIn) -> None:
    ch = WecomChannel(wecom_api.corp_id, wecom_api.secret, AGENT_ID, wecom_api.url, timeout=0.2)
    await ch.send(Outgoing(chat_id="zhangsan", text="warm the token"))
    wecom_api.faults = Faults(delay_s=1.0)
    with pytest.raises(RetryableSendError, match="Timeout"):
        await ch.send(Outgoing(chat_id="zhangsan", text="slow"))
    await ch.close()


async def test_oversized_button_keys_are_refused_before_any_request(wecom: WecomChannel,
                                                                   wecom_api: WecomStandIn) -> None:
    card = Card("T", (), "", (Button("x", "k" * (BUTTON_KEY_MAX + 1)),))
    with pytest.raises(PermanentSendError, match="1-1024"):
        await wecom.send(Outgoing(chat_id="zhangsan", card=card))
    assert wecom_api.all_calls("message/send") == []


async def test_no_secret_or_token_in_errors_or_logs(wecom_api: WecomStandIn, caplog: pytest.LogCaptureFixture
                                                    ) -> None:
    caplog.set_level(logging.DEBUG)
    ch = WecomChannel(wecom_api.corp_id, wecom_api.secret, AGENT_ID, wecom_api.url, timeout=0.2,
                      codes=MemoryResponseCodes())
    await ch.send(Outgoing(chat_id="zhangsan", text="ok"))
    [token] = wecom_api.tokens
    errors: list[str] = []
    root = ch.api.client.API_BASE_URL
    ch.api.client.API_BASE_URL = "http://127.0.0.1:9/cgi-bin/"  # refused: requests quotes the URL, token and all
    with pytest.raises(RetryableSendError) as refused:
        await ch.send(Outgoing(chat_id="zhangsan", text="unreachable"))
    errors.append(str(refused.value))
    ch.api.client.API_BASE_URL = root
    wecom_api.faults = Faults()
    wecom_api.script("message/send", 42001, f"access_token expired, hint: {token}")
    wecom_api.script("gettoken", 0, http_status=500)
    with pytest.raises(RetryableSendError) as refresh:
        await ch.send(Outgoing(chat_id="zhangsan", text="x"))
    errors.append(str(refresh.value))
    bad = WecomChannel(wecom_api.corp_id, wecom_api.secret[:-1] + "X", AGENT_ID, wecom_api.url, timeout=2.0)
    with pytest.raises(PermanentSendError) as wrong_secret:
        await bad.send(Outgoing(chat_id="zhangsan", text="x"))
    errors.append(str(wrong_secret.value))
    await ch.close()
    await bad.close()
    assert "access_token=<redacted>" in errors[0]
    for text in [*errors, caplog.text, repr(ch), repr(ch.api)]:
        assert wecom_api.secret not in text and wecom_api.secret[:-1] not in text and token not in text


async def test_a_later_part_waits_out_a_rate_limit_itself_so_no_part_repeats(wecom: WecomChannel,
                                                                            wecom_api: WecomStandIn) -> None:
    text = "\n".join(f"第 {i} 行：" + "内容" * 30 for i in range(60))
    wecom_api.script("message/send")  # the first part goes through
    wecom_api.script("message/send", 45009, "api freq out of limit")  # the second is refused once
    await wecom.send(Outgoing(chat_id="zhangsan", text=text))
    parts = [c["text"]["content"] for c in wecom_api.ok_calls("message/send")]
    assert "\n".join(parts) == text and len(parts) == len(set(parts)) > 2
