"""Shipping and tracking end to end on the real composition root: API ship → carrier stand-in → push webhook →
tracking stream → worker → database → order moved, notes, outbox; on whichever backends the session runs with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from bot.wiring.runtime import Runtime
from handlers.orders import transition
from storage import keys
from storage.models import ExceptionNoteRow, OutboxRow, StageTransitionRow, TrackingEventRow
from storage.orders_repo import SqlOrders
from tests.conftest import SECRETS
from tests.factories import order_json, signed
from tests.standins import carriers as c
from tests.standins.carriers import CarrierStandIn, running_carriers
from webhooks.app import create_app


@pytest.fixture(scope="module")
def standin() -> Iterator[CarrierStandIn]:
    with running_carriers() as s:
        yield s


@pytest.fixture
def settings(settings: Settings, standin: CarrierStandIn) -> Settings:
    """The session's settings pointed at the carrier stand-in (reset for each test): conftest's `runtime` runs on
    them."""
    standin.orders.clear()
    standin.faults = c.Faults()
    return settings.model_copy(update={
        "sf_api_url": standin.url, "sf_partner_id": c.SF_PARTNER, "sf_checkword": SecretStr(c.SF_CHECKWORD),
        "sf_monthly_card": c.SF_CARD, "deppon_api_url": standin.url, "deppon_company_code": c.DP_COMPANY,
        "deppon_appkey": SecretStr(c.DP_APPKEY), "kuaidi100_api_url": standin.url,
        "kuaidi100_key": SecretStr(c.K100_KEY), "kuaidi100_customer": c.K100_CUSTOMER,
        "kuaidi100_salt": SecretStr(c.K100_SALT), "carrier_timeout_s": 2.0})


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    """conftest's real composition root, on the carrier stand-in's settings."""
    return runtime


@pytest.fixture
async def api(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(rt.app_services())
    _, token = await rt.users.add("ops", "admin", [], None, None, datetime.now(UTC))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


async def in_production(rt: Runtime, api: httpx.AsyncClient, i: int = 1, city: str = "广州") -> int:
    """An order through intake, moved to in_production (ready to ship); its customer is a user."""
    body, headers = signed(SECRETS["generic"], order_json(i, amount=Decimal("1200.00"), city=city))
    assert (await api.post("/webhooks/orders/generic", content=body, headers=headers)).status_code == 202
    await rt.intake_worker().run(burst=True)
    orders = SqlOrders(rt.db)
    detail = await orders.get(f"generic:G{i:08d}")
    assert detail is not None
    for stage in ("ordered", "in_production"):
        await transition(orders, rt.current_rules(), str(detail.order.id), stage, "", "ops", datetime.now(UTC))
    await rt.users.add(f"customer{i}", "customer", [], detail.order.data.customer.phone, None, datetime.now(UTC))
    return detail.order.id


async def push(api: httpx.AsyncClient, carrier: str, form: dict[str, str]) -> httpx.Response:
    return await api.post(f"/webhooks/logistics/{carrier}", data=form)


async def rows(db: AsyncEngine, model: Any, *where: Any) -> list[Any]:
    async with db.connect() as conn:
        return list((await conn.execute(select(model.__table__).where(*where))).all())


async def test_sf_ship_push_twice_and_delivery_moves_the_order(rt: Runtime, api: httpx.AsyncClient,
                                                               db: AsyncEngine, standin: CarrierStandIn) -> None:
    order_id = await in_production(rt, api)
    r = await api.post(f"/api/orders/{order_id}/ship", json={"carrier": "sf"})
    assert r.status_code == 200, r.text
    waybill = r.json()["waybill"]
    assert r.json()["created"] and waybill.startswith("SF") and r.json()["order"]["stage"] == "shipped"
    shipped = await rows(db, OutboxRow, OutboxRow.dedup_key.like("tracking:%:shipped"))
    assert len(shipped) == 1 and waybill in shipped[0].payload["text"]
    assert "G00000001" in shipped[0].payload["text"] and "generic:" not in shipped[0].payload["text"]  # people's words

    routes = [c.sf_route(waybill, "2026-12-01 09:00:00", "50", "顺丰速运 已收取快件", "广州天河"),
              c.sf_route(waybill, "2026-12-01 14:01:00", "31", "快件到达", "上海浦江中转场")]
    assert (await push(api, "sf", c.push_form_sf(routes))).json() == {"return_code": "0000", "return_msg": "成功"}
    assert (await push(api, "sf", c.push_form_sf(routes))).status_code == 200  # SF redelivers
    stream_len = await rt.redis.xlen(keys.TRACKING_STREAM)
    bad = await push(api, "sf", c.push_form_sf(routes, checkword="not-the-checkword"))
    assert bad.status_code == 401 and bad.json()["error"] == "bad_signature"
    assert await rt.redis.xlen(keys.TRACKING_STREAM) == stream_len  # nothing queued
    await rt.tracking_worker().run(burst=True)

    timeline = (await api.get(f"/api/orders/{order_id}/tracking")).json()
    assert (timeline["carrier"], timeline["waybill"], timeline["status"]) == ("sf", waybill, "in_transit")
    assert [e["text"] for e in timeline["events"]] == ["快件到达", "顺丰速运 已收取快件"]
    assert timeline["events"][0]["place"] == "上海浦江中转场"
    assert len(await rows(db, TrackingEventRow)) == 2

    delivered = [c.sf_route(waybill, "2026-12-02 10:00:00", "80", "已签收", "广州天河")]
    await push(api, "sf", c.push_form_sf(delivered))
    await push(api, "sf", c.push_form_sf(delivered))
    await rt.tracking_worker().run(burst=True)
    order = (await api.get(f"/api/orders/{order_id}")).json()
    assert order["stage"] == "awaiting_install" and order["tracking"]["status"] == "delivered"
    moves = await rows(db, StageTransitionRow, StageTransitionRow.to_stage == "awaiting_install")
    assert len(moves) == 1 and moves[0].actor == "carrier:sf"
    told = await rows(db, OutboxRow, OutboxRow.dedup_key.like("tracking:%:delivered:%"))
    assert len(told) == 1  # the customer (the order has no owner yet)
    assert "G00000001" in told[0].payload["text"] and "generic:" not in told[0].payload["text"]
    assert len(await rows(db, TrackingEventRow)) == 3


async def test_kuaidi100_push_sign_checked_and_state_3_delivers(rt: Runtime, api: httpx.AsyncClient,
                                                               db: AsyncEngine, standin: CarrierStandIn) -> None:
    order_id = await in_production(rt, api, 2)
    r = await api.post(f"/api/orders/{order_id}/ship",
                       json={"carrier": "kuaidi100", "waybill": "73100000000001", "company": "zhongtong"})
    assert r.status_code == 200 and not r.json()["created"]
    assert standin.subscriptions[-1]["number"] == "73100000000001"
    data = [{"time": "2026-12-02 10:00:00", "ftime": "2026-12-02 10:00:00", "context": "已签收，签收人：本人",
             "areaName": "广州", "status": "签收"}]
    bad = c.push_form_k100("73100000000001", "3", data, salt="wrong")
    assert (await push(api, "kuaidi100", bad)).status_code == 401
    ok = await push(api, "kuaidi100", c.push_form_k100("73100000000001", "3", data))
    assert ok.json() == {"result": True, "returnCode": "200", "message": "成功"}
    await rt.tracking_worker().run(burst=True)
    assert (await api.get(f"/api/orders/{order_id}")).json()["stage"] == "awaiting_install"


async def test_exception_becomes_a_classified_note(rt: Runtime, api: httpx.AsyncClient, db: AsyncEngine) -> None:
    order_id = await in_production(rt, api, 3)
    waybill = (await api.post(f"/api/orders/{order_id}/ship", json={"carrier": "deppon"})).json()["waybill"]
    traces = [{"time": "2026-12-01 09:00:00", "city": "广州", "description": "已揽收", "status": "GOT"},
              {"time": "2026-12-02 09:00:00", "city": "深圳", "description": "派送异常，物流延误，客户电话无人接听",
               "status": "ERROR"}]
    answer = await push(api, "deppon", c.push_form_deppon(waybill, traces))
    assert answer.json()["resultCode"] == "1000"
    assert (await push(api, "deppon", c.push_form_deppon(waybill, traces, appkey="nope"))).status_code == 401
    await push(api, "deppon", c.push_form_deppon(waybill, traces))
    await rt.tracking_worker().run(burst=True)
    notes = await rows(db, ExceptionNoteRow, ExceptionNoteRow.order_id == order_id)
    assert len(notes) == 1 and notes[0].author == "carrier:deppon" and "派送异常" in notes[0].text
    assert notes[0].category is not None  # classified on arrival, so per-carrier trends can fire
    assert (await api.get(f"/api/orders/{order_id}")).json()["stage"] == "shipped"


async def test_backup_carrier_when_the_first_fails_and_refusals(rt: Runtime, api: httpx.AsyncClient,
                                                                standin: CarrierStandIn) -> None:
    order_id = await in_production(rt, api, 4)
    standin.faults = c.Faults(http_500=3)  # SF (the rules' first choice) fails all its tries
    r = await api.post(f"/api/orders/{order_id}/ship", json={})
    assert r.status_code == 200, r.text
    assert r.json()["carrier"] == "deppon" and r.json()["failed_carriers"] == ["sf"]
    again = await api.post(f"/api/orders/{order_id}/ship", json={})
    assert again.status_code == 409 and again.json()["error"] == "invalid_transition"
    assert (await api.post("/api/orders/999999/ship", json={"carrier": "sf"})).status_code == 404
    other = await in_production(rt, api, 5)
    bad = await api.post(f"/api/orders/{other}/ship", json={"carrier": "sf", "waybill": "NOTSF123"})
    assert bad.status_code == 409 and bad.json()["error"] == "ship_refused"
    assert (await push(api, "ups", {"x": "1"})).status_code == 404
    assert (await push(api, "sf", {"msgData": "x"})).status_code == 401


async def test_cli_ships_with_a_typed_waybill_and_tracks(rt: Runtime, api: httpx.AsyncClient, database_url: str,
                                                         redis_url: str, tmp_path: Any) -> None:
    import asyncio

    from typer.testing import CliRunner

    from bot.cli.main import app
    from bot.settings import BUNDLED_RULES

    order_id = await in_production(rt, api, 6)
    env = {"ORDERHUB_DATABASE_URL": database_url, "ORDERHUB_REDIS_URL": redis_url,
           "ORDERHUB_DATA_DIR": str(tmp_path / "cli"), "ORDERHUB_RULES": str(BUNDLED_RULES)}
    runner = CliRunner()
    res = await asyncio.to_thread(runner.invoke, app, ["orders", "ship", str(order_id), "--carrier", "sf",
                                                       "--waybill", "SF1234567890123", "--as", "ops"], env=env)
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines()[-1] == "SF1234567890123"
    again = await asyncio.to_thread(runner.invoke, app, ["orders", "ship", str(order_id), "--carrier", "sf",
                                                         "--waybill", "SF1234567890123"], env=env)
    assert again.exit_code == 2 and "allowed next stages" in again.output
    await push(api, "sf", c.push_form_sf([c.sf_route("SF1234567890123", "2026-12-01 09:00:00", "50", "已收取快件")]))
    await rt.tracking_worker().run(burst=True)
    shown = await asyncio.to_thread(runner.invoke, app, ["orders", "track", str(order_id)], env=env)
    assert "SF1234567890123 · picked_up" in shown.output and "已收取快件" in shown.output


async def test_poller_fetches_routes_of_silent_waybills_and_stalls_fire_once(
        rt: Runtime, api: httpx.AsyncClient, db: AsyncEngine, standin: CarrierStandIn) -> None:
    from datetime import timedelta

    from handlers.tracking import poll_routes, scan_stalls

    order_id = await in_production(rt, api, 7)
    waybill = (await api.post(f"/api/orders/{order_id}/ship", json={"carrier": "sf"})).json()["waybill"]
    standin.routes[waybill] = [{"acceptTime": "2026-12-01 09:00:00", "acceptAddress": "广州", "remark": "已收取快件",
                                "opCode": "50"}]
    deps, now = rt.tracking_deps(), datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    calls = await poll_routes(deps, rt.carriers(), now, per_carrier=1)
    assert calls == {"sf": 1}
    assert (await api.get(f"/api/orders/{order_id}/tracking")).json()["status"] == "picked_up"
    assert await poll_routes(deps, rt.carriers(), now + timedelta(minutes=10)) == {}  # just polled: not again
    # 48 h (the default rules) after the pickup scan with nothing new: one stall alert, not one per scan
    later = now + timedelta(hours=50)
    assert await scan_stalls(deps, later) == 1
    assert await scan_stalls(deps, later + timedelta(minutes=15)) == 0
    stall = await rows(db, OutboxRow, OutboxRow.kind == "tracking_stall")
    assert len(stall) == 1 and stall[0].recipient_role == "supply_chain" and waybill in stall[0].payload["text"]
    said = stall[0].payload["text"]  # the order's own number and the carrier's name, not internal ids or keys
    assert "G00000007" in said and "顺丰速运" in said and f"#{order_id}" not in said and " sf " not in said


async def test_chat_ship_and_track_for_staff_and_scans_in_the_customer_reply(
        rt: Runtime, api: httpx.AsyncClient, db: AsyncEngine, redis: aioredis.Redis) -> None:
    from bot.wiring.chat import build_chat_core
    from handlers.cards import customer_status_text
    from handlers.chat import CommandReceived, Sender
    from storage.chat_repo import SqlChatRepo
    from tests.chatfake import FakeChannel

    order_id = await in_production(rt, api, 8)
    channel = FakeChannel()
    core = build_chat_core(db, redis, {"telegram": channel}, rt.clock, rt.current_rules, token_key=b"k")
    core.ctx.tracking = rt.tracking_service()
    await rt.users.link("ops", "telegram", "501", datetime.now(UTC))
    staff = Sender("telegram", "501", "501")
    await core.handle(CommandReceived(staff, "ship", (str(order_id), "sf")))
    assert "SF" in channel.sent[-1].text and "已发货" in channel.sent[-1].text
    waybill = (await api.get(f"/api/orders/{order_id}/tracking")).json()["waybill"]
    await push(api, "sf", c.push_form_sf([
        c.sf_route(waybill, "2026-12-01 14:01:00", "31", "快件到达", "上海浦江中转场")]))
    await rt.tracking_worker().run(burst=True)
    await core.handle(CommandReceived(staff, "track", (str(order_id),)))
    assert "12-01 14:01 快件到达【上海浦江中转场】" in channel.sent[-1].text
    await core.handle(CommandReceived(Sender("telegram", "999", "999"), "ship", (str(order_id), "sf")))
    assert "SF" not in channel.sent[-1].text  # not staff: refused, nothing shipped
    await core.handle(CommandReceived(staff, "ship", (str(order_id), "ups")))
    assert "/ship" in channel.sent[-1].text  # usage
    view = await SqlChatRepo(db).order(order_id)
    assert view is not None
    said = customer_status_text(view, "zh", "Asia/Shanghai")
    assert "12-01 14:01 快件到达【上海浦江中转场】" in said
    assert f"物流: 顺丰速运 {waybill} 运输中" in said and "in_transit" not in said  # carrier and status in words


async def test_a_poisoned_push_is_dead_lettered_alone(rt: Runtime, api: httpx.AsyncClient, db: AsyncEngine) -> None:
    import orjson

    from storage.models import DeadLetterRow

    order_id = await in_production(rt, api, 9)
    waybill = (await api.post(f"/api/orders/{order_id}/ship", json={"carrier": "sf"})).json()["waybill"]
    good = c.push_form_sf([c.sf_route(waybill, "2026-12-01 09:00:00", "50", "已收取快件")])
    await rt.tracking_queue.enqueue("sf", [b"not json", orjson.dumps({"msgData": "{}"}), orjson.dumps(good)])
    totals = await rt.tracking_worker().run(burst=True)
    assert totals.dead == 2 and totals.pushes == 1
    assert await rt.redis.xlen(keys.TRACKING_DEAD_STREAM) == 2
    assert len(await rows(db, DeadLetterRow)) == 2
    assert len(await rows(db, TrackingEventRow)) == 1


async def test_carrier_chosen_by_the_goods_rows_of_the_rules(rt: Runtime, standin: CarrierStandIn,
                                                             tmp_path: Any) -> None:
    from bot.settings import BUNDLED_RULES

    rules = tmp_path / "rules.yaml"
    rules.write_text(BUNDLED_RULES.read_text(encoding="utf-8") + "\ncarriers:\n  by_goods:\n"
                     "    - {id: long-goods, when: {min_size_cm: 100}, primary: deppon, backup: sf}\n",
                     encoding="utf-8")
    goods_rt = Runtime.build(rt.settings.model_copy(update={"rules": rules}))
    await goods_rt.start_rules(watch=False)
    try:
        app = create_app(goods_rt.app_services())
        _, token = await goods_rt.users.add("ops2", "admin", [], None, None, datetime.now(UTC))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                     headers={"Authorization": f"Bearer {token}"}) as api:
            order_id = await in_production(goods_rt, api, 7)  # factory items are ≥ 150 cm wide
            r = await api.post(f"/api/orders/{order_id}/ship", json={})
        assert r.status_code == 200, r.text
        assert r.json()["carrier"] == "deppon" and r.json()["failed_carriers"] == []  # default would be sf
    finally:
        await goods_rt.close()
