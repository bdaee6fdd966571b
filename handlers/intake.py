"""The intake use case: a batch of queued raw orders → canonical orders → rules decisions → one transaction.

At-least-once delivery from the queue becomes exactly-once in effect here: orders are keyed by (channel,
external_id); a redelivered identical order is a duplicate, a changed one is an update.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from engine.channels import ChannelAdapter, stored_channel
from engine.order import Order, OrderData, Transition
from engine.rules import ApprovalNeed, Facts, RuleSet, evaluate
from engine.rules.evaluate import make_ctx
from engine.rules.owners import OwnerNeed
from engine.stages import END_STATES, Stage
from handlers.ports import IntakeEntry, StoreUnavailable
from handlers.stock import StockLevels
from handlers import metrics

OrderKey = tuple[str, str]  # (channel, external_id)
HistoryAsk = tuple[str, datetime, str, str]  # (customer id, order created_at, channel, external_id)
FACTS_WINDOW = timedelta(days=30)  # complaints and exception notes counted by the rules (as RulesRepo.facts_for)
log = logging.getLogger("orderhub.intake")


@dataclass(slots=True)
class StoredOrderStamp:
    """What intake compares a queued order with: the stored row's id, content hash and stage (nothing else is read)."""

    id: int
    payload_hash: str
    stage: Stage
    stage_entered_at: datetime


@dataclass(slots=True)
class PlannedApproval:
    need: ApprovalNeed
    escalate_at: datetime | None


@dataclass(slots=True)
class IntakePlan:
    """Everything intake writes for one order (new or changed); the store turns it into rows."""

    channel: str
    data: OrderData
    payload_hash: str
    received_at: datetime
    stage: Stage
    stage_entered_at: datetime
    stage_deadline: datetime | None
    region: str | None
    priority: int
    production_base: str | None
    decisions: dict[str, Any]
    rules_version: str
    transitions: list[Transition] = field(default_factory=list)
    approvals: list[PlannedApproval] = field(default_factory=list)
    existing_id: int | None = None  # set for an update of a stored order
    requested_by: str = "system"  # who caused the order (the queue entry's requester): its approvals name them
    items_json: list[dict[str, Any]] | None = None  # `data.items` dumped in JSON mode, when the hash already did
    owner: OwnerNeed | None = None  # the rules' `owners:` row for the stage entered; None: none

    @property
    def key(self) -> OrderKey:
        return (self.channel, self.data.external_id)


@dataclass(frozen=True, slots=True)
class StoredHistory:
    """What the database holds about one asked order's customer and key: the history facts' raw counts."""

    previous: int  # the customer's other stored orders created before this one
    complaints: int  # the customer's complaints in the facts window
    notes: int  # exception notes on this order (when stored) in the facts window
    stored: bool  # this key is stored already


@dataclass(frozen=True, slots=True)
class ApprovalHistory:
    """What a stored order's approvals were about, read (inside the transaction) before it is changed."""

    requested: bool  # an order approval was ever requested for it (pending, decided or superseded)
    role: str | None  # who the latest request asked, so a review goes to the same approver
    region: str | None
    about: tuple[Any, ...]  # the stored amount, customer and items: what the approver saw


REVIEW_RULE = "changed-after-request"  # rule id of the review an approver gets for a change that needs no approval


def approval_subject(data: OrderData, items_json: list[dict[str, Any]] | None = None) -> tuple[Any, ...]:
    """What an order approval is about: amount, customer and items (notes or custom fields are not)."""
    c = data.customer
    items = items_json if items_json is not None else [i.model_dump(mode="json") for i in data.items]
    return (data.amount, c.id, c.name, c.phone, c.city, orjson.dumps(items, option=orjson.OPT_SORT_KEYS))


class IntakeUnit(Protocol):
    async def existing(self, keys: list[OrderKey]) -> dict[OrderKey, StoredOrderStamp]: ...

    async def approval_history(self, order_id: int) -> ApprovalHistory:
        """The order approvals of a stored order and what they were about (rare: updates only)."""
        ...

    async def insert_new(self, plans: list[IntakePlan], encoded: object | None = None) -> set[OrderKey]:
        """Insert what is not there yet; return the keys actually inserted (others raced in elsewhere).
        `encoded`: the store's `encode_new` of exactly these plans, when it made one."""
        ...

    async def apply_update(self, plan: IntakePlan, supersede_pending: bool) -> None: ...


