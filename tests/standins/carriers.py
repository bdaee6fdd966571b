"""Local stand-ins of the SF 丰桥, Deppon open-platform and Kuaidi100 APIs, served over real HTTP so the real
carrier clients (bot/adapters/carriers/) are exercised end to end without the internet.

Each checks what its carrier checks — SF's msgDigest over the form, Deppon's digest, Kuaidi100's query sign and
subscription key — issues waybills (the same one again for a repeated order id, as the carriers do), answers
route queries from scans the test adds, and records every call. Faults: the next N calls answered HTTP 500, or
slowly (client timeouts), or with the carrier's own "invalid digest" refusal. `push_form_*` build the pushes each
carrier sends to OrderHub, signed as the carrier signs them.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import orjson
from urllib.parse import parse_qsl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.carriers.signing import deppon_digest, kuaidi100_push_sign, kuaidi100_query_sign, sf_digest
from tests.standins.base import serving

SF_PARTNER, SF_CHECKWORD, SF_CARD = "OHPARTNER", "sf-checkword-0123456789abcdef", "7551234567"
DP_COMPANY, DP_APPKEY, DP_CUSTOMER = "EWBOHTEST", "deppon-appkey-0123456789abcdef", "400012345"
K100_KEY, K100_CUSTOMER, K100_SALT = "k100-key-0123", "K100CUSTOMER0123456789", "k100-salt-xyz"


@dataclass
class Faults:
    http_500: int = 0  # the next N calls answer HTTP 500
    slow: int = 0  # the next N calls answer after `delay_s`
    delay_s: float = 2.0
    bad_digest: int = 0  # the next N calls are refused as if the digest were wrong


@dataclass
class Call:
    carrier: str
    path: str
    form: dict[str, str]
    status: int


@dataclass
class CarrierStandIn:
    url: str = ""
    faults: Faults = field(default_factory=Faults)
    calls: list[Call] = field(default_factory=list)
    orders: dict[tuple[str, str], str] = field(default_factory=dict)  # (carrier, reference) → waybill
    routes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # waybill → carrier-format scans
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[
            Route("/std/service", self._sf, methods=["POST"]),
            Route("/dop-interface-async/standard-order/createOrderNotify.action", self._dp_create, methods=["POST"]),
            Route("/dop-interface-sync/standard-query/queryOrder.action", self._dp_query_order, methods=["POST"]),
            Route("/dop-interface-sync/standard-query/newTraceQuery.action", self._dp_trace, methods=["POST"]),
            Route("/dop-interface-sync/dop-nonstandard-extension/standTraceSubscribe.action", self._dp_subscribe,
                  methods=["POST"]),
            Route("/poll", self._k100_poll, methods=["POST"]),
            Route("/poll/query.do", self._k100_query, methods=["POST"]),
        ])

    def ok_calls(self, carrier: str) -> list[Call]:
        return [c for c in self.calls if c.carrier == carrier and c.status == 200]

    # --- fault handling ----------------------------------------------------------------------------------------

    async def _fault(self, carrier: str, path: str, form: dict[str, str]) -> Response | str | None:
        f = self.faults
        if f.slow > 0:
            f.slow -= 1
            await asyncio.sleep(f.delay_s)
        if f.http_500 > 0:
            f.http_500 -= 1
            self.calls.append(Call(carrier, path, form, 500))
            return Response("busy", status_code=500)
        if f.bad_digest > 0:
            f.bad_digest -= 1
            return "bad_digest"
        return None

    async def _form(self, request: Request) -> dict[str, str]:
        return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))

    # --- SF ------------------------------------------------------------------------------------------------------

    async def _sf(self, request: Request) -> Response:
        form = await self._form(request)
        fault = await self._fault("sf", "/std/service", form)
        if isinstance(fault, Response):
            return fault
        digest_ok = fault is None and form.get("msgDigest") == sf_digest(form.get("msgData", ""),
                                                                         form.get("timestamp", ""), SF_CHECKWORD)
        if form.get("partnerID") != SF_PARTNER or not digest_ok:
            self.calls.append(Call("sf", form.get("serviceCode", ""), form, 401))
            return JSONResponse({"apiResultCode": "A1006", "apiErrorMsg": "数字签名无效", "apiResultData": None})
        self.calls.append(Call("sf", form.get("serviceCode", ""), form, 200))
        msg = orjson.loads(form["msgData"])
        service = form.get("serviceCode")
        if service in {"EXP_RECE_CREATE_ORDER", "EXP_RECE_SEARCH_ORDER_RESP"}:
            ref = msg["orderId"]
            if service == "EXP_RECE_CREATE_ORDER" and ("sf", ref) in self.orders:
                return _sf_answer(False, "8016", "重复下单", {})
            if service == "EXP_RECE_SEARCH_ORDER_RESP" and ("sf", ref) not in self.orders:
                return _sf_answer(False, "8018", "未获取到订单信息", {})
            waybill = self.orders.setdefault(("sf", ref), f"SF{1400000000000 + next(self._seq)}")
            return _sf_answer(True, "S0000", None, {"orderId": ref, "waybillNoInfoList": [
                {"waybillType": 1, "waybillNo": waybill}]})
        if service == "EXP_RECE_SEARCH_ROUTES":
            resps = [{"mailNo": wb, "routes": self.routes.get(wb, [])} for wb in msg.get("trackingNumber", [])]
            return _sf_answer(True, "S0000", None, {"routeResps": resps})
        return JSONResponse({"apiResultCode": "A1004", "apiErrorMsg": "无对应服务权限", "apiResultData": None})

    # --- Deppon --------------------------------------------------------------------------------------------------

    async def _dp(self, request: Request, path: str) -> tuple[dict[str, Any] | None, Response | None]:
        form = await self._form(request)
        fault = await self._fault("deppon", path, form)
        if isinstance(fault, Response):
            return None, fault
        ok = fault is None and form.get("companyCode") == DP_COMPANY and form.get("digest") == deppon_digest(
            form.get("params", ""), DP_APPKEY, form.get("timestamp", ""))
        if not ok:
            self.calls.append(Call("deppon", path, form, 401))
            return None, JSONResponse({"result": "false", "resultCode": "1002", "reason": "签名校验失败"})
        self.calls.append(Call("deppon", path, form, 200))
        return orjson.loads(form["params"]), None

    async def _dp_create(self, request: Request) -> Response:
        params, err = await self._dp(request, "create")
        if err:
            return err
        assert params is not None
        key = ("deppon", params["logisticID"])
        if key in self.orders:
            return JSONResponse({"result": "false", "resultCode": "2006", "reason": "运单号重复"})
        self.orders[key] = f"DPK{300000000000 + next(self._seq)}"
        return JSONResponse({"result": "true", "resultCode": "1000", "reason": "成功", "mailNo": self.orders[key],
                             "logisticID": params["logisticID"]})

    async def _dp_query_order(self, request: Request) -> Response:
        params, err = await self._dp(request, "queryOrder")
        if err:
            return err
        assert params is not None
        waybill = self.orders.get(("deppon", params["logisticID"]))
        if waybill is None:
            return JSONResponse({"result": "false", "resultCode": "2005", "reason": "订单不存在"})
        return JSONResponse({"result": "true", "resultCode": "1000", "reason": "成功",
                             "responseParam": {"mailNo": waybill, "logisticID": params["logisticID"]}})

    async def _dp_trace(self, request: Request) -> Response:
        params, err = await self._dp(request, "newTraceQuery")
        if err:
            return err
        assert params is not None
        wb = params["mailNo"]
        return JSONResponse({"result": "true", "resultCode": "1000", "reason": "成功",
                             "responseParam": {"tracking_number": wb, "trace_list": self.routes.get(wb, [])}})

    async def _dp_subscribe(self, request: Request) -> Response:
        params, err = await self._dp(request, "standTraceSubscribe")
        if err:
            return err
        self.subscriptions.append({"carrier": "deppon", **(params or {})})
        return JSONResponse({"result": "true", "resultCode": "1000", "reason": "成功"})

    # --- Kuaidi100 -----------------------------------------------------------------------------------------------

    async def _k100_poll(self, request: Request) -> Response:
        form = await self._form(request)
        fault = await self._fault("kuaidi100", "/poll", form)
        if isinstance(fault, Response):
            return fault
        param = orjson.loads(form.get("param", "{}"))
        if fault is not None or param.get("key") != K100_KEY or form.get("schema") != "json":
            self.calls.append(Call("kuaidi100", "/poll", form, 401))
            return JSONResponse({"result": False, "returnCode": "600", "message": "您不是合法的订阅者"})
        self.calls.append(Call("kuaidi100", "/poll", form, 200))
        if any(s.get("number") == param.get("number") for s in self.subscriptions):
            return JSONResponse({"result": False, "returnCode": "501", "message": "重复订阅"})
        self.subscriptions.append({"carrier": "kuaidi100", **param})
        return JSONResponse({"result": True, "returnCode": "200", "message": "提交成功"})

    async def _k100_query(self, request: Request) -> Response:
        form = await self._form(request)
        fault = await self._fault("kuaidi100", "/poll/query.do", form)
        if isinstance(fault, Response):
            return fault
        param = form.get("param", "")
        if fault is not None or form.get("sign") != kuaidi100_query_sign(param, K100_KEY, K100_CUSTOMER):
            self.calls.append(Call("kuaidi100", "/poll/query.do", form, 401))
            return JSONResponse({"result": False, "returnCode": "503", "message": "验证签名失败"})
        self.calls.append(Call("kuaidi100", "/poll/query.do", form, 200))
        p = orjson.loads(param)
        data = self.routes.get(p["num"], [])
        state = data[0].get("_state", "0") if data else "0"
        return JSONResponse({"message": "ok", "status": "200", "state": state, "nu": p["num"], "com": p["com"],
                             "ischeck": "1" if state == "3" else "0",
                             "data": [{k: v for k, v in d.items() if k != "_state"} for d in data]})


def _sf_answer(success: bool, code: str, msg: str | None, data: dict[str, Any]) -> JSONResponse:
    inner = {"success": success, "errorCode": code, "errorMsg": msg, "msgData": data}
    return JSONResponse({"apiResultCode": "A1000", "apiErrorMsg": "", "apiResponseID": "X",
                         "apiResultData": orjson.dumps(inner).decode()})


def running_carriers() -> AbstractContextManager[CarrierStandIn]:
    """The three carriers' stand-ins, served on one free local port (see tests/standins/base.py)."""
    return serving(CarrierStandIn())


