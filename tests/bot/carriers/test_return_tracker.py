"""The return tracker asks the carrier (SF on the carrier stand-in) and reduces the route to a neutral status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.adapters.carriers.http import CarrierHttp
from bot.adapters.carriers.sf import SfClient
from bot.adapters.return_tracker import CarrierReturnTracker
from engine.refunds import ProofVerdict, ReturnStatus, find_waybill, judge_proof
from tests.standins import carriers as c
from tests.standins.carriers import CarrierStandIn, running_carriers


@pytest.fixture
def standin() -> Iterator[CarrierStandIn]:
    with running_carriers() as s:
        yield s


def tracker(standin: CarrierStandIn) -> CarrierReturnTracker:
    http = CarrierHttp("sf", standin.url, timeout_s=5.0, attempts=2, backoff_s=0.01)
    return CarrierReturnTracker({"sf": SfClient(http, c.SF_PARTNER, c.SF_CHECKWORD, c.SF_CARD)})


async def test_a_moving_return_is_confirmed_and_an_unknown_one_is_not(standin: CarrierStandIn):
    standin.routes["SF1234567890123"] = [
        c.sf_route("SF1234567890123", "2025-11-12 10:00:00", "50", "顺丰已收取快件", "杭州"),
        c.sf_route("SF1234567890123", "2025-11-12 18:00:00", "30", "快件到达杭州中转场", "杭州")]
    t = tracker(standin)
    status = await t.status("sf", "SF1234567890123")
    assert status == ReturnStatus("in_transit", None)
    match = find_waybill("寄件 SF1234567890123")
    assert judge_proof(match, t.carriers, status) is ProofVerdict.CONFIRMED
    unknown = await t.status("sf", "SF9999999999999")
    assert unknown == ReturnStatus(None)
    assert judge_proof(find_waybill("SF9999999999999"), t.carriers, unknown) is ProofVerdict.NOT_MOVING
    assert await t.status("deppon", "DPK123456789012") is None  # no Deppon client, no Kuaidi100 fallback
