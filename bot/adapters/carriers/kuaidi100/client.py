"""Kuaidi100 快递100: subscription (`POST <root>/poll`, form `schema=json`, `param` =
`{"company", "number", "key", "parameters": {"callbackurl", "salt", "resultv2"}}`), answered
`{"result": true, "returnCode": "200", "message": "提交成功"}`; and real-time query (`POST <root>/poll/query.do`,
form `customer`, `param` = `{"com", "num"}`, `sign = upper(MD5(param + key + customer))`).

Found with the search tool (kuaidi100-api/go-demo config/url.go: POLL_URL `https://poll.kuaidi100.com/poll`,
QUERY_URL `https://poll.kuaidi100.com/poll/query.do`; SubscribeReq with `schema` and `param`). Subscription
returnCodes: 200 accepted, 501 already subscribed (fine), 500 server error (retried), anything else (600 not a
valid subscriber, 601 key expired, 700/701 refused) permanent. Kuaidi100 creates no waybills here: it tracks the
parcels of carriers OrderHub has no direct adapter for.
"""

from __future__ import annotations

import orjson

from bot.adapters.carriers.http import CarrierHttp
from engine.carriers import TrackEvent
from engine.carriers.parsing import PushFormatError, parse_k100_result
from engine.carriers.signing import kuaidi100_query_sign
from handlers.carriers import CarrierError, ShipmentRequest


class Kuaidi100Client:
    name = "kuaidi100"

    def __init__(self, http: CarrierHttp, key: str, customer: str, salt: str, callback_url: str) -> None:
        self.http, self._key, self.customer, self._salt = http, key, customer, salt
        self.callback_url = callback_url

    def __repr__(self) -> str:
        return f"Kuaidi100Client(customer={self.customer!r})"

    async def create_waybill(self, request: ShipmentRequest) -> str:
        raise CarrierError("kuaidi100", "creates no waybills; give the carrier's waybill number", retryable=False)

    async def subscribe(self, waybill: str, company: str | None = None) -> None:
        param = orjson.dumps({"company": company or "auto", "number": waybill, "key": self._key,
                              "parameters": {"callbackurl": self.callback_url, "salt": self._salt,
                                             "resultv2": "1"}}).decode()
        answer = await self.http.post_form("/poll", {"schema": "json", "param": param})
        code = str(answer.get("returnCode", "")) if isinstance(answer, dict) else ""
        if code in {"200", "501"}:
            return
        raise CarrierError("kuaidi100", f"poll: returnCode {code or '?'} {str(answer.get('message', ''))[:200]}",
                           retryable=code == "500" or not code)

    async def query_routes(self, waybill: str, company: str | None = None) -> list[TrackEvent]:
        param = orjson.dumps({"com": company or "auto", "num": waybill}).decode()
        form = {"customer": self.customer, "param": param,
                "sign": kuaidi100_query_sign(param, self._key, self.customer)}
        answer = await self.http.post_form("/poll/query.do", form)
        if not isinstance(answer, dict) or str(answer.get("status", "")) != "200":
            code = str(answer.get("returnCode", "")) if isinstance(answer, dict) else ""
            raise CarrierError("kuaidi100", f"query.do: returnCode {code or '?'}", retryable=code in {"500", ""})
        try:
            return parse_k100_result("kuaidi100", answer)
        except PushFormatError as exc:
            raise CarrierError("kuaidi100", f"query.do: {exc}", retryable=False) from None
