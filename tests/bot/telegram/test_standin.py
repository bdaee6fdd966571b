"""The Bot API stand-in itself: bodies in every encoding clients use, token check, deterministic faults."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.standins.telegram_api import ApiFault, Faults, TelegramStandIn, parse_html


def test_json_form_and_multipart_bodies_are_understood(telegram_api: TelegramStandIn) -> None:
    base = f"{telegram_api.url}/bot{telegram_api.token}"
    markup = {"inline_keyboard": [[{"text": "ok", "callback_data": "t"}]]}
    with httpx.Client() as client:
        r1 = client.post(f"{base}/sendMessage", json={"chat_id": 5, "text": "json", "reply_markup": markup})
        r2 = client.post(f"{base}/sendMessage",
                         data={"chat_id": "5", "text": "form", "reply_markup": json.dumps(markup)})
        r3 = client.post(f"{base}/sendMessage", files={"chat_id": (None, "5"), "text": (None, "multi"),
                                                       "reply_markup": (None, json.dumps(markup))})
        r4 = client.post(f"{telegram_api.url}/bot1:wrong/sendMessage", json={"chat_id": 5, "text": "x"})
    assert [r.json()["result"]["message_id"] for r in (r1, r2, r3)] == [101, 102, 103]
    calls = telegram_api.all_calls("sendMessage")
    assert [c.content_type for c in calls[:3]] == ["application/json", "application/x-www-form-urlencoded",
                                                   "multipart/form-data"]
    assert all(c.params["reply_markup"] == markup and c.params["chat_id"] == "5" for c in calls[:3])
    assert r4.status_code == 401 and r4.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


def test_429_body_has_the_bot_api_shape(telegram_api: TelegramStandIn) -> None:
    telegram_api.faults = Faults(share_429=1.0, retry_after=4)
    resp = httpx.post(f"{telegram_api.url}/bot{telegram_api.token}/sendMessage", json={"chat_id": 1, "text": "x"})
    assert resp.status_code == 429
    assert resp.json() == {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 4",
                           "parameters": {"retry_after": 4}}


def test_faults_are_deterministic_per_seed() -> None:
    def run(seed: int) -> list[int | None]:
        faults = Faults(share_429=0.3, share_500=0.1, seed=seed)
        return [f.status if f else None for f in (faults.draw("sendmessage") for _ in range(200))]

    assert run(7) == run(7) and run(7) != run(8)
    drawn = run(7)
    assert 40 <= drawn.count(429) <= 80 and 8 <= drawn.count(500) <= 35
    assert Faults(share_429=1.0).draw("getme") is None  # only the configured methods fail


@pytest.mark.parametrize("bad", ["<b>unclosed", "a & b", "<script>x</script>", "1 > 0", "<b><i>x</b></i>"])
def test_html_is_validated_like_telegram(bad: str) -> None:
    with pytest.raises(ApiFault, match="can't parse entities"):
        parse_html(bad)


def test_html_parsed_text() -> None:
    assert parse_html('<b>a &lt;b&gt;</b> &amp; <a href="x">l</a> &#x27;') == "a <b> & l '"