class IntakeStore(Protocol):
    def unit(self) -> AbstractAsyncContextManager[IntakeUnit]:
        """One transaction: committed when the block exits normally."""
        ...

    async def known(self, keys: list[OrderKey]) -> dict[OrderKey, StoredOrderStamp]:
        """What is stored under these keys now, read outside any transaction: a hint for planning only (the unit
        looks again inside its transaction, and that answer decides)."""
        ...

    async def history(self, asked: list[HistoryAsk], since: datetime) -> dict[int, StoredHistory]:
        """The history facts of a whole batch in ONE query: by index into `asked`; an order with nothing stored
        (no earlier order, complaint or note, not stored) may be left out."""
        ...

    def encode_new(self, plans: list[IntakePlan], now: datetime) -> object | None:
        """The insert of these plans encoded for the database ahead of the transaction (CPU only, no I/O), so the
        commit that follows only sends it; None where the store has no use for it."""
        ...


@dataclass(slots=True)
class BatchResult:
    done: list[str] = field(default_factory=list)  # entry ids safe to acknowledge
    failed: list[tuple[IntakeEntry, str]] = field(default_factory=list)
    inserted: int = 0
    updated: int = 0
    duplicates: int = 0
    # stored (inserted or updated) orders whose SKUs are short at every capable base: (key, SKUs), for the 库存不足 note
    out_of_stock: list[tuple[OrderKey, tuple[str, ...]]] = field(default_factory=list)


def describe_error(exc: BaseException) -> str:
    """Why an entry failed, without the entry's values: a database error's first line only (its DETAIL, the SQL
    parameters and pydantic's `input_value` repeat the row: names, phone numbers), a validation error's paths and
    messages. This is what the log line and `dead_letters.error` say."""
    name = type(exc).__name__
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or '(order)'}: {e['msg']}" for e in exc.errors(include_url=False,
                                                                                                     include_input=False)]
        return f"{name}: " + "; ".join(parts)[:1000]
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error; its str() appends SQL and parameters
    if orig is not None:
        return f"{name} ({type(orig).__name__}): {_first_line(orig)}"
    return f"{name}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    # Drivers quote the offending value ("invalid input for query argument $3: '138…'", "Key (x)=(…)"), and
    # put more after "DETAIL:": keep the sentence, drop the values.
    line = line.split("DETAIL:")[0].strip()
    line = _QUOTED.sub("'…'", line)
    return _KEY_VALUE.sub("=(…)", line)[:500]


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_KEY_VALUE = re.compile(r"=\([^)]*\)")


# model_dump(mode="json") without its Python wrapper: this runs for every queued order.
_dump_json_mode = OrderData.__pydantic_serializer__.to_python


def payload_hash(data: OrderData) -> str:
    """Identity of an order's content, independent of key order and whitespace in the sender's JSON."""
    return hashed(data)[0]


def hashed(data: OrderData) -> tuple[str, list[dict[str, Any]]]:
    """`payload_hash(data)`, and the order's items dumped in JSON mode on the way (what the items column stores)."""
    dumped = _dump_json_mode(data, mode="json")
    raw = orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(raw, digest_size=16).hexdigest(), dumped["items"]


Item = tuple[IntakeEntry, str, OrderData, str]  # entry, stored channel, order, payload hash


@dataclass(slots=True)
class PreparedBatch:
    """A batch parsed and planned before any transaction opens.

    Planning (the rules) is most of a batch's CPU; done here, a worker can prepare the next batch while the database
    commits the previous one. Orders already stored (by the lookup before planning) are not planned here: an
    identical redelivery costs only that lookup, a changed one is planned as an update inside the transaction. The
    rest are planned as new, and their insert is encoded here too. With a lookup done (`stored` is not None), an
    identical redelivery is a duplicate at once (storing it again would change nothing, and a change stored after the
    lookup is kept rather than undone by a platform's retried copy), and the transaction looks again only at keys the
    lookup found changed. The others are inserted with ON CONFLICT DO NOTHING: any that another batch stored
    meanwhile come back as not inserted and are sorted out there (duplicate or update).
    """

    now: datetime
    rules: RuleSet
    items: list[Item]
    plans: dict[OrderKey, IntakePlan]
    result: BatchResult
    facts: dict[OrderKey, Facts] = field(default_factory=dict)  # the rules' history facts, looked up once
    stored: dict[OrderKey, str] | None = None  # payload hash of each key the lookup found; None: no lookup made
    encoded: object | None = None  # the store's encoding of the insert of `plans` (all of them, in their order)
    # Set once the batch's rows are written and only its COMMIT is left (or it is done): the next batch's
    # transaction may start then. Its writes wait on any key this one holds, so the order of effects is kept.
    written: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(slots=True)
