"""Deppon 德邦开放平台: form POSTs of companyCode, params (JSON), timestamp (ms) and
digest = Base64(hex(MD5(params + appkey + timestamp))) (engine.carriers.signing cites the source).

Endpoints (as public integrations call them; the root is `ORDERHUB_DEPPON_API_URL`, production
`https://dpapi.deppon.com`): create `…/dop-interface-async/standard-order/createOrderNotify.action`, query an
order `…/dop-interface-sync/standard-query/queryOrder.action`, trace `…/standard-query/newTraceQuery.action`,
trace subscription `…/dop-nonstandard-extension/standTraceSubscribe.action`. Answers are
`{"result": "true"|"false", "resultCode", "reason", …}`; resultCode 1000 is success, 2006 a repeated logisticID
(the first order's waybill is read back, so creating is idempotent per OrderHub reference); a 5xx or a `result`
of false with a system-busy code is retried.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

from bot.adapters.carriers.http import CarrierHttp
from engine.carriers import TrackEvent
from engine.carriers.parsing import CST, PushFormatError, parse_deppon_traces
from engine.carriers.signing import deppon_digest
from handlers.carriers import CarrierError, ShipmentRequest

CREATE = "/dop-interface-async/standard-order/createOrderNotify.action"
QUERY_ORDER = "/dop-interface-sync/standard-query/queryOrder.action"
TRACE = "/dop-interface-sync/standard-query/newTraceQuery.action"
SUBSCRIBE = "/dop-interface-sync/dop-nonstandard-extension/standTraceSubscribe.action"
REPEATED = "2006"
RETRYABLE = {"9999", "1001"}  # system busy / internal error


class DepponClient:
    name = "deppon"

    def __init__(self, http: CarrierHttp, company_code: str, appkey: str, customer_code: str = "",
                 sign: str = "") -> None:
        self.http, self.company_code, self._appkey = http, company_code, appkey
        self.customer_code, self.sign = customer_code, sign  # `sign`: the logisticID prefix Deppon assigns

    def __repr__(self) -> str:
        return f"DepponClient(company_code={self.company_code!r})"

    async def call(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        body = orjson.dumps(params).decode()
        ts = str(int(time.time() * 1000))
        form = {"companyCode": self.company_code, "params": body, "timestamp": ts,
                "digest": deppon_digest(body, self._appkey, ts)}
        answer = await self.http.post_form(path, form)
        if not isinstance(answer, dict):
            raise CarrierError("deppon", f"{path}: answer is not an object", retryable=True)
        if str(answer.get("result")).lower() != "true":
            code = str(answer.get("resultCode", ""))
            err = _DepponError(code, f"{path.rsplit('/', 1)[-1]}: {code} {str(answer.get('reason', ''))[:200]}",
                               retryable=code in RETRYABLE)
            raise err
        return answer

    async def create_waybill(self, request: ShipmentRequest) -> str:
        logistic_id = f"{self.sign}{request.reference}"
        r, s = request.receiver, request.sender
        params = {
            "logisticID": logistic_id, "custOrderNo": request.reference, "companyCode": self.company_code,
            "customerCode": self.customer_code, "orderType": "2", "transportType": "PACKAGE", "payType": "2",
            "gmtCommit": datetime.now(UTC).astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"),
            "sender": {"name": s.name, "mobile": s.phone, "province": s.province, "city": s.city,
                       "address": s.address},
            "receiver": {"name": r.name, "mobile": r.phone, "province": r.province, "city": r.city,
                         "address": r.address or r.city},
            "packageInfo": {"cargoName": request.goods, "totalNumber": request.pieces,
                            "totalWeight": request.weight_kg or 0, "deliveryType": "3"},
        }
        try:
            answer = await self.call(CREATE, params)
        except _DepponError as exc:
            if exc.code != REPEATED:
                raise
            answer = await self.call(QUERY_ORDER, {"logisticID": logistic_id, "logisticCompanyID": "DEPPON"})
            answer = answer.get("responseParam") or answer
        waybill = answer.get("mailNo")
        if not waybill:
            raise CarrierError("deppon", "createOrderNotify: no mailNo in the answer", retryable=False)
        return str(waybill)

    async def query_routes(self, waybill: str, company: str | None = None) -> list[TrackEvent]:
        answer = await self.call(TRACE, {"mailNo": waybill})
        param = answer.get("responseParam") or {}
        try:
            return parse_deppon_traces({"track_list": [{"tracking_number": param.get("tracking_number") or waybill,
                                                        "trace_list": param.get("trace_list") or []}]})
        except PushFormatError as exc:
            raise CarrierError("deppon", f"newTraceQuery: {exc}", retryable=False) from None

    async def subscribe(self, waybill: str, company: str | None = None) -> None:
        await self.call(SUBSCRIBE, {"tracking_number": waybill})


class _DepponError(CarrierError):
    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__("deppon", message, retryable=retryable)
        self.code = code
