"""Status queries and staff commands; above all, a customer can never see another customer's order."""

from __future__ import annotations

from sqlalchemy import select

from engine.tokens import Action, sign
from handlers.chat import ButtonPressed, Capabilities, CommandReceived, ContactShared, Sender, TextReceived
from handlers.dispatch import handle_event
from storage.models import ChatIdentityRow, UserRow
from tests.handlers.conftest import KEY, World

ALICE, BOB = Sender("telegram", "501", "501", "Alice"), Sender("telegram", "502", "502", "Bob")
A_PHONE, B_PHONE = "13800138000", "13900139000"


async def _two_customers(w: World) -> dict[str, int]:
    ids = {
        "a1": await w.order("TM20251111-000123", phone=A_PHONE, stage="shipped", amount="3000.00",
                            tracking={"carrier": "顺丰", "waybill": "SF1234567890", "status": "运输中"}),
        "a2": await w.order("JD20251101-777", phone="+86 " + A_PHONE, stage="designing", amount="1200.00"),
        "b1": await w.order("TM20251111-000124", phone=B_PHONE, stage="in_production", name="李先生"),
        "b2": await w.order("TMB999", phone="+86" + B_PHONE, stage="ordered", name="李先生"),
    }
    return ids


def _all_text(w: World, sender: Sender) -> str:
    return "\n".join(w.channel.texts_to(sender.chat_id))


def _no_bob(w: World, sender: Sender = ALICE) -> None:
    text = _all_text(w, sender)
    assert "TM20251111-000124" not in text and "TMB999" not in text and B_PHONE not in text and "李" not in text


async def test_start_asks_for_the_contact(world: World) -> None:
    await handle_event(CommandReceived(ALICE, "start"), world.ctx)
    msg = world.channel.sent[-1].message
    assert msg.request_contact and "分享手机号" in msg.text


async def test_without_contact_sharing_start_asks_for_order_number_and_digits(world: World) -> None:
    """A platform that declares no contact sharing (WeCom) is never sent a share button: the handler asks for the
    other proof, which `_verify_by_order` then accepts."""
    world.channel.capabilities = Capabilities(contact_sharing=False)
    await _two_customers(world)
    await handle_event(CommandReceived(ALICE, "start"), world.ctx)
    msg = world.channel.sent[-1].message
    assert not msg.request_contact and "订单号 手机后四位" in msg.text and "分享手机号”按钮" not in msg.text
    await handle_event(TextReceived(ALICE, "TM20251111-000123 8000"), world.ctx)
    assert "TM20251111-000123" in world.channel.sent[-1].text
    _no_bob(world)


async def test_own_contact_shows_own_orders_only(world: World) -> None:
    await _two_customers(world)
    await handle_event(ContactShared(ALICE, "+86 138 0013 8000", "501"), world.ctx)
    text = _all_text(world, ALICE)
    assert "找到 2 个订单" in text and "TM20251111-000123" in text and "JD20251101-777" in text
    assert "✅待确认 → ✅设计中 → ✅已下单 → ✅生产中 → 🔵已发货 → ⚪待安装" in text
    assert "SF1234567890" in text and "预计完成: 2025-11-20" in text
    _no_bob(world)


async def test_someone_elses_contact_is_refused(world: World) -> None:
    await _two_customers(world)
    await handle_event(ContactShared(ALICE, B_PHONE, "502"), world.ctx)  # Bob's contact card, forwarded by Alice
    await handle_event(ContactShared(ALICE, B_PHONE, None), world.ctx)  # a contact with no user behind it
    assert all("只接受您本人的联系方式" in t for t in world.channel.texts_to("501"))
    await handle_event(TextReceived(ALICE, "TM20251111-000124 到哪了"), world.ctx)
    assert "请先验证身份" in world.channel.texts_to("501")[-1]
    async with world.engine.connect() as conn:
        assert (await conn.execute(select(ChatIdentityRow.__table__))).all() == []
    _no_bob(world)