class IntakeProcessor:
    store: IntakeStore
    adapters: Mapping[str, ChannelAdapter]
    rules: Callable[[], RuleSet]  # the current good rules; hot reload swaps what this returns
    # Below this many orders a batch plans faster than the lookup's round trip, and such batches are the
    # latency-sensitive ones (a quiet queue): plan them all and let the transaction sort out the redeliveries.
    lookup_min_batch: int = 50
    stock: StockLevels | None = None  # the stock table, read once per batch when the rules route by stock
    # after a commit: the batch's orders short of stock everywhere (handlers.stock.note_out_of_stock); a failure is
    # logged, never the batch's (its orders are stored)
    on_out_of_stock: Callable[[list[tuple[OrderKey, tuple[str, ...]]], RuleSet, datetime], Awaitable[object]] | None = None

    async def process(self, entries: list[IntakeEntry], now: datetime) -> BatchResult:
        return await self.commit(await self.prepare(entries, now))

    async def prepare(self, entries: list[IntakeEntry], now: datetime, *, yield_every: int = 0) -> PreparedBatch:
        """Parse, validate, hash and plan; no I/O but the lookup of stored keys. With `yield_every`, give the event
        loop a turn every that many orders, so a commit in flight on the same loop is not held up by this CPU work,
        and hash while the lookup is in the database."""
        result = BatchResult()
        valid: dict[OrderKey, tuple[IntakeEntry, str, OrderData]] = {}
        for n, entry in enumerate(entries, start=1):
            if yield_every and n % yield_every == 0:
                await asyncio.sleep(0)
            try:
                data = self.adapters[entry.channel].parse(entry.body)
                channel = stored_channel(data, entry.channel, self.adapters)  # never another sender's orders
            except Exception as exc:  # an adapter bug, bad data or a foreign channel: this entry only
                result.failed.append((entry, describe_error(exc)))
                continue
            key = (channel, data.external_id)
            if key in valid:  # the same order twice in one batch: the later delivery wins
                result.duplicates += 1
                result.done.append(valid[key][0].id)
            valid[key] = (entry, channel, data)
        history = asyncio.ensure_future(self._history(valid, now)) if valid else None
        stock = asyncio.ensure_future(self._stock(valid)) if valid and self._uses_stock() else None
        lookup = (asyncio.ensure_future(self._known(list(valid)))
                  if len(valid) >= self.lookup_min_batch else None)
        if (lookup is not None or history is not None) and yield_every:
            await asyncio.sleep(0)  # the query leaves now; hashing below overlaps its round trip
        parsed: dict[OrderKey, Item] = {}
        items_json: dict[OrderKey, list[dict[str, Any]]] = {}
        for n, (key, (entry, channel, data)) in enumerate(valid.items(), start=1):
            if yield_every and n % yield_every == 0:
                await asyncio.sleep(0)
            try:
                digest, items_json[key] = hashed(data)
            except Exception as exc:  # any crash of one entry fails that entry only, never the worker
                result.failed.append((entry, describe_error(exc)))
                continue
            parsed[key] = (entry, channel, data, digest)
        try:
            facts = await history if history is not None else {}
            if stock is not None:
                _with_stock(facts, valid, await stock)
        except BaseException:
            for task in (lookup, stock):
                if task is not None:
                    task.cancel()
            raise
        stored = await lookup if lookup is not None else None
        rules = self.rules()
        plans: dict[OrderKey, IntakePlan] = {}
        for n, (key, (entry, channel, data, digest)) in enumerate(parsed.items(), start=1):
            if yield_every and n % yield_every == 0:
                await asyncio.sleep(0)
            if stored is not None and key in stored:  # a redelivery (same hash) or a change (an update, planned
                continue  # in the transaction)
            try:
                plans[key] = _by(plan_new_order(channel, data, digest, _received(entry, now), rules, now,
                                                items_json=items_json[key], facts=facts.get(key)), entry)
            except Exception:  # noqa: BLE001, S112 - planned again in the transaction; its failure is reported there
                continue
        encoded = self.store.encode_new(list(plans.values()), now) if plans else None
        return PreparedBatch(now, rules, list(parsed.values()), plans, result, facts,
                             None if stored is None else {k: e.payload_hash for k, e in stored.items()}, encoded)

    async def _history(self, valid: Mapping[OrderKey, tuple[IntakeEntry, str, OrderData]],
                       now: datetime) -> dict[OrderKey, Facts]:
        """The rules' history facts of every order of the batch, from one query (not one per order).

        The batch's own orders count too: an order of a customer who has an earlier order in the same batch (not
        stored yet) is a repeat order, as `rules explain` will say once both are stored. A failure here is the
        batch's (retried), never "decide on no history"."""
        keys = list(valid)
        asked = [(d.customer.id, d.created_at, ch, d.external_id) for (_, ch, d) in valid.values()]
        found = await self.store.history(asked, now - FACTS_WINDOW)
        by_customer: dict[str, list[int]] = {}
        for i, (cid, *_rest) in enumerate(asked):
            by_customer.setdefault(cid, []).append(i)
        out: dict[OrderKey, Facts] = {}
        for i, key in enumerate(keys):
            h = found.get(i)
            previous = h.previous if h else 0
            same = by_customer[asked[i][0]]
            if len(same) > 1:  # earlier orders of this customer in this batch that the database does not hold yet
                at = asked[i][1]
                previous += sum(1 for j in same if j != i and asked[j][1] < at
                                and not ((hj := found.get(j)) is not None and hj.stored))
            if h is None and previous == 0:
                continue  # no history: the default Facts()
            out[key] = Facts(complaints_30d=h.complaints if h else 0, previous_orders=previous,
                             exception_notes_30d=h.notes if h else 0)
        return out

    def _uses_stock(self) -> bool:
        return self.stock is not None and self.rules().model.routing.use_stock

    async def _stock(self, valid: Mapping[OrderKey, tuple[IntakeEntry, str, OrderData]]) -> dict[str, int]:
        """The stock levels of every SKU of the batch, one lookup; a failure is the batch's (retried), never
        "route as if nothing were known"."""
        assert self.stock is not None
        return await self.stock.levels(sorted({i.sku for (_, _, d) in valid.values() for i in d.items}))

    async def _known(self, keys: list[OrderKey]) -> dict[OrderKey, StoredOrderStamp] | None:
        if not keys:
            return {}
        try:
            return await self.store.known(keys)
        except Exception as exc:  # noqa: BLE001 - only a hint: without it every order is planned as new
            log.warning("lookup before planning failed, planning the batch of %d as new: %s", len(keys), exc)
            return None

    async def commit(self, batch: PreparedBatch) -> BatchResult:
        """Store a prepared batch in one transaction; the entry ids in `done` are safe to acknowledge after this."""
        try:
            result = await self._commit(batch)
        finally:
            batch.written.set()
        if result.out_of_stock and self.on_out_of_stock is not None:
            try:
                await self.on_out_of_stock(result.out_of_stock, batch.rules, batch.now)
            except Exception:  # noqa: BLE001 - the orders are stored and acknowledged; the note is best effort
                log.exception("库存不足 notes for %d order(s) failed", len(result.out_of_stock))
        return result

    async def _commit(self, batch: PreparedBatch) -> BatchResult:
        result = batch.result
        if not batch.items:
            return result
        try:
            await self._store(batch.items, batch, result)
        except StoreUnavailable:
            raise
        except Exception as exc:
            # A row the database refuses must not block its neighbours: store one by one, fail only the bad ones.
            if len(batch.items) == 1:
                result.failed.append((batch.items[0][0], describe_error(exc)))
                return result
            for item in batch.items:
                try:
                    await self._store([item], batch, result)
                except StoreUnavailable:
                    raise
                except Exception as exc:
                    result.failed.append((item[0], describe_error(exc)))
        return result

    async def _store(self, items: list[Item], batch: PreparedBatch, result: BatchResult) -> None:
        rules, now = batch.rules, batch.now
        inserted = updated = duplicates = asked = 0
        short: list[tuple[OrderKey, tuple[str, ...]]] = []
        async with self.store.unit() as unit:
            looked_up = batch.stored
            if looked_up is None:
                keys = [(ch, d.external_id) for _, ch, d, _ in items]
            else:  # only what the lookup found changed; the rest is settled by it or by the insert's conflict
                keys = [k for _, ch, d, digest in items if looked_up.get(k := (ch, d.external_id), digest) != digest]
            existing = await unit.existing(keys) if keys else {}
            new_plans: list[IntakePlan] = []
            for entry, channel, data, digest in items:
                key = (channel, data.external_id)
                if looked_up is not None and looked_up.get(key) == digest:
                    duplicates += 1
                    continue
                known = existing.get(key)
                if known is None:
                    planned = batch.plans.get(key)
                    new_plans.append(planned or _by(plan_new_order(channel, data, digest, _received(entry, now), rules,
                                                                   now, facts=batch.facts.get(key)), entry))
                elif known.payload_hash == digest:
                    duplicates += 1
                else:
                    plan = _by(plan_update(channel, data, digest, _received(entry, now), known, rules, now,
                                           facts=batch.facts.get(key), history=await unit.approval_history(known.id)),
                               entry)
                    await unit.apply_update(plan, supersede_pending=_supersedes(known, plan))
                    updated += 1
                    asked += len(plan.approvals)
                    _note_short(short, plan)
            if new_plans:
                ahead = batch.plans.values()  # encoded in `prepare`: usable when these are exactly the plans inserted
                as_encoded = len(new_plans) == len(ahead) and all(a is b for a, b in zip(new_plans, ahead))
                won = await unit.insert_new(new_plans, batch.encoded if as_encoded else None)
                inserted = len(won)
                for p in new_plans:
                    if p.key in won:
                        _note_short(short, p)
                asked += sum(len(p.approvals) for p in new_plans if p.key in won)
                lost = [p for p in new_plans if p.key not in won]
                # Another worker stored these keys between our lookup and our insert (it has committed: the insert
                # waited for it). Same content: a duplicate. Changed content: an update, or the change would be lost.
                raced = await unit.existing([p.key for p in lost]) if lost else {}
                for p in lost:
                    known = raced.get(p.key)
                    if known is None or known.payload_hash == p.payload_hash:
                        duplicates += 1
                        continue
                    plan = plan_update(p.channel, p.data, p.payload_hash, p.received_at, known, rules, now,
                                       facts=batch.facts.get(p.key), history=await unit.approval_history(known.id))
                    plan.requested_by = p.requested_by
                    await unit.apply_update(plan, supersede_pending=_supersedes(known, plan))
                    updated += 1
                    asked += len(plan.approvals)
                    _note_short(short, plan)
            if items is batch.items:  # the whole batch (not the one-by-one retry after a refusal)
                batch.written.set()
        metrics.APPROVALS_REQUESTED.inc(asked)  # committed: the unit is closed
        result.inserted += inserted
        result.updated += updated
        result.duplicates += duplicates
        result.out_of_stock += short
        result.done.extend(entry.id for entry, *_ in items)


