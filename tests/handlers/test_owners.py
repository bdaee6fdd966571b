"""Owners (issue 12.1): the rules' pick when an order enters a stage (intake and later moves), and reassignment
through the one use case; the stall alert follows the owner."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import orjson
import pytest
from sqlalchemy import select, update

from bot.settings import BUNDLED_RULES
from engine.channels import default_adapters
from engine.rules import RuleSet, load_rules
from handlers.intake import IntakeProcessor
from handlers.orders import transition
from handlers.owners import Assigner, AssignRefused, assign
from handlers.ports import IntakeEntry
from handlers.stalls import scan_stalls
from storage.intake_store import SqlIntakeStore
from storage.models import AuditRow, OrderRow, OwnerCursorRow
from storage.owners import SqlOwners
from tests.factories import order_json
from tests.handlers.conftest import World

ORDERS, AUDIT, CURSORS = OrderRow.__table__, AuditRow.__table__, OwnerCursorRow.__table__
OWNERS = """
owners:
  - {id: design-east, stage: designing, region: 华东, pool: {role: manager, strategy: round_robin}}
  - {id: production, stage: in_production, pool: {role: supply_chain, strategy: least_loaded}}
"""


@pytest.fixture(scope="module")
def owner_rules() -> RuleSet:
    return load_rules(BUNDLED_RULES.read_text(encoding="utf-8") + OWNERS, "owners.yaml")


async def _intake(w: World, rules: RuleSet, ids: range, city: str = "杭州") -> dict[int, int | None]:
    processor = IntakeProcessor(SqlIntakeStore(w.engine, w.clock), default_adapters(), lambda: rules)
    entries = [IntakeEntry(f"{i}-0", "generic", orjson.dumps(order_json(i, amount=Decimal("3000.00"), city=city)))
               for i in ids]
    result = await processor.process(entries, w.clock.now())
    assert result.inserted == len(entries)
    async with w.engine.connect() as conn:
        rows = (await conn.execute(select(ORDERS.c.id, ORDERS.c.stage, ORDERS.c.owner_user_id)
                                   .order_by(ORDERS.c.id))).all()
    assert {r.stage for r in rows} == {"designing"}  # auto-confirmed: it entered designing at intake
    return {r.id: r.owner_user_id for r in rows}


async def test_intake_gives_each_order_a_pool_member_in_turn(world: World, owner_rules: RuleSet) -> None:
    w = world
    a = await w.user("东一", "manager", ["华东"])
    b = await w.user("东二", "manager", ["华东", "华南"])
    await w.user("南区", "manager", ["华南"])  # another region's manager is no member
    off = await w.user("东休", "manager", ["华东"])
    async with w.engine.begin() as conn:
        await conn.execute(update(OrderRow.metadata.tables["users"]).where(
            OrderRow.metadata.tables["users"].c.id == off).values(active=False))
    owners = await _intake(w, owner_rules, range(1, 6))
    assert list(owners.values()) == [a, b, a, b, a]
    async with w.engine.connect() as conn:
        assert (await conn.execute(select(CURSORS.c.pool_key, CURSORS.c.seq))).all() == [("design-east|华东", 5)]
        audit = (await conn.execute(select(AUDIT.c.detail).where(AUDIT.c.action == "order.owner"))).scalars().all()
    assert audit[0]["rule"] == "design-east" and "round-robin turn 1 of 2" in audit[0]["reason"]


async def test_a_region_without_a_row_or_members_stays_unowned(world: World, owner_rules: RuleSet) -> None:
    await world.user("东一", "manager", ["华东"])
    assert set((await _intake(world, owner_rules, range(1, 3), city="广州")).values()) == {None}


async def test_a_later_move_assigns_the_least_loaded_member(world: World, owner_rules: RuleSet) -> None:
    w = world
    await w.user("东一", "manager", ["华东"])
    busy = await w.user("跟单甲", "supply_chain", ["华东"])
    free = await w.user("跟单乙", "supply_chain", ["华东"])
    await w.order("BUSY-1", stage="designing", owner=busy)  # one open order already
    ids = list((await _intake(w, owner_rules, range(1, 4))).keys())[1:]
    got = []
    for oid in ids:
        for to in ("ordered", "in_production"):
            detail = await transition(w.repo, owner_rules, str(oid), to, "", "tester", w.clock.now())
        got.append(detail.owner_user_id)
    assert got == [free, busy, free]  # 0/1 → 乙; 1/1 → the lower id 甲; 2/1 → 乙


async def test_concurrent_round_robin_turns_are_never_shared(world: World, owner_rules: RuleSet) -> None:
    """Several intake batches at once (the embedded SQLite serialises writers; PostgreSQL the pool row's lock)."""
    w = world
    members = [await w.user(f"东{i}", "manager", ["华东"]) for i in range(3)]
    processor = IntakeProcessor(SqlIntakeStore(w.engine, w.clock), default_adapters(), lambda: owner_rules)
    batches = [[IntakeEntry(f"{b}-{i}", "generic", orjson.dumps(order_json(b * 10 + i, amount=Decimal("3000.00"),
                                                                            city="杭州"))) for i in range(2)]
               for b in range(1, 7)]
    await asyncio.gather(*(processor.process(batch, w.clock.now()) for batch in batches))
    async with w.engine.connect() as conn:
        owners = (await conn.execute(select(ORDERS.c.owner_user_id))).scalars().all()
        seq = (await conn.execute(select(CURSORS.c.seq))).scalar_one()
    assert seq == 12 and sorted(owners.count(m) for m in members) == [4, 4, 4]


async def _stalled(w: World, rules: RuleSet) -> tuple[int, int, int, int, int]:
    boss_a = await w.user("主管甲", "manager", ["华北"], tg="301")
    boss_b = await w.user("主管乙", "manager", ["华北"], tg="302")
    a = await w.user("东一", "manager", ["华东"], tg="201", supervisor_id=boss_a)
    b = await w.user("东二", "manager", ["华东"], tg="202", supervisor_id=boss_b)
    [oid] = (await _intake(w, rules, range(1, 2))).keys()
    async with w.engine.begin() as conn:
        await conn.execute(update(ORDERS).where(ORDERS.c.id == oid).values(stage_deadline=w.clock.now()))
    return oid, a, b, boss_a, boss_b


async def test_reassigning_changes_who_gets_the_next_alert(world: World, owner_rules: RuleSet) -> None:
    w = world
    oid, a, _b, _ba, _bb = await _stalled(w, owner_rules)
    admin = Assigner(999, "管理员", "admin", ())
    w.clock.advance(minutes=1)
    await scan_stalls(w.repo, w.clock)
    await w.drain()
    assert [s.message.chat_id for s in w.channel.sent] == ["201"]  # the pool member the rules picked
    assert "负责人: 东一" in w.channel.sent[0].text  # the card names the owner

    done = await assign(SqlOwners(w.engine), admin, str(oid), "东二", w.clock.now())
    assert (done.owner, done.previous) == ("东二", "东一")
    w.clock.advance(hours=4)  # the supervisor rung: now the new owner's supervisor
    await scan_stalls(w.repo, w.clock)
    await w.drain()
    assert [s.message.chat_id for s in w.channel.sent] == ["201", "302"]
    async with w.engine.connect() as conn:
        [audit] = (await conn.execute(select(AUDIT).where(AUDIT.c.action == "order.assigned"))).all()
    assert (audit.actor, audit.subject, audit.detail["from"], audit.detail["to"]) == (
        "管理员", f"order:{oid}", "东一", "东二")


async def test_reassigned_before_the_first_alert_the_new_owner_gets_it(world: World, owner_rules: RuleSet) -> None:
    w = world
    oid, _a, _b, _ba, _bb = await _stalled(w, owner_rules)
    await assign(SqlOwners(w.engine), Assigner(999, "管理员", "admin", ()), str(oid), "东二", w.clock.now())
    w.clock.advance(minutes=1)
    await scan_stalls(w.repo, w.clock)
    await w.drain()
    assert [s.message.chat_id for s in w.channel.sent] == ["202"]


@pytest.mark.parametrize(("actor", "ref", "name", "code"), [
    (Assigner(1, "南区", "manager", ("华南",)), "{oid}", "东二", "forbidden"),  # another region's manager
    (Assigner(1, "财务", "finance", ("华东",)), "{oid}", "东二", "forbidden"),
    (Assigner(1, "管理员", "admin", ()), "{oid}", "无此人", "user_not_found"),
    (Assigner(1, "管理员", "admin", ()), "{oid}", "顾客", "user_not_found"),  # a customer is no staff user
    (Assigner(1, "管理员", "admin", ()), "{oid}", "南区经理", "user_not_allowed"),  # not allowed in 华东
    (Assigner(1, "管理员", "admin", ()), "{oid}", "东休", "user_inactive"),
    (Assigner(1, "管理员", "admin", ()), "9" * 40, "东二", "order_not_found"),  # a huge id
    (Assigner(1, "管理员", "admin", ()), "{oid}", "东\x00二", "bad_input"),
    (Assigner(1, "管理员", "admin", ()), "{oid}\x00", "东二", "bad_input"),
    (Assigner(1, "管理员", "admin", ()), "{oid}", "x" * 65, "bad_input"),
    (Assigner(1, "管理员", "admin", ()), "{oid}", "  ", "bad_input"),
])
async def test_refusals_change_nothing(world: World, owner_rules: RuleSet, actor: Assigner, ref: str, name: str,
                                       code: str) -> None:
    w = world
    oid, a, *_ = await _stalled(w, owner_rules)
    await w.user("南区经理", "manager", ["华南"])
    await w.user("顾客", "customer", ["华东"])
    off = await w.user("东休", "manager", ["华东"])
    async with w.engine.begin() as conn:
        await conn.execute(update(OrderRow.metadata.tables["users"]).where(
            OrderRow.metadata.tables["users"].c.id == off).values(active=False))
    with pytest.raises(AssignRefused) as exc:
        await assign(SqlOwners(w.engine), actor, ref.format(oid=oid), name, w.clock.now())
    assert exc.value.code == code
    async with w.engine.connect() as conn:
        assert (await conn.execute(select(ORDERS.c.owner_user_id).where(ORDERS.c.id == oid))).scalar_one() == a
        assert (await conn.execute(select(AUDIT).where(AUDIT.c.action == "order.assigned"))).all() == []


async def test_the_regions_manager_may_reassign(world: World, owner_rules: RuleSet) -> None:
    w = world
    oid, _a, b, *_ = await _stalled(w, owner_rules)
    done = await assign(SqlOwners(w.engine), Assigner(5, "东区经理", "manager", ("华东",)), f"generic:G{1:08d}",
                        "东二", w.clock.now())
    assert done.order_id == oid
    async with w.engine.connect() as conn:
        assert (await conn.execute(select(ORDERS.c.owner_user_id).where(ORDERS.c.id == oid))).scalar_one() == b


async def test_an_approval_that_confirms_the_order_assigns_the_designing_owner(world: World,
                                                                                owner_rules: RuleSet) -> None:
    """The approval decision moves the order through the same move, so the owner rows apply there too."""
    from engine.tokens import Action, sign, version_ref
    from handlers.chat import ButtonPressed, Sender
    from handlers.dispatch import handle_event
    from storage.models import ApprovalRow

    w = world
    w.ctx.deadlines = owner_rules
    member = await w.user("东一", "manager", ["华东"], tg="101")
    processor = IntakeProcessor(SqlIntakeStore(w.engine, w.clock), default_adapters(), lambda: owner_rules)
    await processor.process([IntakeEntry("1-0", "generic", orjson.dumps(order_json(1, amount=Decimal("8000.00"),
                                                                                   city="杭州")))], w.clock.now())
    async with w.engine.connect() as conn:
        approval = (await conn.execute(select(ApprovalRow.__table__))).one()
        assert (await conn.execute(select(ORDERS.c.stage, ORDERS.c.owner_user_id))).one() == ("pending_confirm", None)
    token = sign(b"test-token-key", Action.APPROVE, approval.id, version_ref(approval.order_version))
    await handle_event(ButtonPressed(Sender("telegram", "101", "101", "101"), token, "cb"), w.ctx)
    async with w.engine.connect() as conn:
        assert (await conn.execute(select(ORDERS.c.stage, ORDERS.c.owner_user_id))).one() == ("designing", member)


async def test_company_wide_supply_chain_may_own_any_regions_order(world: World, owner_rules: RuleSet) -> None:
    w = world
    oid, *_ = await _stalled(w, owner_rules)
    everywhere = await w.user("总跟单", "supply_chain", [])
    await assign(SqlOwners(w.engine), Assigner(5, "东区经理", "manager", ("华东",)), str(oid), "总跟单", w.clock.now())
    async with w.engine.connect() as conn:
        assert (await conn.execute(select(ORDERS.c.owner_user_id).where(ORDERS.c.id == oid))).scalar_one() == everywhere
