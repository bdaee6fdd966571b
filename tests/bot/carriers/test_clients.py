"""The real carrier clients against the local stand-ins over HTTP: create, query, subscribe, and faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.adapters.carriers.deppon import DepponClient
from bot.adapters.carriers.http import CarrierHttp
from bot.adapters.carriers.kuaidi100 import Kuaidi100Client
from bot.adapters.carriers.sf import SfClient
from engine.carriers import TrackStatus
from handlers.carriers import CarrierError, Party, ShipmentRequest
from tests.standins import carriers as c
from tests.standins.carriers import CarrierStandIn, running_carriers

REQ = ShipmentRequest("OH42", Party("仓库", "057100000000", "杭州", "仓前街 1 号"),
                      Party("王女士", "13800138000", "广州", "天河路 1 号"), "亚麻遮光窗帘", 2)


@pytest.fixture(scope="module")
def _server() -> Iterator[CarrierStandIn]:
    with running_carriers() as standin:
        yield standin


@pytest.fixture
def standin(_server: CarrierStandIn) -> CarrierStandIn:
    _server.calls.clear()
    _server.orders.clear()
    _server.routes.clear()
    _server.subscriptions.clear()
    _server.faults = c.Faults()
    return _server


def http(standin: CarrierStandIn, carrier: str, timeout_s: float = 5.0) -> CarrierHttp:
    return CarrierHttp(carrier, standin.url, timeout_s=timeout_s, attempts=3, backoff_s=0.01)


def sf(standin: CarrierStandIn, checkword: str = c.SF_CHECKWORD, **kw: float) -> SfClient:
    return SfClient(http(standin, "sf", **kw), c.SF_PARTNER, checkword, c.SF_CARD)


def deppon(standin: CarrierStandIn, appkey: str = c.DP_APPKEY) -> DepponClient:
    return DepponClient(http(standin, "deppon"), c.DP_COMPANY, appkey, c.DP_CUSTOMER, "OH")


def k100(standin: CarrierStandIn) -> Kuaidi100Client:
    return Kuaidi100Client(http(standin, "kuaidi100"), c.K100_KEY, c.K100_CUSTOMER, c.K100_SALT,
                           "https://hub.example/webhooks/logistics/kuaidi100")


async def test_sf_creates_a_waybill_once_per_reference_and_queries_routes(standin: CarrierStandIn) -> None:
    client = sf(standin)
    waybill = await client.create_waybill(REQ)
    assert waybill.startswith("SF")
    assert await client.create_waybill(REQ) == waybill  # repeated orderId (8016) → the first waybill read back
    standin.routes[waybill] = [{"acceptTime": "2026-12-01 14:01:00", "acceptAddress": "广州", "remark": "已收取快件",
                                "opCode": "50"}]
    (ev,) = await client.query_routes(waybill)
    assert (ev.waybill, ev.status, ev.place) == (waybill, TrackStatus.PICKED_UP, "广州")


async def test_sf_5xx_and_timeouts_are_retried(standin: CarrierStandIn) -> None:
    standin.faults = c.Faults(http_500=2)
    assert (await sf(standin).create_waybill(REQ)).startswith("SF")
    standin.faults = c.Faults(slow=1, delay_s=1.0)
    await sf(standin, timeout_s=0.3).query_routes("SF1400000000001")
    assert len(standin.ok_calls("sf")) == 2


async def test_sf_persistent_5xx_is_reported_as_retryable(standin: CarrierStandIn) -> None:
    standin.faults = c.Faults(http_500=5)
    with pytest.raises(CarrierError) as err:
        await sf(standin).create_waybill(REQ)
    assert err.value.retryable


async def test_a_wrong_digest_answer_is_permanent_and_leaks_no_secret(standin: CarrierStandIn) -> None:
    with pytest.raises(CarrierError) as err:
        await sf(standin, checkword="wrong-checkword").create_waybill(REQ)
    assert not err.value.retryable and "A1006" in str(err.value)
    assert "wrong-checkword" not in str(err.value) and "wrong-checkword" not in repr(sf(standin, "wrong-checkword"))
    standin.faults = c.Faults(bad_digest=1)  # the carrier itself answers "invalid digest"
    with pytest.raises(CarrierError) as err:
        await deppon(standin).create_waybill(REQ)
    assert not err.value.retryable and "1002" in str(err.value)


async def test_deppon_create_is_idempotent_and_traces(standin: CarrierStandIn) -> None:
    client = deppon(standin)
    waybill = await client.create_waybill(REQ)
    assert waybill.startswith("DPK") and await client.create_waybill(REQ) == waybill
    standin.routes[waybill] = [{"time": "2026-12-02 09:00:00", "city": "深圳", "description": "已签收",
                                "status": "SIGNED"}]
    (ev,) = await client.query_routes(waybill)
    assert ev.status is TrackStatus.DELIVERED
    await client.subscribe(waybill)
    assert standin.subscriptions[-1]["tracking_number"] == waybill
    with pytest.raises(CarrierError):
        await deppon(standin, appkey="nope").query_routes(waybill)


async def test_kuaidi100_subscribes_and_queries(standin: CarrierStandIn) -> None:
    client = k100(standin)
    await client.subscribe("73100000001", "zhongtong")
    await client.subscribe("73100000001", "zhongtong")  # 501 already subscribed is fine
    sub = standin.subscriptions[0]
    assert sub["parameters"]["salt"] == c.K100_SALT and sub["company"] == "zhongtong"
    standin.routes["73100000001"] = [{"time": "2026-12-02 10:00:00", "ftime": "2026-12-02 10:00:00",
                                      "context": "已签收", "areaName": "广州", "status": "签收", "_state": "3"}]
    (ev,) = await client.query_routes("73100000001", "zhongtong")
    assert ev.status is TrackStatus.DELIVERED
    with pytest.raises(CarrierError) as err:
        await client.create_waybill(REQ)
    assert not err.value.retryable