def _note_short(short: list[tuple[OrderKey, tuple[str, ...]]], plan: IntakePlan) -> None:
    skus = plan.decisions.get("out_of_stock")
    if skus:
        short.append((plan.key, tuple(skus)))


def _with_stock(facts: dict[OrderKey, Facts], valid: Mapping[OrderKey, tuple[IntakeEntry, str, OrderData]],
                levels: Mapping[str, int]) -> None:
    """Each order's facts get the stock of its own SKUs (`"<base>:<sku>"` → units), what the engine's routing reads."""
    if not levels:
        return
    by_sku: dict[str, list[tuple[str, int]]] = {}
    for k, q in levels.items():
        by_sku.setdefault(k.split(":", 1)[1], []).append((k, q))
    for key, (_, _, data) in valid.items():
        stock = {k: q for i in data.items for k, q in by_sku.get(i.sku, ())}
        if stock:
            f = facts.get(key)
            if f is None:
                facts[key] = Facts(stock=stock)
            else:
                f.stock = stock


def _by(plan: IntakePlan, entry: IntakeEntry) -> IntakePlan:
    plan.requested_by = entry.requested_by
    return plan


def _supersedes(known: StoredOrderStamp, plan: IntakePlan) -> bool:
    """Pending requests are void once the order changed while waiting, or a new request replaces them."""
    return known.stage is Stage.PENDING_CONFIRM or bool(plan.approvals)


