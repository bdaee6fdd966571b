"""Carrier payloads → neutral `TrackEvent`s (pushes and route queries), and each carrier's status codes.

Carriers report Beijing time without a zone; China keeps no daylight saving, so +08:00 is exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from engine.carriers.model import TrackEvent, TrackStatus

CST = timezone(timedelta(hours=8))
MAX_EVENTS = 500  # per push: a route longer than this is not a parcel
_TEXT_MAX, _PLACE_MAX, _WAYBILL_MAX = 500, 200, 40


class PushFormatError(ValueError):
    """A payload whose signature was right but whose content is not what the carrier documents."""


S = TrackStatus
# SF opCode: 50 picked up, 44 out for delivery, 80 delivered; failure codes → exception; 99 returning.
SF_CODES: dict[str, TrackStatus] = {"50": S.PICKED_UP, "54": S.PICKED_UP, "44": S.OUT_FOR_DELIVERY,
                                    "204": S.OUT_FOR_DELIVERY, "80": S.DELIVERED, "8000": S.DELIVERED,
                                    "70": S.EXCEPTION, "33": S.EXCEPTION, "77": S.EXCEPTION, "99": S.RETURNING}
# Kuaidi100 lastResult.state.
K100_STATES: dict[str, TrackStatus] = {"1": S.PICKED_UP, "0": S.IN_TRANSIT, "5": S.OUT_FOR_DELIVERY,
                                       "3": S.DELIVERED, "2": S.EXCEPTION, "6": S.RETURNING, "4": S.RETURNED}
# Kuaidi100's per-scan label (data[].status) for the scans before the newest.
K100_LABELS: dict[str, TrackStatus] = {"揽收": S.PICKED_UP, "在途": S.IN_TRANSIT, "派件": S.OUT_FOR_DELIVERY,
                                       "签收": S.DELIVERED, "疑难": S.EXCEPTION, "退回": S.RETURNING,
                                       "退签": S.RETURNED}
# Deppon standard trace codes (德邦标准轨迹推送 trace_list[].status).
DEPPON_CODES: dict[str, TrackStatus] = {"GOT": S.PICKED_UP, "DEPARTURE": S.IN_TRANSIT, "ARRIVAL": S.IN_TRANSIT,
                                        "SENT_SCAN": S.OUT_FOR_DELIVERY, "SIGNED": S.DELIVERED,
                                        "FAILED": S.EXCEPTION, "ERROR": S.EXCEPTION, "BACK": S.RETURNING,
                                        "BACK_SIGNED": S.RETURNED}


def carrier_time(value: Any) -> datetime:
    """'YYYY-MM-DD HH:MM:SS' Beijing time → aware UTC."""
    if not isinstance(value, str):
        raise PushFormatError(f"time {value!r} is not a string")
    try:
        local = datetime.strptime(value.strip()[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise PushFormatError(f"time {value!r} is not YYYY-MM-DD HH:MM:SS") from None
    return local.replace(tzinfo=CST).astimezone(UTC)


def _text(value: Any, limit: int) -> str:
    return str(value or "").strip()[:limit]


def _waybill(value: Any) -> str:
    wb = _text(value, _WAYBILL_MAX + 1)
    if not wb or len(wb) > _WAYBILL_MAX:
        raise PushFormatError(f"waybill {value!r} is missing or too long")
    return wb


def _json(raw: str | bytes | Mapping[str, Any]) -> Any:
    if isinstance(raw, Mapping):
        return raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PushFormatError(f"not JSON: {exc}") from None


def _list(value: Any, what: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise PushFormatError(f"{what} is not a list")
    if len(value) > MAX_EVENTS:
        raise PushFormatError(f"{what} has more than {MAX_EVENTS} entries")
    return value


def sf_route(carrier: str, mailno: Any, route: Mapping[str, Any]) -> TrackEvent:
    code = _text(route.get("opCode"), 10)
    return TrackEvent(carrier, _waybill(mailno), carrier_time(route.get("acceptTime")),
                      SF_CODES.get(code, S.IN_TRANSIT), _text(route.get("remark"), _TEXT_MAX),
                      _text(route.get("acceptAddress"), _PLACE_MAX), code)


def parse_sf_push(msg_data: str | bytes | Mapping[str, Any]) -> list[TrackEvent]:
    """`{"Body": {"WaybillRoute": [{"mailno", "acceptTime", "acceptAddress", "remark", "opCode"}]}}`."""
    data = _json(msg_data)
    try:
        routes = data["Body"]["WaybillRoute"]
    except (KeyError, TypeError):
        raise PushFormatError("msgData has no Body.WaybillRoute") from None
    out = []
    for r in _list(routes, "WaybillRoute"):
        if not isinstance(r, Mapping):
            raise PushFormatError("a WaybillRoute entry is not an object")
        out.append(sf_route("sf", r.get("mailno"), r))
    return out


def parse_sf_routes(msg_data: Mapping[str, Any]) -> list[TrackEvent]:
    """EXP_RECE_SEARCH_ROUTES answer: `{"routeResps": [{"mailNo", "routes": [{...}]}]}`."""
    out = []
    for resp in _list(msg_data.get("routeResps") or [], "routeResps"):
        for r in _list(resp.get("routes") or [], "routes"):
            out.append(sf_route("sf", resp.get("mailNo"), r))
    return out


def parse_k100_result(carrier: str, last: Mapping[str, Any]) -> list[TrackEvent]:
    """A Kuaidi100 result (`lastResult` of a push, or a query answer): newest scan first; the overall `state`
    is the newest scan's status, the per-scan labels the others'."""
    waybill = _waybill(last.get("nu"))
    state = _text(last.get("state"), 4)
    out = []
    for i, d in enumerate(_list(last.get("data") or [], "data")):
        if not isinstance(d, Mapping):
            raise PushFormatError("a data entry is not an object")
        if i == 0 and state in K100_STATES:
            status, code = K100_STATES[state], state
        else:
            label = _text(d.get("status"), 10)
            status, code = K100_LABELS.get(label, S.IN_TRANSIT), label
        out.append(TrackEvent(carrier, waybill, carrier_time(d.get("ftime") or d.get("time")), status,
                              _text(d.get("context"), _TEXT_MAX), _text(d.get("areaName"), _PLACE_MAX), code))
    return out


def parse_k100_push(param: str | bytes) -> list[TrackEvent]:
    """`{"status", "message", "lastResult": {"nu", "com", "state", "data": [...]}}`."""
    data = _json(param)
    last = data.get("lastResult") if isinstance(data, Mapping) else None
    if not isinstance(last, Mapping):
        raise PushFormatError("param has no lastResult")
    return parse_k100_result("kuaidi100", last)


def parse_deppon_traces(params: str | bytes | Mapping[str, Any]) -> list[TrackEvent]:
    """A Deppon trace push or query answer: `{"track_list": [{"tracking_number", "trace_list": [{"time", "city",
    "description", "status"}]}]}`."""
    data = _json(params)
    tracks = data.get("track_list") if isinstance(data, Mapping) else None
    out = []
    for t in _list(tracks, "track_list"):
        waybill = _waybill(t.get("tracking_number"))
        for d in _list(t.get("trace_list") or [], "trace_list"):
            code = _text(d.get("status"), 16)
            out.append(TrackEvent("deppon", waybill, carrier_time(d.get("time")),
                                  DEPPON_CODES.get(code, S.IN_TRANSIT), _text(d.get("description"), _TEXT_MAX),
                                  _text(d.get("city"), _PLACE_MAX), code))
    return out


def parse_push(carrier: str, fields: Mapping[str, str]) -> list[TrackEvent]:
    """A verified push's form fields → events, by carrier."""
    if carrier == "sf":
        return parse_sf_push(fields.get("msgData", ""))
    if carrier == "kuaidi100":
        return parse_k100_push(fields.get("param", ""))
    if carrier == "deppon":
        return parse_deppon_traces(fields.get("params", ""))
    raise PushFormatError(f"unknown carrier {carrier!r}")
