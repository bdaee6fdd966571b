"""Carrier arithmetic and parsing, as tables: digests, signs, status maps, pushes, waybill patterns."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from urllib.parse import quote_plus

import orjson
import pytest

from engine.carriers import TrackStatus, event_key
from engine.carriers.parsing import PushFormatError, parse_deppon_traces, parse_k100_push, parse_sf_push
from engine.carriers.push import PushSecrets, verify_push
from engine.carriers.model import waybill_ok
from engine.carriers.signing import deppon_digest, kuaidi100_push_sign, kuaidi100_query_sign, sf_digest


def test_sf_digest_is_base64_md5_of_the_urlencoded_concatenation() -> None:
    msg, ts, cw = '{"a": "顺丰 x"}', "1700000000000", "cw"
    want = base64.b64encode(hashlib.md5(quote_plus(msg + ts + cw).encode()).digest()).decode()
    assert sf_digest(msg, ts, cw) == want
    assert "+" in quote_plus(msg + ts + cw)  # a space is encoded as Java's URLEncoder does it


def test_deppon_digest_is_base64_of_the_hex_md5() -> None:
    hexd = hashlib.md5(b"{}key123").hexdigest()
    assert deppon_digest("{}", "key", "123") == base64.b64encode(hexd.encode()).decode()
    assert len(base64.b64decode(deppon_digest("{}", "key", "123"))) == 32  # the hex string, not raw bytes


def test_kuaidi100_signs_are_upper_md5() -> None:
    assert kuaidi100_push_sign("p", "salt") == hashlib.md5(b"psalt").hexdigest().upper()
    assert kuaidi100_query_sign("p", "k", "c") == hashlib.md5(b"pkc").hexdigest().upper()


@pytest.mark.parametrize(("op", "status"), [("50", TrackStatus.PICKED_UP), ("44", TrackStatus.OUT_FOR_DELIVERY),
                                            ("80", TrackStatus.DELIVERED), ("70", TrackStatus.EXCEPTION),
                                            ("30", TrackStatus.IN_TRANSIT), ("31", TrackStatus.IN_TRANSIT)])
def test_sf_op_codes(op: str, status: TrackStatus) -> None:
    msg = {"Body": {"WaybillRoute": [{"mailno": "SF1234567890123", "acceptTime": "2026-12-01 14:01:00",
                                      "acceptAddress": "上海", "remark": "x", "opCode": op}]}}
    (ev,) = parse_sf_push(orjson.dumps(msg))
    assert ev.status is status
    assert ev.at == datetime(2026, 12, 1, 6, 1, tzinfo=UTC)  # Beijing time → UTC


@pytest.mark.parametrize(("state", "status"), [("1", "picked_up"), ("0", "in_transit"), ("5", "out_for_delivery"),
                                               ("3", "delivered"), ("2", "exception"), ("6", "returning"),
                                               ("4", "returned")])
def test_kuaidi100_states(state: str, status: str) -> None:
    param = {"lastResult": {"nu": "7301", "state": state, "data": [
        {"time": "2026-12-01 10:00:00", "ftime": "2026-12-01 10:00:00", "context": "new", "status": "在途"},
        {"time": "2026-11-30 10:00:00", "ftime": "2026-11-30 10:00:00", "context": "old", "status": "揽收"}]}}
    newest, older = parse_k100_push(orjson.dumps(param))
    assert newest.status.value == status
    assert older.status is TrackStatus.PICKED_UP


def test_deppon_traces() -> None:
    evs = parse_deppon_traces({"track_list": [{"tracking_number": "DPK300000000001", "trace_list": [
        {"time": "2026-12-01 09:00:00", "city": "广州", "description": "已揽收", "status": "GOT"},
        {"time": "2026-12-02 09:00:00", "city": "深圳", "description": "已签收", "status": "SIGNED"}]}]})
    assert [e.status for e in evs] == [TrackStatus.PICKED_UP, TrackStatus.DELIVERED]


@pytest.mark.parametrize("bad", [b"not json", b"{}", b'{"Body": {"WaybillRoute": "x"}}',
                                 b'{"Body": {"WaybillRoute": [{"mailno": "SF1", "acceptTime": "yesterday"}]}}',
                                 b'{"Body": {"WaybillRoute": [{"mailno": "", "acceptTime": "2026-12-01 00:00:00"}]}}'])
def test_malformed_pushes_are_refused(bad: bytes) -> None:
    with pytest.raises(PushFormatError):
        parse_sf_push(bad)


def test_the_same_scan_has_the_same_key_wherever_it_comes_from() -> None:
    msg = {"Body": {"WaybillRoute": [{"mailno": "SF1234567890123", "acceptTime": "2026-12-01 14:01:00",
                                      "remark": "到达", "opCode": "31"}]}}
    a = parse_sf_push(orjson.dumps(msg))[0]
    b = parse_sf_push(orjson.dumps({"Body": {"WaybillRoute": [msg["Body"]["WaybillRoute"][0]] * 2}}))[1]
    assert event_key(a) == event_key(b)


def test_push_verification_per_carrier() -> None:
    form = {"partnerID": "P", "msgData": "{}", "timestamp": "1", "msgDigest": sf_digest("{}", "1", "cw")}
    assert verify_push(PushSecrets("sf", "cw", "P"), form)
    assert not verify_push(PushSecrets("sf", "other", "P"), form)
    assert not verify_push(PushSecrets("sf", "cw", "Q"), form)
    k = {"param": "{}", "sign": kuaidi100_push_sign("{}", "s")}
    assert verify_push(PushSecrets("kuaidi100", "s"), k) and not verify_push(PushSecrets("kuaidi100", "t"), k)
    d = {"companyCode": "C", "params": "{}", "timestamp": "1", "digest": deppon_digest("{}", "k", "1")}
    assert verify_push(PushSecrets("deppon", "k", "C"), d) and not verify_push(PushSecrets("deppon", "k", "D"), d)


@pytest.mark.parametrize(("carrier", "waybill", "ok"), [("sf", "SF1234567890123", True), ("sf", "1234", False),
                                                        ("deppon", "DPK300000000001", True),
                                                        ("kuaidi100", "73100000001", True),
                                                        ("kuaidi100", "x" * 41, False), ("sf", "SF1<script>", False)])
def test_waybill_patterns(carrier: str, waybill: str, ok: bool) -> None:
    assert waybill_ok(carrier, waybill) is ok
