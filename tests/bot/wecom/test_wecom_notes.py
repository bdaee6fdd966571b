"""Exception notes on the WeCom stand-in, as `orderhub serve` wires them: WeCom has no reply-to, so the message a
manager sends right after an alert card is a note on that card's order; the answer is a template card with the
category and a Correct button; Correct → the category menu; a category click relabels the note."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import ExceptionNoteRow, OrderRow
from tests.bot.wecom.test_wecom_full_stack import Stack, stack  # noqa: F401 - the fixture


async def test_a_follow_up_after_a_card_is_a_note_and_its_correction_teaches(stack: Stack,  # noqa: F811
                                                                             db: AsyncEngine) -> None:
    await stack.post_order(1, "8600.00", "广州")  # an approval card to 华南's manager
    [approval] = stack.cards()
    assert approval["touser"] == "nan1"

    await stack.say("nan1", "安装后发现窗帘短了一截")
    assert await stack.drain() == 1
    async with db.connect() as conn:
        [note] = (await conn.execute(select(ExceptionNoteRow.__table__))).all()
        order_id = (await conn.execute(select(OrderRow.id).where(OrderRow.external_id == "G00000001"))).scalar_one()
    assert (note.order_id, note.text, note.author) == (order_id, "安装后发现窗帘短了一截", "南区经理")
    answer = stack.cards()[-1]
    assert answer["touser"] == "nan1" and "G00000001" in answer["main_title"]["title"]
    assert [b["text"] for b in answer["button_list"]] == ["✏️ 更正类别"]

    await stack.click("nan1", answer)
    assert await stack.drain() == 1
    menu = stack.cards()[-1]
    more = [b["text"] for b in menu["button_list"]]
    assert len(more) == 6 and more[-1] == "更多类别 ›"  # five categories a page: WeCom holds six buttons
    assert "测量错误" not in more  # the eighth of nine categories: on the second page
    await stack.click("nan1", menu, button=len(more) - 1)
    assert await stack.drain() == 1
    menu = stack.cards()[-1]
    target = next(i for i, b in enumerate(menu["button_list"]) if b["text"] == "测量错误")
    await stack.click("nan1", menu, button=target)
    assert await stack.drain() == 1
    async with db.connect() as conn:
        assert (await conn.execute(select(ExceptionNoteRow.__table__.c.category))).scalar_one() \
            == "measurement_error"
    assert any("测量错误" in t for t in stack.texts("nan1"))  # the "toast", as a short message

    await stack.say("nan1", "安装后窗帘短了一截")  # still soon after a card: a note, classified as taught
    assert await stack.drain() == 1
    async with db.connect() as conn:
        cats = (await conn.execute(select(ExceptionNoteRow.__table__.c.category)
                                   .order_by(ExceptionNoteRow.__table__.c.id))).scalars().all()
    assert cats == ["measurement_error", "measurement_error"]