def _received(entry: IntakeEntry, now: datetime) -> datetime:
    return datetime.fromtimestamp(entry.received_ms / 1000, UTC) if entry.received_ms else now


def _approvals(needs: list[ApprovalNeed], now: datetime) -> list[PlannedApproval]:
    return [PlannedApproval(n, now + n.escalate_after if n.escalate_after else None) for n in needs]


def plan_new_order(
    channel: str, data: OrderData, digest: str, received: datetime, rules: RuleSet, now: datetime, *,
    items_json: list[dict[str, Any]] | None = None, facts: Facts | None = None,
) -> IntakePlan:
    """A new order starts in pending_confirm; with no approval needed it is confirmed at once.
    `facts`: the customer's history as the batch's lookup found it (None: none)."""
    order = Order(id=0, channel=channel, data=data, stage=Stage.PENDING_CONFIRM, stage_entered_at=now)
    facts = facts or Facts()
    ctx = make_ctx(rules, order, facts, now)
    decisions = evaluate(order, facts, rules, now, trace=False, ctx=ctx)  # only the compact summary is stored
    order.region = decisions.region
    transitions = [Transition(now, None, Stage.PENDING_CONFIRM, "system", "received")]
    stage, deadline = Stage.PENDING_CONFIRM, decisions.stage_deadline
    if not decisions.approvals:
        stage = Stage.DESIGNING
        transitions.append(Transition(now, Stage.PENDING_CONFIRM, Stage.DESIGNING, "system", "auto-confirmed"))
        order.stage = stage
        deadline = rules.deadline_for(order, stage, now, facts, like=ctx)
    base = decisions.route.base if decisions.route else None
    return IntakePlan(
        channel=channel, data=data, payload_hash=digest, received_at=received, stage=stage, stage_entered_at=now,
        stage_deadline=deadline, region=decisions.region, priority=decisions.priority,
        production_base=base,
        decisions=decisions.to_json(trace=False), rules_version=rules.version, transitions=transitions,
        approvals=_approvals(decisions.approvals, now), items_json=items_json,
        owner=rules.owner_need_for(order, stage, base) if rules.owners else None,
    )


