"""`orderhub refunds request|list|show` and a finance decision through `orderhub approvals approve` carrying on to
the refund."""

from __future__ import annotations

from decimal import Decimal

import httpx

from bot.wiring.runtime import Runtime
from tests.bot.test_cli_users import cli, env  # noqa: F401 - the fixture
from tests.factories import order_json
from tests.webhooks.test_api import seed


async def test_request_list_show_and_finance_approval(env: dict[str, str], client: httpx.AsyncClient,  # noqa: F811
                                                      runtime: Runtime) -> None:
    await seed(client, runtime, [order_json(1, amount=Decimal("2500.00")), order_json(2, amount=Decimal("900.00"))])
    for name, role in (("ops", "admin"), ("fin", "finance")):
        assert (await cli(env, "users", "add", name, "--role", role)).exit_code == 0
    small = await cli(env, "refunds", "request", "generic:G00000002", "--as", "ops", "--reason", "不要了")
    assert small.exit_code == 0, small.output
    assert "approved" in small.output and "refund-not-shipped" in small.output and "refund.requested" in small.output
    big = await cli(env, "refunds", "request", "generic:G00000001", "--as", "ops", "--reason", "取消",
                    "--amount", "2500")
    assert big.exit_code == 0 and "waiting_finance" in big.output, big.output
    too_much = await cli(env, "refunds", "request", "generic:G00000002", "--as", "ops", "--reason", "x",
                         "--amount", "1")
    assert too_much.exit_code == 1 and "amount_exceeds_order" in too_much.output
    listed = await cli(env, "refunds", "list", "--status", "waiting_finance")
    assert listed.exit_code == 0 and "1 refund(s)" in listed.output
    refund = (await runtime.refund_deps().refunds.refunds("waiting_finance", 10))[0]
    own = await cli(env, "approvals", "approve", str(refund.approval_id), "--as", "ops")
    assert own.exit_code == 1  # ops asked for it (four eyes) and is not finance
    ok = await cli(env, "approvals", "approve", str(refund.approval_id), "--as", "fin")
    assert ok.exit_code == 0, ok.output
    shown = await cli(env, "refunds", "show", str(refund.id))
    assert shown.exit_code == 0 and "approved" in shown.output and "refund.approved" in shown.output
    assert (await cli(env, "refunds", "show", "999")).exit_code == 1
    explained = await cli(env, "rules", "explain", "generic:G00000002")
    assert explained.exit_code == 0, explained.output
    assert "退款 #1" in explained.output and "refund-not-shipped" in explained.output
    assert (await cli(env, "rules", "explain", "generic:G00000002", "--refund", "99")).exit_code != 0
