"""The stall ladder, grouping windows and quiet hours as tables: pure functions, time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bot.settings import BUNDLED_RULES
from engine.alert_groups import Act, GroupPolicy, GroupState, decide, group_key
from engine.ladder import WARN_LEVEL, Step, due_steps, plan
from engine.order import Customer, Item, Order, OrderData
from engine.quiet import may_ring, parse_quiet, quiet_until
from engine.rules import load_rules
from engine.rules.model import RulesFile
from engine.stages import Stage

SH = ZoneInfo("Asia/Shanghai")
RULES = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def order(stage: Stage, entered: datetime, *, region: str = "西南", city: str = "成都") -> Order:
    customer = Customer(id="C1", name="王女士", phone="13800138000", city=city)
    data = OrderData(external_id="TM-1", created_at=entered, customer=customer,
                     items=[Item(sku="CUR-1", name="窗帘", qty=1, unit_price=Decimal("100"))], amount=Decimal("100"))
    return Order(1, "tmall", data, stage, entered.astimezone(UTC), region=region)


# --- warning and breach in business time (calendar 09:00-18:00, Mon-Sat, official holidays) -----------------------

LADDER_CASES = [
    # stage entered Saturday 2025-11-15 16:00: 2 working hours left that day, Sunday off, Monday from 09:00.
    # pending_confirm: limit 4h, warn_at 0.8 → 3h12m; supervisor +4h, region head +8h, all business time
    (Stage.PENDING_CONFIRM, local(2025, 11, 15, 16), "西南",
     {WARN_LEVEL: local(2025, 11, 17, 10, 12), 0: local(2025, 11, 17, 11), 1: local(2025, 11, 17, 15),
      2: local(2025, 11, 18, 10)}),
    # awaiting_install: limit 72h, warn_at 0.5 (its own) → 36 business hours = 4 days; the breach 8 days on
    (Stage.AWAITING_INSTALL, local(2025, 11, 17, 9), "西南",
     {WARN_LEVEL: local(2025, 11, 20, 18), 0: local(2025, 11, 25, 18)}),
    # shipped to 西南: 7d wall clock (business_time: false): the warning at 80 % = 5.6 days, Sunday counts
    (Stage.SHIPPED, local(2025, 11, 15, 16), "西南",
     {WARN_LEVEL: local(2025, 11, 21, 6, 24), 0: local(2025, 11, 22, 16), 1: local(2025, 11, 22, 20)}),
]


@pytest.mark.parametrize(("stage", "entered", "region", "expected"), LADDER_CASES)
def test_warning_and_breach_times_in_business_time(stage: Stage, entered: datetime, region: str,
                                                   expected: dict[int, datetime]) -> None:
    steps = {s.level: s for s in RULES.stage_ladder(order(stage, entered, region=region)) or ()}
    for level, at in expected.items():
        assert steps[level].at == at, (level, steps[level].at.astimezone(SH))
    assert steps[WARN_LEVEL].role == "owner" and steps[0].role == "owner"
    assert [steps[lv].role for lv in (1, 2)] == ["supervisor", "region_head"]


def test_a_stage_without_a_limit_has_no_ladder() -> None:
    assert RULES.stage_ladder(order(Stage.COMPLETED, local(2025, 11, 17, 9))) is None


# --- the ladder with acknowledgement and snooze -------------------------------------------------------------------

T = datetime(2025, 11, 17, 2, tzinfo=UTC)
STEPS = plan(T, T - timedelta(hours=1), [("owner", T), ("supervisor", T + timedelta(hours=4)),
                                          ("region_head", T + timedelta(hours=8))])

DUE_CASES = [
    # (hours after the deadline, acked, snoozed until (hours), levels due)
    (-2, False, None, []),
    (-0.5, False, None, [WARN_LEVEL]),  # the warning, before the breach
    (0, False, None, [0]),  # the breach: the warning no longer (the breach says more)
    (4, False, None, [0, 1]),
    (9, False, None, [0, 1, 2]),
    (9, True, None, []),  # acknowledged: the ladder ends
    (5, False, 6, []),  # snoozed: held
    (6, False, 6, [0, 1]),  # the snooze is over: what fell due meanwhile comes now
    (8, False, 6, [0, 1, 2]),
]


@pytest.mark.parametrize(("hours", "acked", "snoozed", "levels"), DUE_CASES)
def test_ladder_with_acknowledgement_and_snooze(hours: float, acked: bool, snoozed: float | None,
                                                levels: list[int]) -> None:
    until = T + timedelta(hours=snoozed) if snoozed is not None else None
    due = due_steps(STEPS, T + timedelta(hours=hours), acked=acked, snoozed_until=until)
    assert [s.level for s in due] == levels


def test_dedup_keys_are_per_order_stage_and_level() -> None:
    keys = {s.dedup_key(7, "designing") for s in STEPS}
    assert keys == {"stall:7:designing:warn", "stall:7:designing:0", "stall:7:designing:1", "stall:7:designing:2"}
    assert Step(WARN_LEVEL, "owner", T).kind == "warn" and Step(0, "owner", T).kind == "breach"


# --- grouping windows (Alertmanager's meaning) --------------------------------------------------------------------

POLICY = GroupPolicy(group_wait=timedelta(seconds=30), group_interval=timedelta(minutes=5),
                     repeat_interval=timedelta(hours=4))


def simulate(arrivals: list[float], until_s: float, policy: GroupPolicy = POLICY, tick_s: float = 5,
             handled_at: float | None = None) -> list[tuple[float, Act, int]]:
    """Run `decide` every `tick_s` over alerts arriving at `arrivals` (seconds); (time, act, alerts on the card)."""
    out: list[tuple[float, Act, int]] = []
    first = min(arrivals)
    shown, last = 0, None
    t = first
    while t <= until_s:
        now = T + timedelta(seconds=t)
        open_ = 0 if handled_at is not None and t >= handled_at else sum(1 for a in arrivals if a <= t)
        act = decide(GroupState(T + timedelta(seconds=first), last, open_, max(open_ - shown, 0)), now, policy)
        if act in (Act.SEND, Act.UPDATE, Act.REPEAT):
            shown, last = open_, now
            out.append((t, act, shown))
        elif act == Act.CLOSE:
            out.append((t, act, 0))
            break
        t += tick_s
    return out


def test_a_burst_of_20_within_group_wait_is_one_card() -> None:
    assert simulate([i * 1.0 for i in range(20)], until_s=290) == [(30, Act.SEND, 20)]


def test_a_21st_after_group_interval_is_one_update_not_a_new_card() -> None:
    acts = simulate([i * 1.0 for i in range(20)] + [200.0], until_s=3600)
    assert acts == [(30, Act.SEND, 20), (330, Act.UPDATE, 21)]  # 21st waits for group_interval after the card


def test_repeat_interval_reposts_an_open_group_and_a_handled_group_closes() -> None:
    acts = simulate([0.0, 1.0], until_s=4 * 3600 + 60)
    assert acts == [(30, Act.SEND, 2), (30 + 4 * 3600, Act.REPEAT, 2)]
    assert simulate([0.0, 1.0], until_s=600, handled_at=100) == [(30, Act.SEND, 2), (100, Act.CLOSE, 0)]
    no_repeat = GroupPolicy(repeat_interval=None)
    assert simulate([0.0], until_s=10 * 3600, policy=no_repeat, tick_s=60) == [(60, Act.SEND, 1)]


def test_group_key_uses_the_policy_labels() -> None:
    labels = {"stage": "in_production", "base": "HZ", "region": "华东"}
    assert group_key("u1", labels, POLICY) == "u1|stage=in_production|base=HZ|region=华东"
    by_stage = GroupPolicy(group_by=("stage",))
    assert group_key("u1", labels, by_stage) == group_key("u1", {**labels, "base": "FS"}, by_stage)


@pytest.mark.parametrize("grouping", [
    {"group_by": ["stage", "colour"]}, {"group_by": ["stage", "stage"]}, {"group_interval": "0m"},
    {"group_interval": "10m", "repeat_interval": "5m"}, {"group_wait": "soon"}, {"group_wait": "99999999s"},
    {"surprise": 1}])
def test_bad_grouping_is_refused_by_the_rules_model(grouping: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RulesFile.model_validate({"sla": {"grouping": grouping}})


def test_rules_grouping_keys_reach_the_policy() -> None:
    m = RulesFile.model_validate({"sla": {"grouping": {"group_by": ["base"], "group_wait": "45s",
                                                        "group_interval": "10m", "repeat_interval": "2h"}}})
    g = m.sla.grouping
    assert (g.group_by, g.group_wait, g.group_interval, g.repeat_interval) == (
        ["base"], timedelta(seconds=45), timedelta(minutes=10), timedelta(hours=2))


# --- quiet hours --------------------------------------------------------------------------------------------------

QUIET_CASES = [
    ("22:00-08:00", local(2025, 11, 17, 23, 30), local(2025, 11, 18, 8)),
    ("22:00-08:00", local(2025, 11, 18, 7, 59), local(2025, 11, 18, 8)),
    ("22:00-08:00", local(2025, 11, 18, 8), None),
    ("22:00-08:00", local(2025, 11, 17, 21, 59), None),
    ("12:00-13:30", local(2025, 11, 17, 12, 10), local(2025, 11, 17, 13, 30)),
    (None, local(2025, 11, 17, 23), None),
]


@pytest.mark.parametrize(("spec", "now", "until"), QUIET_CASES)
def test_quiet_until(spec: str | None, now: datetime, until: datetime | None) -> None:
    assert quiet_until(spec, now.astimezone(UTC), "Asia/Shanghai") == until


@pytest.mark.parametrize("bad", ["22-08", "24:00-08:00", "22:00-22:00", "", "22:00-08:00\x00"])
def test_bad_quiet_hours_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_quiet(bad)


def test_only_severe_breaches_ring_through() -> None:
    assert [may_ring(level, 2) for level in (WARN_LEVEL, 0, 1, 2)] == [False, False, False, True]
    assert not may_ring(5, None)
