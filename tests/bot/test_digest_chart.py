"""The digest chart: figures from the database, a PNG drawn with the bundled CJK font (never a system font, never
a box for a missing glyph), `orderhub report --digest --chart`, and the chart reaching Telegram and WeCom stand-ins
through the morning digest's outbox rows."""

from __future__ import annotations

import asyncio
import io
import warnings
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from matplotlib import font_manager
from matplotlib.figure import Figure
from PIL import Image
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from bot.cli.main import app
from bot.adapters.digest_chart import cjk_family, cjk_font_path, render_chart, write_chart
from bot.settings import BUNDLED_RULES
from bot.platforms.telegram.channel import TelegramChannel
from bot.platforms.wecom.channel import WecomChannel
from bot.platforms.wecom.codes import MemoryResponseCodes
from engine.digest import CategoryCount, ChartData, chart_from_payload, chart_summary
from engine.rules import load_rules
from handlers.digest import DigestJob, build_chart
from handlers.notes import category_names
from handlers.notifier import Notifier
from storage.chat_repo import SqlChatRepo
from storage.digest_repo import SqlDigestSource
from storage.models import ChatIdentityRow, ExceptionNoteRow, OrderRow, OutboxRow, UserRow
from tests.standins import telegram_api as tg_standin
from tests.standins import wecom_api as wc_standin

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RULES = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
TZ = "Asia/Shanghai"
NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
DAY = date(2026, 12, 2)
ZH_LABELS = ["待确认", "物流延误", "近 7 天每日超时", "遮光布缺料", "未分类"]


def sample(regions: tuple[str, ...] = ()) -> ChartData:
    days = [DAY - timedelta(days=6 - i) for i in range(7)]
    return ChartData(DAY, [("pending_confirm", 12), ("designing", 7), ("ordered", 30), ("in_production", 25),
                           ("shipped", 9), ("awaiting_install", 4)],
                     list(zip(days, [3, 0, 5, 2, 8, 1, 4], strict=True)),
                     [CategoryCount("物流延误", "Logistics delay", 9), CategoryCount("缺料", "Material shortage", 5),
                      CategoryCount(None, None, 2)], regions)


# --- the font ---------------------------------------------------------------------------------------------------


def test_the_font_is_the_bundled_noto_sans_sc_registered_by_path() -> None:
    path = cjk_font_path()
    assert "justmytype_intl_cjk" in path.parts and path.name == "NotoSansSC[wght].ttf" and path.stat().st_size > 1e6
    assert cjk_family() == "Noto Sans SC"
    # what matplotlib resolves for the labels' font properties is that file, not a system font or a fallback
    resolved = font_manager.findfont(font_manager.FontProperties(family=[cjk_family()]), fallback_to_default=False)
    assert Path(resolved) == path


def _glyph_warnings(family: str, text: str) -> list[str]:
    fig = Figure()
    fig.text(0.1, 0.5, text, family=family)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png")
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_chinese_renders_without_a_missing_glyph_warning_and_the_check_would_catch_boxes() -> None:
    assert _glyph_warnings(cjk_family(), "".join(ZH_LABELS)) == []
    assert _glyph_warnings("DejaVu Sans", "待确认") != []  # matplotlib's own font has no CJK: boxes + a warning


