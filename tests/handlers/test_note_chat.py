"""Exception notes from chat on the real repositories and the recording fake channel: `/note ORDER text`, a reply
to an alert card (Telegram), a follow-up message after a card (WeCom); the answer names the category and has a
Correct button whose menu relabels through the one correction use case; unsure notes reach supply chain with
three candidate buttons; trend cards list the notes; customers and other regions' managers cannot add notes."""

from __future__ import annotations

from sqlalchemy import insert, select, update

from bot.wiring.notes import note_chat
from engine.tokens import Action, verify
from handlers.chat import ButtonPressed, Capabilities, ChatRef, CommandReceived, Sender, TextReceived
from handlers.dispatch import handle_event
from storage.models import AuditRow, ChatIdentityRow, ExceptionNoteRow, NoteExampleRow, OrderRow, OutboxRow
from tests.chatfake import FakeChannel, FakeTime
from tests.handlers.conftest import KEY, Clock, World, make_world

NOTES, OUTBOX = ExceptionNoteRow.__table__, OutboxRow.__table__


def wire(world: World) -> World:
    world.ctx.notes = note_chat(world.repo, lambda: world.rules)
    return world


def sender(uid: str, platform: str = "telegram") -> Sender:
    return Sender(platform, uid, uid, uid)


async def notes(world: World) -> list:
    async with world.engine.connect() as conn:
        return (await conn.execute(select(NOTES).order_by(NOTES.c.id))).all()


async def test_note_command_is_classified_and_answered_with_a_correct_button(world: World) -> None:
    wire(world)
    await world.user("东区经理", "manager", ["华东"], tg="101")
    oid = await world.order("TM1", city="杭州")
    await handle_event(CommandReceived(sender("101"), "note", ("TM1", "顺丰", "中转站滞留三天")), world.ctx)
    [row] = await notes(world)
    assert (row.order_id, row.text, row.author, row.category) == (oid, "顺丰 中转站滞留三天", "东区经理",
                                                                  "logistics_delay")
    [sent] = world.channel.to("101")
    card = sent.message.card
    assert card is not None and card.title == "📝 已记录订单 tmall:TM1 的异常备注"
    assert ("类别", "物流延迟") in card.fields
    [button] = card.buttons
    tok = verify(KEY, button.token)
    assert (tok.action, tok.id) == (Action.NOTE_MENU, row.id)

    # Correct → the menu of the rules' categories (5 per card, then More) → a category: relabelled, audited
    await handle_event(ButtonPressed(sender("101"), button.token, "cb1"), world.ctx)
    menu = world.channel.to("101")[-1].message.card
    assert menu is not None and len(menu.buttons) == 6 and menu.buttons[-1].label == "更多类别 ›"
    await handle_event(ButtonPressed(sender("101"), menu.buttons[-1].token, "cb2"), world.ctx)
    page2 = world.channel.to("101")[-1].message.card
    assert [b.label for b in page2.buttons] == ["地址不清", "客户变更", "测量错误", "安装问题", "更多类别 ›"]  # 6th-9th, then back
    stock = next(b for b in menu.buttons if b.label == "库存不足")
    pressed = world.channel.to("101")[-2].ref
    await handle_event(ButtonPressed(sender("101"), stock.token, "cb3", pressed), world.ctx)
    [row] = await notes(world)
    assert row.category == "stock_shortage"
    assert world.channel.answers[-1].text == "已更正为 库存不足"
    edited = world.channel.last_card(pressed)
    assert edited is not None and edited.buttons == () and "库存不足" in edited.title
    async with world.engine.connect() as conn:
        ex = (await conn.execute(select(NoteExampleRow.__table__))).one()
        audit = (await conn.execute(select(AuditRow.__table__))).all()
    assert (ex.category, ex.previous, ex.corrected_by) == ("stock_shortage", "logistics_delay", "东区经理")
    assert [(a.action, a.detail["via"]) for a in audit] == [("note_relabel", "chat")]