async def test_guessing_numbers_locks_after_five_failures(world: World) -> None:
    await _two_customers(world)
    for guess in ("0000", "1111", "2222", "3333"):
        await handle_event(TextReceived(ALICE, f"TM20251111-000124 {guess}"), world.ctx)
    assert "还可尝试 1 次" in world.channel.texts_to("501")[-1]
    await handle_event(TextReceived(ALICE, "TM20251111-000199 9000"), world.ctx)  # a made-up number counts too
    assert "尝试次数过多" in world.channel.texts_to("501")[-1]
    await handle_event(TextReceived(ALICE, "TM20251111-000124 9000"), world.ctx)  # now even the right digits
    assert "尝试次数过多" in world.channel.texts_to("501")[-1]
    _no_bob(world)
    world.clock.advance(hours=1, minutes=1)  # the lock lifts after an hour
    await handle_event(TextReceived(ALICE, "TM20251111-000123 8000"), world.ctx)
    assert "TM20251111-000123" in world.channel.texts_to("501")[-1]
    _no_bob(world)


async def test_order_number_and_last_four_grants_that_order_only(world: World) -> None:
    await _two_customers(world)
    await handle_event(TextReceived(BOB, "TMB999 9000"), world.ctx)
    assert "TMB999" in world.channel.texts_to("502")[-1]
    await handle_event(TextReceived(BOB, "到哪了"), world.ctx)
    text = world.channel.texts_to("502")[-1]
    assert "TMB999" in text and "TM20251111-000124" not in text  # the other order of the same phone needs proof
    await handle_event(TextReceived(BOB, "TM20251111-000123 到哪了"), world.ctx)
    assert "没有找到" in world.channel.texts_to("502")[-1]
    assert "TM20251111-000123" not in world.channel.texts_to("502")[-1].split("您的订单")[-1]


async def test_fuzzy_matching_searches_own_orders_only(world: World) -> None:
    await _two_customers(world)
    await handle_event(ContactShared(ALICE, A_PHONE, "501"), world.ctx)
    before = len(world.channel.sent)
    await handle_event(TextReceived(ALICE, "TM2025111-000123 到哪了"), world.ctx)  # typo'd own number
    assert "📦 TM20251111-000123" in world.channel.sent[-1].text
    await handle_event(TextReceived(ALICE, "TM123 到哪了"), world.ctx)
    assert "📦 TM20251111-000123" in world.channel.sent[-1].text
    await handle_event(TextReceived(ALICE, "TM20251111-000124 到哪了"), world.ctx)  # Bob's, one digit away
    reply = world.channel.sent[-1].text
    assert "📦 TM20251111-000124" not in reply
    await handle_event(TextReceived(ALICE, "TMB999 到哪了"), world.ctx)  # Bob's exact number
    assert "📦" not in world.channel.sent[-1].text and "没有找到" in world.channel.sent[-1].text
    assert len(world.channel.sent) == before + 4
    text = _all_text(world, ALICE)
    assert "📦 TM20251111-000124" not in text and "📦 TMB999" not in text and B_PHONE not in text
    assert "李" not in text and "🔵生产中" not in text and "🔵已下单" not in text  # Bob's orders' stages


async def test_customers_cannot_use_staff_routes(world: World) -> None:
    ids = await _two_customers(world)
    await handle_event(ContactShared(ALICE, A_PHONE, "501"), world.ctx)
    for cmd, args in (("order", ("TM20251111-000124",)), ("find", ("李",)), ("stalled", ()), ("pending", ())):
        await handle_event(CommandReceived(ALICE, cmd, args), world.ctx)
        assert "仅限已绑定的员工" in world.channel.texts_to("501")[-1]
    token = sign(KEY, Action.ORDER_DETAILS, ids["b1"])  # a validly signed Details button of Bob's order
    await handle_event(ButtonPressed(ALICE, token, "cb"), world.ctx)
    assert world.channel.answers[-1].text == "找不到该记录"
    token = sign(KEY, Action.ORDER_DETAILS, ids["a1"])
    await handle_event(ButtonPressed(ALICE, token, "cb"), world.ctx)
    assert "TM20251111-000123" in world.channel.sent[-1].text
    _no_bob(world)


