"""Verifying a carrier's push in its own scheme, and the answer each carrier expects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.carriers.signing import deppon_digest, kuaidi100_push_sign, same, sf_digest

ANSWERS: dict[str, dict[str, Any]] = {
    "sf": {"return_code": "0000", "return_msg": "成功"},
    "kuaidi100": {"result": True, "returnCode": "200", "message": "成功"},
    "deppon": {"result": "true", "resultCode": "1000", "reason": "成功"},
}
# The field whose content is the push (what is queued and parsed), per carrier.
PAYLOAD_FIELD = {"sf": "msgData", "kuaidi100": "param", "deppon": "params"}


@dataclass(frozen=True, slots=True)
class PushSecrets:
    """What verifies one carrier's pushes: SF checkword (+ partnerID), Deppon appkey (+ companyCode), K100 salt."""

    carrier: str
    secret: str
    account: str = ""  # SF partnerID / Deppon companyCode the push must name; empty: not checked


def verify_push(s: PushSecrets, fields: Mapping[str, str]) -> bool:
    if s.carrier == "sf":
        if s.account and fields.get("partnerID", "") != s.account:
            return False
        want = sf_digest(fields.get("msgData", ""), fields.get("timestamp", ""), s.secret)
        return same(want, fields.get("msgDigest", ""))
    if s.carrier == "deppon":
        if s.account and fields.get("companyCode", "") != s.account:
            return False
        want = deppon_digest(fields.get("params", ""), s.secret, fields.get("timestamp", ""))
        return same(want, fields.get("digest", ""))
    if s.carrier == "kuaidi100":
        return same(kuaidi100_push_sign(fields.get("param", ""), s.secret), fields.get("sign", "").upper())
    return False
