"""Carrier degradation → one alert per carrier × region and week, to supply chain, naming the backup."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from bot.settings import BUNDLED_RULES
from engine.rules import load_rules
from handlers.carrier_trends import check_degradation
from tests.engine.test_carrier_performance import NOW, month


async def test_degradation_becomes_one_alert_per_pair_and_week() -> None:
    rules = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))
    transits = month(random.Random(3), slow=("sf", "华南"))

    class Facts:
        async def transit_facts(self, since: datetime) -> list[tuple[str, str | None, datetime, datetime]]:
            return [(x.carrier, x.region, x.picked_up_at, x.delivered_at) for x in transits if x.delivered_at >= since]

    class Outbox:
        def __init__(self) -> None:
            self.rows: dict[str, object] = {}

        async def enqueue(self, items: list[object], now: datetime) -> list[int]:
            new = [i for i in items if i.dedup_key not in self.rows]  # type: ignore[attr-defined]
            self.rows.update({i.dedup_key: i for i in new})  # type: ignore[attr-defined]
            return list(range(len(new)))

    outbox = Outbox()
    hits = await check_degradation(Facts(), outbox, lambda: rules, NOW)  # type: ignore[arg-type]
    await check_degradation(Facts(), outbox, lambda: rules, NOW + timedelta(hours=6))  # type: ignore[arg-type]
    assert [(h.carrier, h.region) for h in hits] == [("sf", "华南")]
    row, managers = outbox.rows.values()
    assert row.recipient_role == "supply_chain"  # type: ignore[attr-defined]
    assert (managers.recipient_role, managers.recipient_region) == ("manager", "华南")  # type: ignore[attr-defined]
    assert managers.payload == row.payload  # type: ignore[attr-defined]
    assert "德邦快递" in row.payload["text"] and "p50" in row.payload["text"]  # type: ignore[attr-defined]