# --- pushes, as each carrier sends them ---------------------------------------------------------------------------

def sf_route(mailno: str, at: str, op_code: str, remark: str, address: str = "") -> dict[str, Any]:
    return {"mailno": mailno, "orderid": "", "acceptTime": at, "acceptAddress": address, "remark": remark,
            "opCode": op_code}


def push_form_sf(routes: list[dict[str, Any]], timestamp: str = "1764576000000",
                 checkword: str = SF_CHECKWORD) -> dict[str, str]:
    msg = orjson.dumps({"Body": {"WaybillRoute": routes}}).decode()
    return {"partnerID": SF_PARTNER, "requestID": "req-1", "serviceCode": "RoutePushService",
            "timestamp": timestamp, "msgData": msg, "msgDigest": sf_digest(msg, timestamp, checkword)}


def push_form_k100(nu: str, state: str, data: list[dict[str, Any]], salt: str = K100_SALT,
                   com: str = "zhongtong") -> dict[str, str]:
    param = orjson.dumps({"status": "polling", "message": "", "lastResult": {
        "nu": nu, "com": com, "state": state, "ischeck": "1" if state == "3" else "0", "data": data}}).decode()
    return {"param": param, "sign": kuaidi100_push_sign(param, salt)}


def push_form_deppon(waybill: str, traces: list[dict[str, Any]], timestamp: str = "1764576000000",
                     appkey: str = DP_APPKEY) -> dict[str, str]:
    params = orjson.dumps({"track_list": [{"tracking_number": waybill, "trace_list": traces}]}).decode()
    return {"companyCode": DP_COMPANY, "params": params, "timestamp": timestamp,
            "digest": deppon_digest(params, appkey, timestamp)}
