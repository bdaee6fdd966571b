"""Planning before the transaction: an order already stored is looked up first, so a redelivery costs no rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson

from bot.settings import BUNDLED_RULES
from engine.channels import default_adapters
from engine.rules import load_rules
from engine.stages import Stage
from handlers.intake import ApprovalHistory, StoredOrderStamp, IntakeProcessor, OrderKey, IntakePlan, payload_hash
from handlers.ports import IntakeEntry
from tests.factories import order_json

NOW = datetime(2025, 11, 11, 2, 0, tzinfo=UTC)
RULES = load_rules(BUNDLED_RULES.read_text(encoding="utf-8"), str(BUNDLED_RULES))


class MemoryStore:
    """Stored orders by key; `known` (before planning) and the unit's `existing` read the same dict."""

    def __init__(self, stored: dict[OrderKey, StoredOrderStamp], *, lookup_fails: bool = False) -> None:
        self.stored, self.lookup_fails = stored, lookup_fails
        self.lookups = 0
        self.looked_at: list[list[OrderKey]] = []  # the keys of each lookup inside the transaction
        self.inserted: list[IntakePlan] = []
        self.updated: list[IntakePlan] = []
        self.encodings: list[object | None] = []  # what each insert was given as encoded ahead

    async def known(self, keys: list[OrderKey]) -> dict[OrderKey, StoredOrderStamp]:
        self.lookups += 1
        if self.lookup_fails:
            raise ConnectionError("database restarting")
        return {k: self.stored[k] for k in keys if k in self.stored}

    async def existing(self, keys: list[OrderKey]) -> dict[OrderKey, StoredOrderStamp]:
        self.looked_at.append(list(keys))
        return {k: self.stored[k] for k in keys if k in self.stored}

    async def history(self, asked: list, since: datetime) -> dict:
        return {}  # no history stored

    def encode_new(self, plans: list[IntakePlan], now: datetime) -> object | None:
        return ("encoded", tuple(p.key for p in plans))

    async def insert_new(self, plans: list[IntakePlan], encoded: object | None = None) -> set[OrderKey]:
        """As INSERT … ON CONFLICT DO NOTHING: a key stored already is not inserted."""
        assert encoded is None or encoded == ("encoded", tuple(p.key for p in plans)), "encoded for other plans"
        self.encodings.append(encoded)
        won = [p for p in plans if p.key not in self.stored]
        self.inserted += won
        return {p.key for p in won}

    async def approval_history(self, order_id: int) -> ApprovalHistory:
        return ApprovalHistory(False, None, None, ())  # never asked

    async def apply_update(self, plan: IntakePlan, supersede_pending: bool) -> None:
        self.updated.append(plan)

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[MemoryStore]:
        yield self


def _entries(raws: list[dict[str, Any]]) -> list[IntakeEntry]:
    return [IntakeEntry(f"{i}-0", "generic", orjson.dumps(raw)) for i, raw in enumerate(raws, start=1)]


def _stored(raw: dict[str, Any], digest: str | None = None) -> tuple[OrderKey, StoredOrderStamp]:
    data = default_adapters()["generic"].to_order(raw)
    return ("generic", data.external_id), StoredOrderStamp(7, digest or payload_hash(data), Stage.DESIGNING, NOW)


async def test_identical_redelivery_is_never_evaluated(evaluations: list[str]) -> None:
    old, new = order_json(1), order_json(2)
    store = MemoryStore(dict([_stored(old)]))
    processor = IntakeProcessor(store, default_adapters(), lambda: RULES, lookup_min_batch=1)

    result = await processor.process(_entries([old, new]), NOW)

    assert (result.inserted, result.duplicates, result.updated) == (1, 1, 0)
    assert evaluations == [new["external_id"]]  # the redelivery cost the lookup only
    assert [p.data.external_id for p in store.inserted] == [new["external_id"]]


async def test_changed_order_is_evaluated_once_as_an_update(evaluations: list[str]) -> None:
    raw = order_json(3)
    store = MemoryStore(dict([_stored(raw, digest="an-older-version")]))
    processor = IntakeProcessor(store, default_adapters(), lambda: RULES, lookup_min_batch=1)

    result = await processor.process(_entries([raw]), NOW)

    assert (result.inserted, result.duplicates, result.updated) == (0, 0, 1)
    assert evaluations == [raw["external_id"]]  # not also planned as new before the transaction
    assert store.updated[0].existing_id == 7 and not store.inserted


