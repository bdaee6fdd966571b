"""`orderhub orders assign ORDER NAME --as WHO` (issue 12.1): the reassign use case from a terminal."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy import select

from bot.wiring import Runtime
from storage.models import AuditRow, OrderRow
from tests.bot.test_cli_users import cli, env  # noqa: F401 - the fixture
from tests.factories import order_json
from tests.webhooks.test_api import add_user, seed

ORDERS, AUDIT = OrderRow.__table__, AuditRow.__table__


async def _owner(runtime: Runtime) -> int | None:
    async with runtime.db.connect() as conn:
        return (await conn.execute(select(ORDERS.c.owner_user_id))).scalar_one()


async def test_assign_from_the_terminal(env: dict[str, str], client: httpx.AsyncClient,  # noqa: F811
                                        runtime: Runtime) -> None:
    for name, role, regions in (("east", "manager", ["华东"]), ("south", "manager", ["华南"]),
                                ("跟单", "supply_chain", ["华东"]), ("南跟单", "supply_chain", ["华南"])):
        await add_user(runtime, name, role, regions)
    await seed(client, runtime, [order_json(1, amount=Decimal("1000.00"), city="杭州")])
    key = "generic:G00000001"
    for args, code, words in (
        ((key, "跟单", "--as", "south"), 1, "forbidden"),  # another region's manager
        ((key, "无此人", "--as", "east"), 1, "user_not_found"),
        ((key, "南跟单", "--as", "east"), 1, "user_not_allowed"),
        (("9" * 30, "跟单", "--as", "east"), 1, "order_not_found"),
        ((key, "跟\x00单", "--as", "east"), 1, "bad_input"),
        ((key, "跟单", "--as", "ghost"), 2, "ghost"),  # the one reassigning must exist
    ):
        result = await cli(env, "orders", "assign", *args)
        assert result.exit_code == code and words in result.output, (args, result.output)
    assert await _owner(runtime) is None

    ok = await cli(env, "orders", "assign", key, "跟单", "--as", "east")
    assert ok.exit_code == 0, ok.output
    assert f"order {key}" in ok.output and "→ 跟单" in ok.output
    assert await _owner(runtime) == (await runtime.users.by_name("跟单")).id
    async with runtime.db.connect() as conn:
        assert (await conn.execute(select(AUDIT.c.actor).where(AUDIT.c.action == "order.assigned"))
                ).scalars().all() == ["east"]
