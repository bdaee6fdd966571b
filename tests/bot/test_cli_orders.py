"""`orderhub orders assign ORDER NAME --as WHO` (issue 12.1): the reassign use case from a terminal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import select, update

from bot.wiring.runtime import Runtime
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


async def test_deactivating_a_user_re_picks_their_open_orders(env: dict[str, str], client: httpx.AsyncClient,  # noqa: F811
                                                              runtime: Runtime, tmp_path: Path) -> None:
    """`orderhub users deactivate NAME`: the user can no longer sign in, and their open order gets the owner the
    rules' `owners:` row picks (here the other manager of 华东), audited."""
    from bot.settings import BUNDLED_RULES

    rules = tmp_path / "rules.yaml"
    rules.write_text(BUNDLED_RULES.read_text(encoding="utf-8") + "\nowners:\n  - {id: design-east, stage: designing, "
                     "region: 华东, pool: {role: manager, strategy: round_robin}}\n", encoding="utf-8")
    token = await add_user(runtime, "东一", "manager", ["华东"])
    await add_user(runtime, "东二", "manager", ["华东"])
    await seed(client, runtime, [order_json(1, amount=Decimal("1000.00"), city="杭州")])
    first = (await runtime.users.by_name("东一")).id
    async with runtime.db.begin() as conn:
        await conn.execute(update(ORDERS).values(owner_user_id=first, stage="designing"))
    assert (await client.get("/api/orders", headers={"Authorization": f"Bearer {token}"})).status_code == 200

    result = await cli(env | {"ORDERHUB_RULES": str(rules), "ORDERHUB_LANGUAGE": "en"},
                       "users", "deactivate", "东一", "--as", "ops")
    assert result.exit_code == 0, result.output
    assert "deactivated 东一; their 1 open orders: 1 re-picked by the rules, 0 left without an owner" in result.output
    assert "generic:G00000001 → 东二" in result.output
    assert await _owner(runtime) == (await runtime.users.by_name("东二")).id
    assert (await client.get("/api/orders", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    async with runtime.db.connect() as conn:
        actions = (await conn.execute(select(AUDIT.c.action).where(AUDIT.c.actor == "ops"))).scalars().all()
    assert actions == ["user.deactivated", "order.assigned"]

    ghost = await cli(env, "users", "deactivate", "无此人")
    assert ghost.exit_code == 2 and "无此人" in ghost.output