def test_render_chart_is_a_png_with_no_missing_glyphs_in_either_language() -> None:
    for lang in ("zh", "en"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            png = render_chart(sample(("华东",)), lang)
        assert [str(w.message) for w in caught if "missing from font" in str(w.message)] == []
        assert png.startswith(PNG_MAGIC)
        with Image.open(io.BytesIO(png)) as img:
            assert img.format == "PNG" and img.width >= 1000 and img.height >= 400


def test_a_chart_with_no_notes_and_many_categories_still_renders(tmp_path: Path) -> None:
    empty = ChartData(DAY, [("pending_confirm", 0)], [(DAY, 0)], [])
    assert render_chart(empty).startswith(PNG_MAGIC)
    many = ChartData(DAY, [], [], [CategoryCount(f"类别{i}" * 10, f"cat {i}", 100 - i) for i in range(30)])
    out = write_chart(many, tmp_path / "sub" / "many.png")
    assert out.read_bytes().startswith(PNG_MAGIC) and not list(out.parent.glob(".*.tmp"))
    with pytest.raises(ValueError, match="png"):
        write_chart(many, tmp_path / "chart.jpg")


def test_the_payload_round_trips_and_the_summary_has_every_number() -> None:
    c = sample(("华东", "华南"))
    assert chart_from_payload(c.as_payload()) == c
    zh = chart_summary(c, "zh")
    for piece in ("待确认 12", "已下单 30", "11-30 8", "12-02 4", "物流延误 9", "未分类 2"):
        assert piece in zh
    assert "Logistics delay 9" in chart_summary(c, "en")
    with pytest.raises((ValueError, TypeError, KeyError)):
        chart_from_payload({"day": "2026-12-02", "funnel": "nope", "stalls": [], "anomalies": []})


# --- figures from the database ----------------------------------------------------------------------------------


async def add_order(db: AsyncEngine, ext: str, stage: str, region: str = "华东") -> int:
    async with db.begin() as conn:
        res = await conn.execute(insert(OrderRow.__table__).values(
            channel="generic", external_id=ext, created_at=NOW, received_at=NOW, updated_at=NOW, customer_id="c",
            region=region, amount=Decimal("100"), items=[], custom_fields={}, payload_hash="h", stage=stage,
            stage_entered_at=NOW))
        return int(res.inserted_primary_key[0])


async def add_note(db: AsyncEngine, order_id: int, category: str | None, at: datetime) -> None:
    async with db.begin() as conn:
        await conn.execute(insert(ExceptionNoteRow.__table__).values(order_id=order_id, at=at, author="t", text="x",
                                                                     category=category, kind="exception"))


async def add_stall(db: AsyncEngine, key: str, order_id: int, at: datetime, level: int = 0) -> None:
    async with db.begin() as conn:
        await conn.execute(insert(OutboxRow.__table__).values(
            dedup_key=key, kind="stall_alert", created_at=at, due_at=at, status="sent",
            payload={"order_id": order_id, "stage": "ordered", "level": level}))


async def seed(db: AsyncEngine) -> dict[str, int]:
    ids = {"a": await add_order(db, "A", "ordered"), "b": await add_order(db, "B", "ordered"),
           "c": await add_order(db, "C", "in_production", region="华南"),
           "d": await add_order(db, "D", "completed")}
    delay = next(iter(category_names(RULES)))
    for _ in range(3):
        await add_note(db, ids["a"], delay, NOW - timedelta(days=2))
    await add_note(db, ids["c"], None, NOW - timedelta(hours=1))
    await add_note(db, ids["a"], delay, NOW - timedelta(days=9))  # older than the week: not counted
    # Shanghai days: 11-30 (two recipients of one alert = one stall), 12-02; a level-1 rung is not a new stall
    await add_stall(db, "s1", ids["a"], datetime(2026, 11, 30, 3, tzinfo=UTC))
    await add_stall(db, "s1b", ids["a"], datetime(2026, 11, 30, 3, 1, tzinfo=UTC))
    await add_stall(db, "s1-up", ids["a"], datetime(2026, 11, 30, 9, tzinfo=UTC), level=1)
    await add_stall(db, "s2", ids["c"], datetime(2026, 12, 1, 17, tzinfo=UTC))  # 12-02 01:00 local
    await add_stall(db, "s-old", ids["b"], datetime(2026, 11, 20, 3, tzinfo=UTC))  # before the week
    return ids


async def test_chart_figures_count_the_funnel_stalls_per_local_day_and_the_week_s_categories(
        db: AsyncEngine) -> None:
    await seed(db)
    names = category_names(RULES)
    c = await build_chart(SqlDigestSource(db), NOW, TZ, names)
    assert c.day == DAY
    assert dict(c.funnel) == {"pending_confirm": 0, "designing": 0, "ordered": 2, "in_production": 1,
                              "shipped": 0, "awaiting_install": 0}  # completed is not in the funnel
    assert [d for d, _ in c.stalls_per_day] == [DAY - timedelta(days=6 - i) for i in range(7)]
    assert dict(c.stalls_per_day) == {**{DAY - timedelta(days=i): 0 for i in range(7)},
                                      date(2026, 11, 30): 1, date(2026, 12, 2): 1}
    assert [x.count for x in c.anomalies_week] == [3, 1] and c.anomalies_week[1].category_zh is None
    south = await build_chart(SqlDigestSource(db), NOW, TZ, names, ["华南"])  # a manager's share
    assert dict(south.funnel)["ordered"] == 0 and sum(n for _, n in south.stalls_per_day) == 1
    assert [x.count for x in south.anomalies_week] == [1]


async def test_report_digest_chart_writes_a_png(database_url: str, redis_url: str, tmp_path: Path,
                                                db: AsyncEngine) -> None:
    await add_order(db, "R1", "designing")
    env = {"ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_REDIS_URL": redis_url,
           "ORDERHUB_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "digest.png"
    result = await asyncio.to_thread(CliRunner().invoke, app, ["report", "--digest", "--chart", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert "设计中 1" in result.output and str(out.resolve()) in result.output.replace("\n", "")
    bad = await asyncio.to_thread(CliRunner().invoke, app, ["report", "--chart", str(out)], env=env)
    assert bad.exit_code == 2 and "--digest" in bad.output
    bad = await asyncio.to_thread(CliRunner().invoke, app, ["report", "--digest", "--chart", "x.jpg"], env=env)
    assert bad.exit_code == 2 and ".png" in bad.output


# --- the chart reaches Telegram and WeCom ---------------------------------------------------------------------


async def add_linked(db: AsyncEngine, name: str, platform: str, chat: str) -> None:
    async with db.begin() as conn:
        res = await conn.execute(insert(UserRow.__table__).values(name=name, role="admin", regions=[],
                                                                  created_at=NOW, active=True))
        await conn.execute(insert(ChatIdentityRow.__table__).values(
            user_id=res.inserted_primary_key[0], platform=platform, external_id=chat, chat_id=chat, linked_at=NOW))


class Clock:
    def now(self) -> datetime:
        return NOW


async def no_sleep(_: float) -> None:
    return None


async def test_the_morning_digest_arrives_as_a_photo_on_telegram_and_an_image_on_wecom_with_the_text(
        db: AsyncEngine) -> None:
    await seed(db)
    await add_linked(db, "Li", "telegram", "5001")
    await add_linked(db, "Wang", "wecom", "wangwu")
    with tg_standin.running_standin() as tg_api, wc_standin.running_standin() as wc_api:
        tg = TelegramChannel(tg_api.token, tg_api.url, connect_timeout=2.0, read_timeout=2.0, sleep=no_sleep)
        wc = WecomChannel(wc_api.corp_id, wc_api.secret, wc_standin.AGENT_ID, wc_api.url,
                          codes=MemoryResponseCodes(), timeout=2.0, sleep=no_sleep)
        try:
            repo = SqlChatRepo(db)
            source = SqlDigestSource(db)
            job = DigestJob(source, repo, Clock(), lambda: category_names(RULES), time(8, 30), TZ,
                            chart_source=source)
            assert len(await job.run()) == 2
            notifier = Notifier(repo, {"telegram": tg, "wecom": wc}, Clock(), token_key=b"k",
                                chart_renderer=render_chart, sleep=no_sleep)
            await notifier.run_once()
        finally:
            await tg.close()
            await wc.close()
    [photo] = tg_api.photos
    assert photo["chat_id"] == "5001" and photo["data"].startswith(PNG_MAGIC)
    assert "已下单 2" in photo["caption"] and "11-30 1" in photo["caption"]  # the numbers with the picture
    [text] = tg_api.ok_calls("sendMessage")
    assert text["text"].startswith("☀️ 早报")
    [image] = wc_api.images
    assert image["touser"] == "wangwu" and image["data"].startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(image["data"])) as img:
        assert img.format == "PNG"
    sent = wc_api.ok_calls("message/send")
    assert [b["msgtype"] for b in sent] == ["image", "text", "text"]  # image, its numbers, the digest
    assert "已下单 2" in sent[1]["text"]["content"] and sent[2]["text"]["content"].startswith("☀️ 早报")


async def test_a_chart_that_cannot_render_leaves_the_digest_text_going_out(db: AsyncEngine) -> None:
    await add_linked(db, "Li", "telegram", "5001")

    def broken(_: ChartData, __: str) -> bytes:
        raise RuntimeError("no font")

    with tg_standin.running_standin() as tg_api:
        tg = TelegramChannel(tg_api.token, tg_api.url, connect_timeout=2.0, read_timeout=2.0, sleep=no_sleep)
        try:
            repo = SqlChatRepo(db)
            source = SqlDigestSource(db)
            await DigestJob(source, repo, Clock(), lambda: category_names(RULES), time(8, 30), TZ,
                            chart_source=source).run()
            await Notifier(repo, {"telegram": tg}, Clock(), token_key=b"k", chart_renderer=broken,
                           sleep=no_sleep).run_once()
        finally:
            await tg.close()
    assert tg_api.photos == []
    [text] = tg_api.ok_calls("sendMessage")
    assert text["text"].startswith("☀️ 早报")


async def test_the_demo_writes_the_chart_into_its_data_dir(db: AsyncEngine, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from bot.demo.day import write_demo_chart
    from bot.settings import Settings

    await seed(db)
    rt = SimpleNamespace(db=db, clock=Clock(), current_rules=lambda: RULES)
    settings = Settings(database_url="sqlite:///x.db", data_dir=tmp_path / "orderhub-demo")
    path = await write_demo_chart(rt, settings)  # type: ignore[arg-type]
    assert path == (tmp_path / "orderhub-demo" / "digest-chart.png").resolve()
    assert path.read_bytes().startswith(PNG_MAGIC)