def plan_update(
    channel: str, data: OrderData, digest: str, received: datetime, known: StoredOrderStamp, rules: RuleSet,
    now: datetime, *, facts: Facts | None = None, history: ApprovalHistory | None = None,
) -> IntakePlan:
    """A changed order. An update never takes an order out of an approval without the approver seeing it:

    - waiting for confirmation and still needing approval: the approvals are asked again for the new content;
    - waiting, no longer needing one, but an approval was requested: it stays waiting, and the approver who was
      asked gets a review request (`changed-after-request`) — never confirmed silently (lower-then-restore);
    - past confirmation, with an approval requested or decided, and the amount, customer or items changed: the new
      content is asked again (the rules' approvals, or a review), the stage is left as it is;
    - otherwise (nothing was ever asked): as a new order would be, confirmed at once when no approval is needed.
    """
    order = Order(id=known.id, channel=channel, data=data, stage=known.stage, stage_entered_at=known.stage_entered_at)
    facts = facts or Facts()
    decisions = evaluate(order, facts, rules, now, trace=False)  # only the compact summary is stored
    plan = IntakePlan(
        channel=channel, data=data, payload_hash=digest, received_at=received, stage=known.stage,
        stage_entered_at=known.stage_entered_at, stage_deadline=decisions.stage_deadline, region=decisions.region,
        priority=decisions.priority, production_base=decisions.route.base if decisions.route else None,
        decisions=decisions.to_json(trace=False), rules_version=rules.version, existing_id=known.id,
    )
    asked = history is not None and history.requested
    order_needs = [n for n in decisions.approvals if n.kind == "order"]
    if known.stage is Stage.PENDING_CONFIRM:
        if decisions.approvals:
            plan.approvals = _approvals(decisions.approvals, now)
        elif asked:
            plan.approvals = _approvals([_review(history, decisions.region)], now)
        else:
            order.stage = Stage.DESIGNING
            plan.stage, plan.stage_entered_at = Stage.DESIGNING, now
            plan.stage_deadline = rules.deadline_for(order, Stage.DESIGNING, now, facts)
            plan.owner = rules.owner_need_for(order, Stage.DESIGNING, plan.production_base) if rules.owners else None
            plan.transitions.append(
                Transition(now, Stage.PENDING_CONFIRM, Stage.DESIGNING, "system", "auto-confirmed after change")
            )
    elif asked and known.stage not in END_STATES and history.about != approval_subject(data):
        plan.approvals = _approvals(order_needs or [_review(history, decisions.region)], now)
    return plan


def _review(history: ApprovalHistory, region: str | None) -> ApprovalNeed:
    """A review of a change for the approver who was asked before (their role, the order's region now)."""
    role = history.role or "admin"
    return ApprovalNeed("order", 1, role, history.region if history.region is not None else region, REVIEW_RULE)
