"""A deactivated owner stops receiving alerts: their open orders are re-picked by the rules' `owners:` rows
(the same assignment code as a stage entry) or left without an owner, every change audited
(handlers.owners.deactivate_owner, `orderhub users deactivate`)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from engine.rules import RuleSet
from handlers.owners import AssignRefused, deactivate_owner
from handlers.stalls import scan_stalls
from storage.models import AuditRow, OrderRow, UserRow
from storage.owner_deactivation import SqlOwnerDeactivation
from tests.handlers.conftest import World
from tests.handlers.test_owners import _intake, _stalled, owner_rules  # noqa: F401 - the fixture

ORDERS, AUDIT, USERS = OrderRow.__table__, AuditRow.__table__, UserRow.__table__


async def _owner(w: World, oid: int) -> int | None:
    async with w.engine.connect() as conn:
        return (await conn.execute(select(ORDERS.c.owner_user_id).where(ORDERS.c.id == oid))).scalar_one()


async def test_a_deactivated_owners_orders_are_re_picked_and_the_next_alert_goes_to_the_new_owner(
        world: World, owner_rules: RuleSet) -> None:
    w = world
    oid, a, b, _boss_a, _boss_b = await _stalled(w, owner_rules)
    done_order = await w.order("DONE-1", stage="completed", owner=a)  # a finished order keeps its history
    w.clock.advance(minutes=1)
    await scan_stalls(w.repo, w.clock)
    await w.drain()
    assert [s.message.chat_id for s in w.channel.sent] == ["201"]  # 东一 owns it (round-robin turn 1)

    done = await deactivate_owner(SqlOwnerDeactivation(w.engine), owner_rules, "东一", "ops", w.clock.now())
    assert (done.user, done.was_active, done.repicked, done.cleared) == (
        "东一", True, (("generic:G00000001", "东二"),), ())
    assert await _owner(w, oid) == b and await _owner(w, done_order) == a
    w.clock.advance(hours=4)  # the supervisor rung: the new owner's supervisor, not 东一's
    await scan_stalls(w.repo, w.clock)
    await w.drain()
    assert [s.message.chat_id for s in w.channel.sent] == ["201", "302"]

    async with w.engine.connect() as conn:
        assert (await conn.execute(select(USERS.c.active).where(USERS.c.id == a))).scalar_one() is False
        rows = (await conn.execute(select(AUDIT).where(AUDIT.c.actor == "ops").order_by(AUDIT.c.id))).all()
        pick = (await conn.execute(select(AUDIT.c.detail).where(AUDIT.c.action == "order.owner")
                                   .order_by(AUDIT.c.id.desc()).limit(1))).scalar_one()
    assert [(r.action, r.subject) for r in rows] == [("user.deactivated", f"user:{a}"),
                                                     ("order.assigned", f"order:{oid}")]
    assert rows[0].detail == {"name": "东一", "was_active": True, "repicked": 1, "cleared": 0}
    assert rows[1].detail == {"from": "东一", "to": "东二", "stage": "designing", "via": "owner_deactivated"}
    assert pick["rule"] == "design-east" and pick["owner"] == "东二"  # the rules' own pick, as at a stage entry


async def test_with_nobody_else_in_the_pool_the_owner_is_cleared_and_gets_no_alert(world: World,
                                                                                   owner_rules: RuleSet) -> None:
    w = world
    a = await w.user("东一", "manager", ["华东"], tg="201")
    [oid] = (await _intake(w, owner_rules, range(1, 2))).keys()
    assert await _owner(w, oid) == a
    async with w.engine.begin() as conn:
        await conn.execute(update(ORDERS).where(ORDERS.c.id == oid).values(stage_deadline=w.clock.now()))

    done = await deactivate_owner(SqlOwnerDeactivation(w.engine), owner_rules, "东一", "ops", w.clock.now())
    assert (done.repicked, done.cleared) == ((), ("generic:G00000001",))
    assert await _owner(w, oid) is None
    w.clock.advance(minutes=1)
    await scan_stalls(w.repo, w.clock)
    await w.drain()
    assert "201" not in [s.message.chat_id for s in w.channel.sent]
    async with w.engine.connect() as conn:
        [cleared] = (await conn.execute(select(AUDIT.c.detail).where(AUDIT.c.action == "order.assigned"))).all()
    assert cleared.detail["to"] is None and "no active manager allowed in 华东" in cleared.detail["reason"]

    again = await deactivate_owner(SqlOwnerDeactivation(w.engine), owner_rules, "东一", "ops", w.clock.now())
    assert (again.was_active, again.repicked, again.cleared) == (False, (), ())  # nothing left to move


async def test_an_order_in_a_stage_without_an_owners_row_is_cleared(world: World, owner_rules: RuleSet) -> None:
    w = world
    a = await w.user("东一", "manager", ["华东"], tg="201")
    await w.user("东二", "manager", ["华东"], tg="202")
    oid = await w.order("SHIP-1", stage="shipped", owner=a)  # no `owners:` row for shipped
    done = await deactivate_owner(SqlOwnerDeactivation(w.engine), owner_rules, "东一", "ops", w.clock.now())
    assert done.cleared == ("tmall:SHIP-1",) and await _owner(w, oid) is None
    async with w.engine.connect() as conn:
        [row] = (await conn.execute(select(AUDIT.c.detail).where(AUDIT.c.action == "order.assigned"))).all()
    assert row.detail["reason"] == "no owners: row for shipped"


@pytest.mark.parametrize(("name", "code"), [("无此人", "user_not_found"), ("东\x00一", "bad_input"), ("  ", "bad_input")])
async def test_refused_deactivations_change_nothing(world: World, owner_rules: RuleSet, name: str, code: str) -> None:
    await world.user("东一", "manager", ["华东"])
    with pytest.raises(AssignRefused) as exc:
        await deactivate_owner(SqlOwnerDeactivation(world.engine), owner_rules, name, "ops", world.clock.now())
    assert exc.value.code == code
    async with world.engine.connect() as conn:
        assert (await conn.execute(select(USERS.c.active))).scalars().all() == [True]
        assert (await conn.execute(select(AUDIT))).all() == []
