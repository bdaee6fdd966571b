"""Issue 12, the ladder across a leader's death: two `orderhub scheduler` processes run a compressed ladder (a 2-minute
limit in wall-clock time, warned at half of it, supervisor 1 minute after the breach, region head 2 minutes after;
groups wait 5 s). The leader is SIGKILLed mid-ladder — after the warnings and the breach, before the escalations —
and restarted; the other process takes the lease. Every warning, breach, escalation and grouped card reaches its
chat exactly once, and the supervisor's mailbox gets each order's breach copy exactly once (copies due together
share one e-mail)."""

from __future__ import annotations

import hashlib
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import BUNDLED_RULES
from storage.models import ChatIdentityRow, OrderRow, OutboxRow, UserRow
from tests.bot.telegram.scheduler_processes import scheduler_env, start_scheduler, stop_all, wait_until
from tests.standins.smtp import SmtpStandIn
from tests.standins.telegram_api import TelegramStandIn, parse_html

# Two scheduler processes walk a real (compressed) ladder in wall-clock time: ~4 minutes when idle, more under load.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BOSS = "boss@example.com"
FAST_LADDER = {  # the bundled rules with the ladder compressed into minutes (nothing else changes)
    "  pause_stages: []": "  pause_stages: []\n  grouping: {group_wait: 5s, group_interval: 20s}",
    "    - {role: supervisor, after: 4h}": "    - {role: supervisor, after: 1m}",
    "    - {role: region_head, after: 8h}": "    - {role: region_head, after: 2m}",
    "    - {id: sla-confirm, stage: pending_confirm, limit: 4h}":
        "    - {id: sla-confirm, stage: pending_confirm, limit: 2m, business_time: false, warn_at: 0.5}",
}


def _rules(path: Path) -> Path:
    text = BUNDLED_RULES.read_text(encoding="utf-8")
    for old, new in FAST_LADDER.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return path


def _wait(what: str, check: Callable[[], Any], timeout: float) -> None:
    wait_until(what, check, timeout, poll_s=0.1)


async def _seed(db: AsyncEngine, entered: datetime) -> None:
    async with db.begin() as conn:
        ids = {}
        for name, role, regions, tg, email in (("跟单员", "supply_chain", [], "200", None),
                                               ("主管", "supply_chain", [], "300", BOSS),
                                               ("东区经理", "manager", ["华东"], "400", None)):
            res = await conn.execute(insert(UserRow.__table__).values(
                name=name, role=role, regions=regions, created_at=entered, active=True, email=email,
                supervisor_id=ids.get("主管")))
            ids[name] = int(res.inserted_primary_key[0])
            await conn.execute(insert(ChatIdentityRow.__table__).values(
                user_id=ids[name], platform="telegram", external_id=tg, chat_id=tg, linked_at=entered))
        # the owner's supervisor link (added after both exist)
        await conn.execute(UserRow.__table__.update().where(UserRow.__table__.c.id == ids["跟单员"])
                           .values(supervisor_id=ids["主管"]))
        for ext, base in (("TM-HZ-1", "HZ"), ("TM-HZ-2", "HZ"), ("TM-HZ-3", "HZ"), ("TM-FS-1", "FS")):
            await conn.execute(insert(OrderRow.__table__).values(
                channel="tmall", external_id=ext, created_at=entered, received_at=entered, updated_at=entered,
                customer_id=f"C-{ext}", customer_name="王女士", customer_phone="13800138000", customer_city="杭州",
                customer_tier="normal", region="华东", amount=Decimal("3000.00"), currency="CNY",
                items=[{"sku": "CUR-1", "name": "窗帘", "qty": 1, "unit_price": "3000.00", "attributes": {}}],
                custom_fields={}, notes="", payload_hash=hashlib.md5(ext.encode()).hexdigest(),
                stage="pending_confirm", stage_entered_at=entered, stage_deadline=entered + timedelta(minutes=2),
                priority=1, flagged=False, owner_user_id=ids["跟单员"], production_base=base,
                manual_intervention=False))


