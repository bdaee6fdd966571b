"""Issue 11: messages to business people name channels and orders as people do, with no internal jargon.

Two nets: every template of the chat, refund, carrier and board catalogues (zh and en) is scanned as written, and the
texts built from stored keys (trend cards, the digest, the dead-letter notice, the board's explanation title) are
rendered and scanned, since those are where `tmall:TM…` keys used to leak through.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from board.text import BOARD
from engine.carriers.text import CARRIERS
from engine.digest import DigestData, PendingApproval, compose_digest
from engine.display import channel_name, order_words, order_words_from_key
from engine.kpi import Kpis
from engine.refund_text import REFUNDS
from engine.text import CHAT
from handlers.cards import trend_card
from handlers.notifier import _dead_letter

# Words of the machinery, not of the business: a person reading a chat message should never meet them.
JARGON = re.compile(r"死信|dead[ -]?letter|outbox|\bstream\b|payload|\btoken\b|\bhash\b|consumer|redis|"
                    r"\bentry\b|SPEC ?§|\b(?:generic|tmall|import):", re.IGNORECASE)
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
COMMAND = re.compile(r"orderhub [a-z-]+(?: [a-z-]+)?")  # a command an admin is told to run keeps its name
LANGUAGES = ("zh", "en")


def catalogue_texts() -> list[tuple[str, str, str]]:
    out = []
    for name, catalogue in (("chat", CHAT), ("refund", REFUNDS), ("carrier", CARRIERS), ("board", BOARD)):
        for key, entry in catalogue.entries.items():
            for lang in LANGUAGES:
                if isinstance(entry, dict) and isinstance(entry.get(lang), str):
                    out.append((f"{name}:{key}", lang, entry[lang]))
    return out


def jargon_in(text: str) -> list[str]:
    return JARGON.findall(COMMAND.sub("", PLACEHOLDER.sub("", text)))


def test_the_scan_catches_what_it_is_for() -> None:
    assert jargon_in("订单 tmall:TM1 已进入死信") and jargon_in("An outbox row in the dead letter stream")
    assert not jargon_in("订单 TM1（天猫）无法入库 · 执行 orderhub queue replay-dead · {entry_id}")


def test_no_template_speaks_jargon() -> None:
    texts = catalogue_texts()
    assert len(texts) > 300  # the catalogues were found
    offenders = [(where, lang, text) for where, lang, text in texts if jargon_in(text)]
    assert offenders == []


def test_catalogues_are_complete_in_both_languages() -> None:
    for catalogue in (CHAT, REFUNDS, CARRIERS):
        assert all(entry.get("zh") and entry.get("en") for entry in catalogue.entries.values())


def test_orders_in_people_words() -> None:
    assert order_words("tmall", "TM20251111-000123") == "TM20251111-000123（天猫）"
    assert order_words("tmall", "TM20251111-000123", "en") == "TM20251111-000123 (Tmall)"
    assert order_words_from_key("generic:G1") == "G1（自有渠道）"
    assert order_words_from_key("generic:G1", "en") == "G1 (own shop)"
    assert order_words_from_key("tmall:A:B") == "A:B（天猫）"  # a colon in the channel's own number stays
    assert channel_name("tmall", "en") == "Tmall" and channel_name("shopify") == "shopify"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_rendered_texts_built_from_keys_show_no_prefix(lang: str) -> None:
    now = datetime(2025, 11, 11, 1, 0, tzinfo=UTC)
    trend = trend_card({"trend_id": "delays", "category_zh": "物流延迟", "category_en": "Delay", "count": 3,
                        "orders": ["tmall:TM1", "generic:G2", "import:I3"]}, lang).as_text()
    digest = compose_digest(DigestData(
        day=date(2025, 11, 11), now=now, kpis=Kpis(None, None, None, None), kpi_days=7, intake_yesterday=3,
        stalled_by_stage={}, pending_total=2, anomalies=[], trends=[], dead_letters=1,
        pending_oldest=[PendingApproval("tmall:TM9", Decimal("8000.00"), "上海", now, "manager", "华东"),
                        PendingApproval("generic:G8", Decimal("9000.00"), "广州", now, "manager", "华南")]), lang)
    dead = _dead_letter({"channel": "tmall", "attempts": 5, "entry_id": "1-0", "error": "bad"}, lang)
    for text in (trend, digest, dead):
        assert not jargon_in(text), text
        assert not re.search(r"\b(?:tmall|generic|import)\b", text), text
    assert "TM1" in trend and "G2" in trend and "TM9" in digest and "G8" in digest
    assert ("天猫" if lang == "zh" else "Tmall") in dead


@pytest.mark.parametrize(("reason", "zh", "en"), [
    ("order cancelled", "已失效：订单已取消", "Void: the order was cancelled"),
    ("order decided by 12", "已失效：订单已由另一项审批决定", "another approval of this order decided it"),
    ("order changed after the request", "已失效：订单已变更，已发出新的审批", "the order changed"),
])
def test_a_void_approval_card_says_why_it_is_void(reason: str, zh: str, en: str) -> None:
    """A cancelled order's request card used to say "the order changed, a new request was sent" — untrue."""
    from engine.approvals import Approval, Status
    from handlers.cards import approval_status

    void = Approval(1, 2, "order", 1, "manager", "华东", Decimal("8000.00"), "v1", Status.SUPERSEDED, "system",
                    datetime(2025, 11, 11, tzinfo=UTC), decided_by="system", decided_at=datetime(2025, 11, 11, 3,
                                                                                                  tzinfo=UTC),
                    reason=reason)
    assert zh in approval_status(void, "zh", "Asia/Shanghai")
    assert en in approval_status(void, "en", "Asia/Shanghai")


def test_every_kind_of_message_has_a_name_for_the_admin() -> None:
    from engine.text import MESSAGE_KINDS, message_kind

    kinds = {"approval_request", "approval_outcome", "stall_alert", "trend_alert", "digest", "carrier_degraded",
             "tracking_update", "tracking_stall", "refund_update", "dead_letter", "admin_notice"}
    for lang in LANGUAGES:
        assert kinds <= set(MESSAGE_KINDS[lang]), lang
        assert all("_" not in message_kind(k, lang) for k in kinds)
    assert message_kind("something_new", "en") == "message"
