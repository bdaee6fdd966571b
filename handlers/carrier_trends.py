"""Carrier performance → a proactive suggestion: a degraded carrier × region becomes one alert to the rules'
recipient role (supply chain by default) with the figures and the backup carrier the rules name for it.

One alert per pair per ISO week (the outbox dedup key), however often the check runs; the same card goes to that
region's managers, who (with the admins) may press its button switching the region to the backup carrier
(handlers/carrier_switch.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from engine.carriers.performance import BASELINE, RECENT, Figures, Transit, degraded, figures
from engine.carriers.text import t
from engine.rules import RuleSet
from handlers.chat_ports import NewOutbox, OutboxStore

KIND = "carrier_degraded"


class TransitFacts(Protocol):
    async def transit_facts(self, since: datetime) -> list[tuple[str, str | None, datetime, datetime]]: ...


def alert_text(f: Figures, backup: str | None, language: str) -> str:
    name = t(f"carrier.{f.carrier}", language)
    head = (f"📉 {name} · {f.region} 时效下降" if language == "zh" else f"📉 {name} · {f.region} is slowing down")
    lines = [head,
             f"7 天 p50 {f.recent_p50_h} h / p90 {f.recent_p90_h} h（{f.recent_n} 单）" if language == "zh" else
             f"7-day p50 {f.recent_p50_h} h / p90 {f.recent_p90_h} h ({f.recent_n} deliveries)",
             f"30 天基线 p50 {f.base_p50_h} h / p90 {f.base_p90_h} h（{f.base_n} 单）" if language == "zh" else
             f"30-day baseline p50 {f.base_p50_h} h / p90 {f.base_p90_h} h ({f.base_n} deliveries)",
             f"×{f.p50_ratio:.1f} (p50) · ×{f.p90_ratio:.1f} (p90)"]
    if backup and backup != f.carrier:
        lines.append(f"建议：{f.region} 切换到备用承运商 {t(f'carrier.{backup}', language)}" if language == "zh" else
                     f"Suggestion: switch {f.region} to the backup carrier {t(f'carrier.{backup}', language)}")
    return "\n".join(lines)


async def check_degradation(facts: TransitFacts, outbox: OutboxStore, rules: Callable[[], RuleSet], now: datetime,
                            language: str = "zh") -> list[Figures]:
    """Queue one alert per degraded carrier × region; return the degraded figures."""
    carrier_rules = rules().model.carriers
    rows = await facts.transit_facts(now - RECENT - BASELINE)
    hits: Sequence[Figures] = degraded(figures((Transit(*r) for r in rows), now), carrier_rules.degradation)
    year, week, _ = now.isocalendar()
    items = []
    for f in hits:
        choice = carrier_rules.choice(f.region)
        backup = choice.backup if choice.primary == f.carrier else choice.primary
        key = f"{KIND}:{f.carrier}:{f.region}:{year}-W{week:02d}"
        payload = {"text": alert_text(f, backup, language), "carrier": f.carrier, "region": f.region,
                   "backup": backup, "recent_p50_h": f.recent_p50_h, "recent_p90_h": f.recent_p90_h,
                   "base_p50_h": f.base_p50_h, "base_p90_h": f.base_p90_h, "recent_n": f.recent_n,
                   "base_n": f.base_n}
        role = carrier_rules.degradation.notify_role
        items.append(NewOutbox(key, KIND, now, payload, recipient_role=role))
        if role != "manager" and f.region:  # the region's managers may press the card's Switch button too
            items.append(NewOutbox(f"{key}:manager", KIND, now, payload, recipient_role="manager",
                                   recipient_region=f.region))
    if items:
        await outbox.enqueue(items, now)
    return list(hits)
