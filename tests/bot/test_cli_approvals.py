"""`orderhub approvals list | approve | reject`: the button's decide use case from a terminal (issue 8 #10)."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy import select, update

from bot.wiring.runtime import Runtime
from storage.models import ApprovalRow, OrderRow, OutboxRow
from tests.bot.test_cli_users import cli, env  # noqa: F401 - the fixture
from tests.factories import order_json
from tests.webhooks.test_api import add_user, seed

APPROVALS, ORDERS, OUTBOX = ApprovalRow.__table__, OrderRow.__table__, OutboxRow.__table__


async def _state(runtime: Runtime) -> tuple[str, str]:
    async with runtime.db.connect() as conn:
        row = (await conn.execute(select(ORDERS.c.stage, APPROVALS.c.status).join(
            APPROVALS, APPROVALS.c.order_id == ORDERS.c.id))).one()
    return row.stage, row.status


async def _setup(client: httpx.AsyncClient, runtime: Runtime, n: int) -> int:
    for name, role, regions in (("east", "manager", ["华东"]), ("east2", "manager", ["华东"]),
                                ("south", "manager", ["华南"])):
        await add_user(runtime, name, role, regions)
    await seed(client, runtime, [order_json(n, amount=Decimal("8000.00"), city="杭州")])
    async with runtime.db.connect() as conn:
        return (await conn.execute(select(APPROVALS.c.id))).scalar_one()


async def test_list_and_approve_with_the_buttons_checks(env: dict[str, str], client: httpx.AsyncClient,  # noqa: F811
                                                        runtime: Runtime) -> None:
    aid = await _setup(client, runtime, 1)
    listed = await cli(env, "approvals", "list")
    assert listed.exit_code == 0, listed.output
    assert "generic:G00000001" in listed.output and "manager" in listed.output

    wrong = await cli(env, "approvals", "approve", str(aid), "--as", "south")
    assert wrong.exit_code == 1 and "not allowed" in wrong.output
    nobody = await cli(env, "approvals", "approve", str(aid), "--as", "ghost")
    assert nobody.exit_code == 2 and "ghost" in nobody.output
    async with runtime.db.begin() as conn:  # four-eyes on the requester
        east = (await runtime.users.by_name("east")).id
        await conn.execute(update(APPROVALS).values(requested_by=f"user:{east}"))
    own = await cli(env, "approvals", "approve", str(aid), "--as", "east")
    assert own.exit_code == 1 and "four eyes" in own.output
    assert await _state(runtime) == ("pending_confirm", "pending")

    ok = await cli(env, "approvals", "approve", str(aid), "--as", "east2")
    assert ok.exit_code == 0, ok.output
    assert await _state(runtime) == ("designing", "approved")
    again = await cli(env, "approvals", "reject", str(aid), "--as", "east2", "--reason", "late")
    assert again.exit_code == 1 and "already decided" in again.output
    async with runtime.db.connect() as conn:  # the running server's notifier edits every copy of the card
        assert f"approval_outcome:{aid}" in (await conn.execute(select(OUTBOX.c.dedup_key))).scalars().all()


async def test_reject_needs_a_reason_and_cancels(env: dict[str, str], client: httpx.AsyncClient,  # noqa: F811
                                                 runtime: Runtime) -> None:
    aid = await _setup(client, runtime, 2)
    blank = await cli(env, "approvals", "reject", str(aid), "--as", "east", "--reason", " ")
    assert blank.exit_code == 1 and "reason" in blank.output
    done = await cli(env, "approvals", "reject", str(aid), "--as", "east", "--reason", "价格有误")
    assert done.exit_code == 0, done.output
    assert await _state(runtime) == ("cancelled", "rejected")