async def test_only_staff_who_may_act_on_the_order_add_notes(world: World) -> None:
    wire(world)
    await world.user("南区经理", "manager", ["华南"], tg="201")
    await world.user("供应链", "supply_chain", tg="202")
    await world.user("王女士", "customer", tg="203", phone="13800138000")
    await world.order("TM1", city="杭州")
    await handle_event(CommandReceived(sender("201"), "note", ("TM1", "面料没货")), world.ctx)
    assert world.channel.texts_to("201") == ["您无权为订单 tmall:TM1 添加备注。"]
    await handle_event(CommandReceived(sender("202"), "note", ("TM1", "面料没货")), world.ctx)  # reads only
    assert world.channel.texts_to("202") == ["您无权为订单 tmall:TM1 添加备注。"]
    await handle_event(CommandReceived(sender("203"), "note", ("TM1", "面料没货")), world.ctx)
    assert world.channel.texts_to("203") == ["此命令仅限已绑定的员工使用。"]
    await handle_event(CommandReceived(sender("201"), "note", ("TM1",)), world.ctx)  # no text: usage
    await handle_event(CommandReceived(sender("201"), "note", ("NOPE", "x")), world.ctx)
    assert world.channel.texts_to("201")[-2:] == ["用法：/note 订单号 备注内容（也可直接回复提醒卡片）", "找不到订单 NOPE"]
    assert await notes(world) == []


async def test_a_reply_to_an_alert_card_is_a_note_on_its_order(world: World) -> None:
    wire(world)
    await world.user("东区经理", "manager", ["华东"], tg="101")
    await world.order("TM0", city="杭州")
    oid = await world.order("TM1", city="杭州")
    await world.approval(oid)
    await world.drain()
    card_ref = world.channel.to("101")[0].ref
    reply = TextReceived(sender("101"), "客户要求改颜色，先别发", reply_to=card_ref)
    await handle_event(reply, world.ctx)
    [row] = await notes(world)
    assert (row.order_id, row.text) == (oid, "客户要求改颜色，先别发")  # the card's order, not the other one
    assert world.channel.to("101")[-1].message.card.title == "📝 已记录订单 tmall:TM1 的异常备注"

    # a reply to some other message of ours is not a note: it goes on to the order lookup
    other = TextReceived(sender("101"), "这是什么", reply_to=ChatRef("telegram", "101", "999"))
    await handle_event(other, world.ctx)
    assert len(await notes(world)) == 1


async def test_wecom_follow_up_after_a_card_is_a_note_within_the_window(db, rules):  # type: ignore[no-untyped-def]
    clock = Clock()
    world = wire(make_world(db, rules, FakeChannel("wecom", capabilities=Capabilities(replies=False)), clock,
                            FakeTime(clock=clock)))
    uid = await world.user("东区经理", "manager", ["华东"])
    async with world.engine.begin() as conn:
        await conn.execute(insert(ChatIdentityRow.__table__).values(
            user_id=uid, platform="wecom", external_id="zhang", chat_id="zhang", linked_at=clock.now()))
    oid = await world.order("TM1", city="杭州")
    await world.approval(oid)
    await world.drain()
    assert len(world.channel.to("zhang")) == 1
    await handle_event(TextReceived(sender("zhang", "wecom"), "缺少安装确认单签字"), world.ctx)
    [row] = await notes(world)
    assert row.order_id == oid
    await handle_event(TextReceived(sender("zhang", "wecom"), "TM1"), world.ctx)  # just an order number: lookup
    await handle_event(TextReceived(sender("zhang", "wecom"), "收到"), world.ctx)  # an acknowledgement
    clock.advance(minutes=16)
    await handle_event(TextReceived(sender("zhang", "wecom"), "面料没货了"), world.ctx)  # too long after the card
    assert len(await notes(world)) == 1