async def test_failed_lookup_only_costs_the_saving(evaluations: list[str]) -> None:
    old, new = order_json(4), order_json(5)
    store = MemoryStore(dict([_stored(old)]), lookup_fails=True)
    processor = IntakeProcessor(store, default_adapters(), lambda: RULES, lookup_min_batch=1)

    result = await processor.process(_entries([old, new]), NOW)

    # everything planned as new; the transaction's own lookup still finds the stored one a duplicate
    assert (result.inserted, result.duplicates, result.updated, result.failed) == (1, 1, 0, [])
    assert sorted(evaluations) == sorted([old["external_id"], new["external_id"]])


async def test_orders_stored_after_the_lookup_are_still_caught(evaluations: list[str]) -> None:
    """The lookup ran while the previous batch was still committing: it missed two keys that batch then stored.
    The transaction looks up only what the lookup found; the insert's conflict sorts out the two it missed."""
    found, same, changed, new = order_json(11), order_json(12), order_json(13), order_json(14)
    store = MemoryStore(dict([_stored(found)]))
    processor = IntakeProcessor(store, default_adapters(), lambda: RULES, lookup_min_batch=1)
    batch = await processor.prepare(_entries([found, same, changed, new]), NOW)
    store.stored.update([_stored(same), _stored(changed, digest="stored-meanwhile")])  # the previous batch commits

    result = await processor.commit(batch)

    assert (result.inserted, result.duplicates, result.updated, result.failed) == (1, 2, 1, [])
    # `found` is identical: a duplicate on the lookup's word; the one lookup is of the two the insert lost
    assert store.looked_at == [[("generic", same["external_id"]), ("generic", changed["external_id"])]]
    assert [p.data.external_id for p in store.inserted] == [new["external_id"]]
    assert [p.data.external_id for p in store.updated] == [changed["external_id"]]


async def test_the_insert_encoded_while_planning_is_used_only_for_exactly_those_plans() -> None:
    changed, new = order_json(15), order_json(16)
    store = MemoryStore(dict([_stored(changed, digest="an-older-version")]))
    processor = IntakeProcessor(store, default_adapters(), lambda: RULES, lookup_min_batch=1)

    await processor.process(_entries([new]), NOW)
    assert store.encodings == [("encoded", (("generic", new["external_id"]),))]

    # the lookup said `changed` was stored, but by the transaction it is gone: planned there, inserted with `new`
    batch = await processor.prepare(_entries([changed, order_json(17)]), NOW)
    del store.stored[("generic", changed["external_id"])]
    result = await processor.commit(batch)
    assert result.inserted == 2 and store.encodings[-1] is None  # encoded live by the unit instead


async def test_small_batches_skip_the_lookup(evaluations: list[str]) -> None:
    """A quiet queue's batch of a few orders: planning them is cheaper than the lookup's round trip."""
    old = order_json(7)
    store = MemoryStore(dict([_stored(old)]))
    processor = IntakeProcessor(store, default_adapters(), lambda: RULES, lookup_min_batch=3)

    result = await processor.process(_entries([old, order_json(8)]), NOW)

    assert store.lookups == 0
    assert (result.inserted, result.duplicates) == (1, 1)  # the transaction's own lookup still decides
    assert len(evaluations) == 2


async def test_intake_stores_the_compact_decision() -> None:
    store = MemoryStore({})
    processor = IntakeProcessor(store, default_adapters(), lambda: RULES)
    await processor.process(_entries([order_json(6)]), NOW)
    decisions = store.inserted[0].decisions
    assert "trace" not in decisions and decisions["rules_version"] == RULES.version
    assert decisions["inputs"] == {"order_id": 0, "stage": "pending_confirm", "stage_entered_at": NOW.isoformat(),
                                   "now": NOW.isoformat(), "default_facts": True}
    assert "regions" in decisions["fired"]


async def test_items_dumped_for_the_hash_are_the_items_stored() -> None:
    from storage.intake_unit import order_row

    raws = [order_json(i) for i in range(5)]
    store = MemoryStore({})
    result = await IntakeProcessor(store, default_adapters(), lambda: RULES).process(_entries(raws), NOW)

    assert result.inserted == 5
    for plan in store.inserted:
        assert plan.items_json is not None  # planned before the transaction, from the hash's dump
        assert plan.items_json == [i.model_dump(mode="json") for i in plan.data.items]
        assert order_row(plan) == order_row(replace(plan, items_json=None))  # the same row either way
