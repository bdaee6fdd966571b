"""SF Express 丰桥 standard API: form POSTs to `<root>/std/service` with partnerID, requestID,
serviceCode, timestamp (ms), msgData (JSON) and msgDigest = Base64(MD5(urlencode(msgData + timestamp + checkword))).

The answer is `{"apiResultCode": "A1000", "apiErrorMsg", "apiResultData": "<JSON string>"}`, the business result
inside `apiResultData`: `{"success", "errorCode", "errorMsg", "msgData"}`. Platform codes: A1000 success; A1009
(target service unreachable) and A1099 (system error) are worth retrying; the rest (A1001 missing parameter,
A1004 no access, A1006 invalid digest, …) are not. Business code 8016 is a repeated orderId: the first order's
waybill is read back (EXP_RECE_SEARCH_ORDER_RESP), which makes creating idempotent per OrderHub shipment reference.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from bot.adapters.carriers.http import CarrierHttp
from engine.carriers import TrackEvent
from engine.carriers.parsing import PushFormatError, parse_sf_routes
from engine.carriers.signing import sf_digest
from handlers.carriers import CarrierError, ShipmentRequest

RETRYABLE_API_CODES = {"A1009", "A1099"}
REPEATED_ORDER = "8016"


class SfClient:
    name = "sf"

    def __init__(self, http: CarrierHttp, partner_id: str, checkword: str, monthly_card: str = "") -> None:
        self.http, self.partner_id, self._checkword, self.monthly_card = http, partner_id, checkword, monthly_card

    def __repr__(self) -> str:  # the checkword never appears in logs or tracebacks
        return f"SfClient(partner_id={self.partner_id!r})"

    async def call(self, service: str, msg: dict[str, Any]) -> dict[str, Any]:
        msg_data = orjson.dumps(msg).decode()
        ts = str(int(time.time() * 1000))
        form = {"partnerID": self.partner_id, "requestID": uuid.uuid4().hex, "serviceCode": service,
                "timestamp": ts, "msgData": msg_data, "msgDigest": sf_digest(msg_data, ts, self._checkword)}
        answer = await self.http.post_form("/std/service", form)
        code = str(answer.get("apiResultCode", "")) if isinstance(answer, dict) else ""
        if code != "A1000":
            err = str(answer.get("apiErrorMsg", ""))[:200] if isinstance(answer, dict) else ""
            raise CarrierError("sf", f"{service}: {code or 'no code'} {err}".strip(),
                               retryable=code in RETRYABLE_API_CODES)
        try:
            result = orjson.loads(answer.get("apiResultData") or "{}")
        except orjson.JSONDecodeError:
            raise CarrierError("sf", f"{service}: apiResultData is not JSON", retryable=True) from None
        if not result.get("success"):
            raise _BusinessError(str(result.get("errorCode", "")), f"{service}: {result.get('errorCode')} "
                                 f"{str(result.get('errorMsg') or '')[:200]}")
        return result.get("msgData") or {}

    async def create_waybill(self, request: ShipmentRequest) -> str:
        r, s = request.receiver, request.sender
        msg = {
            "language": "zh-CN", "orderId": request.reference, "monthlyCard": self.monthly_card,
            "expressTypeId": 1, "isReturnRoutelabel": 0, "parcelQty": request.pieces,
            "cargoDetails": [{"name": request.goods, "count": request.pieces}],
            "contactInfoList": [
                {"contactType": 1, "contact": s.name, "tel": s.phone, "province": s.province, "city": s.city,
                 "address": s.address},
                {"contactType": 2, "contact": r.name, "tel": r.phone, "province": r.province, "city": r.city,
                 "address": r.address or r.city},
            ],
        }
        if request.weight_kg:
            msg["totalWeight"] = request.weight_kg
        try:
            data = await self.call("EXP_RECE_CREATE_ORDER", msg)
        except _BusinessError as exc:
            if exc.code != REPEATED_ORDER:
                raise
            data = await self.call("EXP_RECE_SEARCH_ORDER_RESP", {"orderId": request.reference, "language": "zh-CN"})
        for info in data.get("waybillNoInfoList") or []:
            if str(info.get("waybillType", 1)) == "1" and info.get("waybillNo"):
                return str(info["waybillNo"])
        raise CarrierError("sf", "EXP_RECE_CREATE_ORDER: no waybill number in the answer", retryable=False)

    async def query_routes(self, waybill: str, company: str | None = None) -> list[TrackEvent]:
        data = await self.call("EXP_RECE_SEARCH_ROUTES", {"language": "0", "trackingType": "1",
                                                          "trackingNumber": [waybill], "methodType": "1"})
        try:
            return parse_sf_routes(data)
        except PushFormatError as exc:
            raise CarrierError("sf", f"EXP_RECE_SEARCH_ROUTES: {exc}", retryable=False) from None

    async def subscribe(self, waybill: str, company: str | None = None) -> None:
        """SF pushes the routes of every waybill of the partner's account: nothing to subscribe."""


class _BusinessError(CarrierError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__("sf", message, retryable=False)
        self.code = code