async def test_link_code_is_one_time(world: World) -> None:
    uid = await world.user("东区经理", "manager", ["华东"])
    code = await world.repo.create_link_code(uid, world.clock.now())
    await handle_event(CommandReceived(ALICE, "link", (code.lower(),)), world.ctx)
    assert "绑定成功：东区经理（经理）" in world.channel.texts_to("501")[-1]
    await handle_event(CommandReceived(BOB, "link", (code,)), world.ctx)
    assert "邀请码无效" in world.channel.texts_to("502")[-1]
    user = await world.repo.user_by_identity("telegram", "501")
    assert user is not None and user.name == "东区经理"
    assert await world.repo.user_by_identity("telegram", "502") is None


async def test_link_code_expires_and_guessing_locks(world: World) -> None:
    uid = await world.user("东区经理", "manager", ["华东"])
    code = await world.repo.create_link_code(uid, world.clock.now())
    world.clock.advance(days=4)
    await handle_event(CommandReceived(ALICE, "link", (code,)), world.ctx)
    assert "邀请码无效" in world.channel.texts_to("501")[-1]
    for i in range(5):
        await handle_event(CommandReceived(BOB, "link", (f"AAAA-AAA{i}",)), world.ctx)
    assert "尝试次数过多" in world.channel.texts_to("502")[-1]


async def test_staff_commands(world: World) -> None:
    ids = await _two_customers(world)
    await world.user("东区经理", "manager", ["华东"], tg="101")
    staff = Sender("telegram", "101", "101")
    await world.approval(ids["b1"])
    await handle_event(CommandReceived(staff, "help"), world.ctx)
    assert "/stalled" in world.channel.texts_to("101")[-1]
    await handle_event(CommandReceived(staff, "order", ("TM20251111-000124",)), world.ctx)
    text = world.channel.texts_to("101")[-1]
    assert "TM20251111-000124" in text and "139****9000" in text and B_PHONE not in text
    await handle_event(CommandReceived(staff, "order", ("nope",)), world.ctx)
    assert "找不到订单 nope" in world.channel.texts_to("101")[-1]
    await handle_event(CommandReceived(staff, "find", ("李",)), world.ctx)
    assert "匹配“李”的订单 2 个" in world.channel.texts_to("101")[-1]
    await handle_event(CommandReceived(staff, "pending"), world.ctx)
    assert "TM20251111-000124" in world.channel.texts_to("101")[-1]
    await handle_event(CommandReceived(Sender("telegram", "101", "101"), "stalled", ("杭州",)), world.ctx)
    assert "没有超时订单" in world.channel.texts_to("101")[-1]
    await handle_event(TextReceived(staff, "TMB999"), world.ctx)
    assert "📦 TMB999" in world.channel.texts_to("101")[-1]


async def test_pending_lists_only_what_i_may_decide(world: World) -> None:
    ids = await _two_customers(world)
    await world.user("南区经理", "manager", ["华南"], tg="202")
    await world.approval(ids["b1"], region="华东")
    await handle_event(CommandReceived(Sender("telegram", "202", "202"), "pending"), world.ctx)
    assert "没有等待您审批" in world.channel.texts_to("202")[-1]


async def test_english(world: World) -> None:
    world.ctx.language = "en"
    await handle_event(CommandReceived(ALICE, "start"), world.ctx)
    assert "Share phone number" in world.channel.sent[-1].text
    await handle_event(TextReceived(ALICE, "where is my order"), world.ctx)
    assert "Please verify first" in world.channel.sent[-1].text


