"""Carrier clients and push verifiers from Settings: a carrier is on when its credentials are set."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from bot.adapters.carriers.deppon import DepponClient
from bot.adapters.carriers.http import CarrierHttp
from bot.adapters.carriers.kuaidi100 import Kuaidi100Client
from bot.adapters.carriers.sf import SfClient
from bot.settings import Settings
from engine.carriers.push import PushSecrets, verify_push
from handlers.carriers import CarrierClient, Party

Verifier = Callable[[Mapping[str, str]], bool]


def build_carriers(s: Settings) -> dict[str, CarrierClient]:
    out: dict[str, CarrierClient] = {}
    t = s.carrier_timeout_s
    if s.sf_partner_id and s.sf_checkword:
        out["sf"] = SfClient(CarrierHttp("sf", s.sf_api_url, timeout_s=t), s.sf_partner_id,
                             s.sf_checkword.get_secret_value(), s.sf_monthly_card)
    if s.deppon_company_code and s.deppon_appkey:
        out["deppon"] = DepponClient(CarrierHttp("deppon", s.deppon_api_url, timeout_s=t), s.deppon_company_code,
                                     s.deppon_appkey.get_secret_value(), s.deppon_customer_code, s.deppon_sign)
    if s.kuaidi100_key and s.kuaidi100_customer and s.kuaidi100_salt:
        callback = f"{(s.public_url or 'http://127.0.0.1:8000').rstrip('/')}/webhooks/logistics/kuaidi100"
        out["kuaidi100"] = Kuaidi100Client(CarrierHttp("kuaidi100", s.kuaidi100_api_url, timeout_s=t),
                                           s.kuaidi100_key.get_secret_value(), s.kuaidi100_customer,
                                           s.kuaidi100_salt.get_secret_value(), callback)
    return out


def push_verifiers(s: Settings) -> dict[str, Verifier]:
    """Only carriers whose push secret is configured accept pushes; the others answer 404."""
    secrets = []
    if s.sf_checkword:
        secrets.append(PushSecrets("sf", s.sf_checkword.get_secret_value(), s.sf_partner_id or ""))
    if s.deppon_appkey:
        secrets.append(PushSecrets("deppon", s.deppon_appkey.get_secret_value(), s.deppon_company_code or ""))
    if s.kuaidi100_salt:
        secrets.append(PushSecrets("kuaidi100", s.kuaidi100_salt.get_secret_value()))
    return {p.carrier: partial(verify_push, p) for p in secrets}


def sender(s: Settings) -> Party:
    return Party(s.ship_from_name, s.ship_from_phone, s.ship_from_city, s.ship_from_address)


async def close_carriers(carriers: Mapping[str, CarrierClient]) -> None:
    for client in carriers.values():
        http = getattr(client, "http", None)
        if http is not None:
            await http.aclose()