async def test_leader_killed_mid_ladder_every_message_exactly_once(
        db: AsyncEngine, database_url: str, redis_url: str, redis: object, tmp_path: Path,
        telegram_api: TelegramStandIn, smtp_server: SmtpStandIn) -> None:
    entered = datetime.now(UTC) - timedelta(seconds=45)  # warning at +15 s, breach +75 s, rungs +135 s / +195 s
    await _seed(db, entered)
    env = scheduler_env(database_url, redis_url, telegram_api, tmp_path,
                        ORDERHUB_RULES=str(_rules(tmp_path / "rules.yaml")), ORDERHUB_STALL_SCAN_EVERY_S="2",
                        ORDERHUB_SMTP_URL=smtp_server.url, ORDERHUB_TOKEN_KEY="ladder-kill-test")

    def titles(chat: str) -> list[str]:
        return [parse_html(m["text"]).splitlines()[0] for m in telegram_api.ok_calls("sendMessage")
                if str(m["chat_id"]) == chat]

    a = start_scheduler(env, tmp_path, tmp_path / "a.log")
    b = None
    try:
        _wait("the owner's warnings", lambda: len(titles("200")) >= 2, timeout=180)
        b = start_scheduler(env, tmp_path, tmp_path / "b.log")  # waits for the lease
        _wait("the owner's breach cards", lambda: len(titles("200")) >= 4, timeout=240)
        assert titles("300") == [] and titles("400") == []  # mid-ladder: the escalations are still to come
        leader = a
        leader.send_signal(signal.SIGKILL)
        leader.wait(10)
        a = start_scheduler(env, tmp_path, tmp_path / "a.log")  # restarted: now it is the one waiting
        _wait("the supervisor's and the region head's cards",
              lambda: len(titles("300")) >= 2 and len(titles("400")) >= 2, timeout=420)
        time.sleep(12)  # two more scans and group passes: anything doubled would show now
    finally:
        stop_all(a, b)

    logs = "".join((tmp_path / f"{n}.log").read_text(errors="replace") for n in ("a", "b"))
    assert Counter(t.split(" · 最久")[0] for t in titles("200")) == Counter({
        "⚠️ 待确认即将超时 3 单 · 基地 HZ": 1, "⚠️ 即将超时 · TM-FS-1": 1,
        "⏰ 待确认超时 3 单 · 基地 HZ": 1, "⏰ 订单超时 · TM-FS-1": 1}), logs[-4000:]
    for chat in ("300", "400"):  # the supervisor's rung, then the region head's: one group card and one single each
        assert Counter(t.split(" · 最久")[0] for t in titles(chat)) == Counter(
            {"⏰ 待确认超时 3 单 · 基地 HZ": 1, "⏰ 订单超时 · TM-FS-1": 1}), (chat, titles(chat))
    assert telegram_api.ok_calls("editMessageText") == []  # each burst fit its group_wait: no card needed an edit
    # breach copies due together share one e-mail: each order's copy is in exactly one of them
    bodies = [m.get_content() for m in smtp_server.to(BOSS)]
    copies = Counter(ext for body in bodies for ext in ("TM-HZ-1", "TM-HZ-2", "TM-HZ-3", "TM-FS-1")
                     if f"订单: {ext}\n" in body)
    assert copies == Counter({"TM-HZ-1": 1, "TM-HZ-2": 1, "TM-HZ-3": 1, "TM-FS-1": 1}), bodies
    async with db.connect() as conn:
        keys = (await conn.execute(select(OutboxRow.__table__.c.dedup_key))).scalars().all()
    for ext_id in range(1, 5):
        assert {f"stall:{ext_id}:pending_confirm:{lv}" for lv in ("warn", "0", "1", "2")} <= set(keys)