async def test_customer_user_created_once(world: World) -> None:
    await handle_event(ContactShared(ALICE, A_PHONE, "501"), world.ctx)
    await handle_event(ContactShared(ALICE, A_PHONE, "501"), world.ctx)
    async with world.engine.connect() as conn:
        users = (await conn.execute(select(UserRow.__table__))).all()
    assert [(u.name, u.role) for u in users] == [("telegram:501", "customer")]
    assert "暂未找到您的订单" in world.channel.texts_to("501")[-1]


async def test_long_orders_never_exceed_4096_chars(world: World) -> None:
    await world.order("TM-BIG", phone=A_PHONE, items=200, stage="shipped")
    await world.user("东区经理", "manager", ["华东"], tg="101")
    await handle_event(ContactShared(ALICE, A_PHONE, "501"), world.ctx)
    customer = world.channel.texts_to("501")
    assert all(len(t) <= 4096 for t in customer) and "另有 190 项" in customer[-1]
    await handle_event(CommandReceived(Sender("telegram", "101", "101"), "order", ("TM-BIG",)), world.ctx)
    pages = world.channel.texts_to("101")
    assert len(pages) > 1 and all(len(p) <= 4096 for p in pages)
    assert sum(p.count("• ") for p in pages) == 200


async def test_many_identities_guessing_one_order_are_stopped_per_order_and_an_admin_is_told(world: World) -> None:
    """Issue 9 item 10: k identities used to get 5k guesses an hour on one order (10,000 possibilities)."""
    from handlers.queries import MAX_FAILED_PER_ORDER
    from storage.models import OutboxRow

    await _two_customers(world)
    guessers = [Sender("telegram", str(700 + i), str(700 + i), f"g{i}") for i in range(MAX_FAILED_PER_ORDER // 2)]
    for n, g in enumerate(guessers):  # 2 wrong guesses each: no identity reaches its own limit of 5
        for guess in (f"{2 * n:04d}", f"{2 * n + 1:04d}"):
            await handle_event(TextReceived(g, f"TM20251111-000124 {guess}"), world.ctx)
    newcomer = Sender("telegram", "799", "799", "new")
    await handle_event(TextReceived(newcomer, "TM20251111-000124 9000"), world.ctx)  # even the right digits
    assert "尝试次数过多" in world.channel.texts_to("799")[-1]
    assert "TM20251111-000124" not in _all_text(world, newcomer)
    await handle_event(TextReceived(newcomer, "TM20251111-000123 8000"), world.ctx)  # another order is not locked
    assert "TM20251111-000123" in world.channel.texts_to("799")[-1]
    async with world.engine.connect() as conn:
        notices = (await conn.execute(select(OutboxRow).where(OutboxRow.kind == "admin_notice"))).all()
    assert len(notices) == 1 and notices[0].recipient_role == "admin"
    assert "TM20251111-000124（天猫）" in notices[0].payload["text"] and "tmall:" not in notices[0].payload["text"]


async def test_guessing_across_all_orders_is_limited_globally(world: World) -> None:
    from handlers.queries import MAX_FAILED_GLOBAL, MAX_FAILED_TRIES

    await _two_customers(world)
    for i in range(MAX_FAILED_GLOBAL):  # each identity stays under its own limit, each number is made up
        g = Sender("telegram", str(1000 + i // (MAX_FAILED_TRIES - 1)), str(1000 + i // (MAX_FAILED_TRIES - 1)), "g")
        await handle_event(TextReceived(g, f"TMX{i:06d} 1234"), world.ctx)
    await handle_event(TextReceived(BOB, "TMB999 9000"), world.ctx)
    assert "尝试次数过多" in world.channel.texts_to("502")[-1]
    world.clock.advance(hours=1, minutes=1)
    await handle_event(TextReceived(BOB, "TMB999 9000"), world.ctx)
    assert "TMB999" in world.channel.texts_to("502")[-1]