async def test_unsure_note_reaches_supply_chain_with_three_buttons_that_relabel(world: World) -> None:
    wire(world)
    await world.user("东区经理", "manager", ["华东"], tg="101")
    await world.user("供应链", "supply_chain", tg="301")
    await world.user("供应链二", "supply_chain", tg="302")
    await world.order("TM1", city="杭州")
    await handle_event(CommandReceived(sender("101"), "note", ("TM1", "今天这单情况有点复杂")), world.ctx)
    answer = world.channel.to("101")[-1].message.card
    assert "已请供应链负责人确认类别" in answer.status
    await world.drain()
    [sent] = world.channel.to("301")
    card = sent.message.card
    assert card is not None and card.title == "🔎 异常备注待确认 · 订单 tmall:TM1"
    assert len(card.buttons) == 4 and card.buttons[-1].label == "更多类别 ›"
    choice = card.buttons[1]
    await handle_event(ButtonPressed(sender("301"), choice.token, "cb", sent.ref), world.ctx)
    [row] = await notes(world)
    assert row.category is not None and world.rules.anomaly_categories[row.category].name.zh == choice.label
    assert world.channel.last_card(sent.ref).buttons == ()
    [copy] = world.channel.to("302")  # the other lead's copy is edited too: nobody is asked twice
    assert world.channel.last_card(copy.ref) == world.channel.last_card(sent.ref)

    # a stranger pressing a copy of the card (another region's manager) is refused; nothing changes
    await world.user("南区经理", "manager", ["华南"], tg="401")
    await handle_event(ButtonPressed(sender("401"), card.buttons[0].token, "cb9"), world.ctx)
    assert world.channel.answers[-1].text == "您无权更正这条备注的类别。"
    assert (await notes(world))[0].category == row.category


async def test_trend_card_lists_the_notes_and_their_orders(world: World) -> None:
    wire(world)
    await world.user("东区经理", "manager", ["华东"], tg="101")
    await world.user("供应链", "supply_chain", tg="301")
    for i in range(5):
        await world.order(f"TM{i}", city="杭州", stage="in_production")
    async with world.engine.begin() as conn:
        await conn.execute(update(OrderRow.__table__).values(production_base="HZ"))
    for i in range(5):
        await handle_event(CommandReceived(sender("101"), "note", (f"TM{i}", f"顺丰第{i}车滞留中转站")), world.ctx)
        world.clock.advance(minutes=1)
    async with world.engine.connect() as conn:
        kinds = (await conn.execute(select(OUTBOX.c.kind))).scalars().all()
    assert "trend_alert" in kinds
    await world.drain()
    trend = next(t for t in world.channel.texts_to("301") if t.startswith("📈"))
    for i in range(5):
        assert f"TM{i}（天猫）：顺丰第{i}车滞留中转站" in trend


async def test_a_note_from_elsewhere_names_its_order_on_the_review_card(world: World) -> None:
    """Carrier exceptions call the use case with the order's id only: the card still names the order."""
    from handlers.notes import record_note
    from storage.notes_repo import SqlTrendNotes

    oid = await world.order("TM7", city="杭州")
    result = await record_note(world.repo, SqlTrendNotes(world.engine), world.repo, world.rules, oid,
                               "情况有点复杂", "carrier:sf", world.clock.now())
    assert result.review
    async with world.engine.connect() as conn:
        [row] = (await conn.execute(select(OUTBOX).where(OUTBOX.c.kind == "note_review"))).all()
    assert row.payload["order_ref"] == "tmall:TM7" and row.dedup_key == f"note_review:{result.id}"


async def test_english_cards(world: World) -> None:
    wire(world)
    world.ctx.language = world.notifier.language = "en"
    await world.user("East", "manager", ["华东"], tg="101")
    await world.user("Lead", "supply_chain", tg="301")
    await world.order("TM1", city="杭州")
    await handle_event(CommandReceived(sender("101"), "note", ("TM1", "情况有点复杂")), world.ctx)
    answer = world.channel.to("101")[-1].message.card
    assert answer.title == "📝 Exception note recorded on order tmall:TM1" and ("Category", "unclassified") in answer.fields
    assert answer.buttons[0].label == "✏️ Correct category" and "supply-chain lead" in answer.status
    await world.drain()
    review = world.channel.to("301")[-1].message.card
    assert review.title == "🔎 Note to confirm · order tmall:TM1" and review.buttons[-1].label == "More ›"
    assert {b.label for b in review.buttons[:3]} <= {
        "Logistics delay", "Stock shortage", "Missing documents", "Quality issue", "Production delay",
        "Unclear address", "Customer change", "Measurement error", "Installation issue"}
