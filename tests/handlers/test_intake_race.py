"""Two workers racing on the same order key: the one that loses the insert must not lose a changed order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import orjson
import pytest

from bot.settings import BUNDLED_RULES
from engine.channels import default_adapters
from engine.rules import load_rules
from engine.stages import Stage
from handlers.intake import ApprovalHistory, StoredOrderStamp, IntakeProcessor, OrderKey, IntakePlan, payload_hash
from handlers.ports import IntakeEntry
from tests.factories import order_json

NOW = datetime(2025, 11, 11, 2, 0, tzinfo=UTC)
RULES = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))


class LosingUnit:
    """Nothing is stored when we look; a rival worker commits every key before our insert lands."""

    def __init__(self, rival_hash: str) -> None:
        self.rival_hash, self.lookups = rival_hash, 0
        self.updates: list[tuple[IntakePlan, bool]] = []

    async def existing(self, keys: list[OrderKey]) -> dict[OrderKey, StoredOrderStamp]:
        self.lookups += 1
        if self.lookups == 1:
            return {}
        return {k: StoredOrderStamp(7, self.rival_hash, Stage.PENDING_CONFIRM, NOW) for k in keys}

    async def insert_new(self, plans: list[IntakePlan], encoded: object | None = None) -> set[OrderKey]:
        return set()

    async def approval_history(self, order_id: int) -> ApprovalHistory:
        return ApprovalHistory(False, None, None, ())  # never asked

    async def apply_update(self, plan: IntakePlan, supersede_pending: bool) -> None:
        self.updates.append((plan, supersede_pending))


class Store:
    def __init__(self, unit: LosingUnit) -> None:
        self._unit = unit

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[LosingUnit]:
        yield self._unit

    async def known(self, keys: list[OrderKey]) -> dict[OrderKey, StoredOrderStamp]:
        return {}  # nothing stored yet when the batch is planned

    async def history(self, asked: list, since: datetime) -> dict:
        return {}  # no history stored

    def encode_new(self, plans: list[IntakePlan], now: datetime) -> object | None:
        return None


@pytest.mark.parametrize("rival_same_content", [True, False])
async def test_lost_insert_race_is_a_duplicate_or_an_update(rival_same_content: bool) -> None:
    raw = order_json(1)
    ours = payload_hash(default_adapters()["generic"].to_order(raw))
    unit = LosingUnit(ours if rival_same_content else "an-older-version")
    processor = IntakeProcessor(Store(unit), default_adapters(), lambda: RULES)

    result = await processor.process([IntakeEntry("1-0", "generic", orjson.dumps(raw))], NOW)

    assert result.done == ["1-0"] and not result.failed and result.inserted == 0
    if rival_same_content:
        assert (result.duplicates, result.updated, unit.updates) == (1, 0, [])
    else:
        (plan, supersede), = unit.updates
        assert (result.duplicates, result.updated) == (0, 1)
        assert (plan.existing_id, plan.payload_hash, supersede) == (7, ours, True)
