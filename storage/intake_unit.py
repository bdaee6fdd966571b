"""The intake unit of work on SQLAlchemy Core: a batch of order plans in one transaction, a few statements each.
(storage.intake_store picks this unit or its PostgreSQL variant.)

Core (not ORM objects) because this is the hot path: 500 orders become one SELECT, one multi-row INSERT … ON CONFLICT
DO NOTHING RETURNING, one INSERT of transitions and, when needed, approvals and outbox rows.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.approvals import OUTCOMES
from engine.stages import Stage
from handlers.intake import ApprovalHistory, StoredOrderStamp, HistoryAsk, OrderKey, IntakePlan, StoredHistory
from handlers.orders import Move
from handlers.outbox_kinds import approval_outcome, approval_request
from storage.models import ApprovalRow, OrderRow, OutboxRow, StageTransitionRow
from storage.order_moves import apply_move
from storage.outbox_rows import outbox_values
from storage.owners import assign_owners

# The facts the rules read about a batch's customers, in ONE statement for the whole batch, set-based (a join per
# kind of fact, not a subquery per order): `{asked}` is the dialect's table k(i, cid, at, ch, ext) of the asked
# orders, read from one JSON parameter. Rows come back tagged:
#   'p', i: the customer's other stored orders created before order i (index ix_orders_customer_created);
#   'c', cid: the customer's complaints in the window (driven by the recent notes, index ix_exception_notes_at);
#   'n', i: exception notes on order i itself (when stored) in the window;
#   's', i: order i is stored (asked only for customers with several orders in the batch: the caller adds the
#   batch's own earlier orders that the database does not hold yet).
# `{prev}` is the 'p' part: per asked order, an index-only count of the customer's orders created before it, less
# the order itself when stored (a probe of the unique key); a LATERAL join where the dialect has one.
PREV_COUNT = ("((SELECT count(*) FROM orders o WHERE o.customer_id = k.cid AND o.created_at < k.at) - "
              "(SELECT count(*) FROM orders o WHERE o.channel = k.ch AND o.external_id = k.ext "
              "AND o.customer_id = k.cid AND o.created_at < k.at))")
# The same counts as `RulesRepo.facts_for` (what `rules explain` and `rules diff` read), so intake decides on the
# facts they show.
HISTORY_SQL = """
WITH k AS {asked}
{prev}
UNION ALL
SELECT 'c', NULL, o.customer_id, count(*) FROM exception_notes n JOIN orders o ON o.id = n.order_id
  WHERE n.at >= {since} AND n.kind = 'complaint' AND o.customer_id IN (SELECT cid FROM k)
  GROUP BY o.customer_id
UNION ALL
SELECT 'n', k.i, NULL, count(*) FROM exception_notes n JOIN orders o ON o.id = n.order_id
  JOIN k ON o.channel = k.ch AND o.external_id = k.ext
  WHERE n.at >= {since}
  GROUP BY k.i
UNION ALL
SELECT 's', k.i, NULL, 1 FROM k JOIN orders o ON o.channel = k.ch AND o.external_id = k.ext
  WHERE k.cid IN (SELECT cid FROM k GROUP BY cid HAVING count(*) > 1)
"""
_SQLITE_HISTORY = text(HISTORY_SQL.format(
    asked="MATERIALIZED (SELECT CAST(j.key AS INTEGER) AS i, json_extract(j.value, '$[0]') AS cid, "
          "json_extract(j.value, '$[1]') AS at, json_extract(j.value, '$[2]') AS ch, "
          "json_extract(j.value, '$[3]') AS ext FROM json_each(:asked) AS j)",
    since=":since",
    prev=f"SELECT * FROM (SELECT 'p' AS tag, k.i AS i, NULL AS cid, {PREV_COUNT} AS n FROM k) AS p WHERE p.n > 0",
)).bindparams(bindparam("asked"), bindparam("since"))


def history_of_rows(asked: list[HistoryAsk], rows: Any) -> dict[int, StoredHistory]:
    """The tagged rows of `HISTORY_SQL` as one StoredHistory per asked order that has any history."""
    prev: dict[int, int] = {}
    notes: dict[int, int] = {}
    stored: set[int] = set()
    complaints: dict[str, int] = {}
    for tag, i, cid, n in rows:
        if tag == "p":
            prev[int(i)] = int(n)
        elif tag == "c":
            complaints[cid] = int(n)
        elif tag == "n":
            notes[int(i)] = int(n)
        else:
            stored.add(int(i))
    out: dict[int, StoredHistory] = {}
    for i in prev.keys() | notes.keys() | stored:
        out[i] = StoredHistory(prev.get(i, 0), complaints.get(asked[i][0], 0), notes.get(i, 0), i in stored)
    if complaints:
        for i, (cid, *_rest) in enumerate(asked):
            if cid in complaints and i not in out:
                out[i] = StoredHistory(0, complaints[cid], 0, False)
    return out


def _sqlite_time(value: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite DateTime stores it (naive UTC text), so text comparison is time order."""
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


ORDERS = OrderRow.__table__
TRANSITIONS = StageTransitionRow.__table__
APPROVALS = ApprovalRow.__table__
UNBOUND_KINDS = [k.value for k, o in OUTCOMES.items() if not o.binds_order_version]  # engine.approvals
OUTBOX = OutboxRow.__table__


# PostgreSQL SQLSTATEs that say the server, not the statement's data, is the trouble: connection exceptions
# (class 08), a cancelled statement (57014: the statement timeout of storage/db.py fired on a frozen server),
# shutdown and start-up (57P01-57P03), out of resources (class 53).
_SERVER_TROUBLE = ("08", "57014", "57P01", "57P02", "57P03", "53")


def _sqlstate(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return ""


def is_unavailable(exc: BaseException) -> bool:
    """Connection loss, a locked SQLite file, a server restarting or frozen (statement timeout): the database's
    fault, not the batch's."""
    if isinstance(exc, (OperationalError, InterfaceError, ConnectionError, OSError, TimeoutError)):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or _sqlstate(exc).startswith(_SERVER_TROUBLE)


def order_values(plan: IntakePlan, now: datetime) -> dict[str, Any]:
    values = order_row(plan)
    values["updated_at"] = now
    return values


def order_row(plan: IntakePlan) -> dict[str, Any]:
    """An order's column values, except `updated_at` (the batch's `now`, the same for every row)."""
    d, c = plan.data, plan.data.customer
    return {
        "channel": plan.channel,
        "external_id": d.external_id,
        "created_at": d.created_at,
        "received_at": plan.received_at,
        "customer_id": c.id,
        "customer_name": c.name,
        "customer_phone": c.phone,
        "customer_city": c.city,
        "customer_tier": c.tier,
        "region": plan.region,
        "amount": d.amount,
        "currency": d.currency,
        "items": plan.items_json if plan.items_json is not None else [i.model_dump(mode="json") for i in d.items],
        "custom_fields": d.custom_fields,
        "notes": d.notes,
        "payload_hash": plan.payload_hash,
        "stage": plan.stage.value,
        "stage_entered_at": plan.stage_entered_at,
        "stage_deadline": plan.stage_deadline,
        "priority": plan.priority,
        "production_base": plan.production_base,
        "rules_version": plan.rules_version,
        "decisions": plan.decisions,
        # An approval is a human action beyond routine stage moves (it counts towards the manual intervention rate).
        "manual_intervention": bool(plan.approvals),
    }


def first_levels(rows: list[Any]) -> list[Any]:
    """Levels run in order: only the lowest level of each (order, kind) gets its card now; the next one's card goes
    out when this one is approved (handlers.approvals.record_decision)."""
    lowest: dict[tuple[int, str], int] = {}
    for r in rows:
        k = (r.order_id, r.kind)
        lowest[k] = min(lowest.get(k, r.level), r.level)
    return [r for r in rows if r.level == lowest[(r.order_id, r.kind)]]


class SqlIntakeUnit:
    def __init__(self, conn: AsyncConnection, now: datetime) -> None:
        self.conn, self.now = conn, now
        self.announced: list[dict[str, Any]] = []  # the unit's moves, published by SqlIntakeStore after commit
        self._insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert

    @staticmethod
    def encode(plans: list[IntakePlan], now: datetime) -> object | None:
        """Core renders its statements itself, inside the transaction: nothing to do ahead of it."""
        return None

    async def existing(self, keys: list[OrderKey]) -> dict[OrderKey, StoredOrderStamp]:
        if not keys:
            return {}
        by_channel: dict[str, list[str]] = {}
        for channel, external_id in keys:
            by_channel.setdefault(channel, []).append(external_id)
        # `channel = ? AND external_id IN (…)` per channel, not a row-value `(channel, external_id) IN (…)`: SQLite
        # answers the latter by scanning the whole unique index, so every batch got slower as the table grew.
        stmt = select(
            ORDERS.c.id, ORDERS.c.channel, ORDERS.c.external_id, ORDERS.c.payload_hash, ORDERS.c.stage,
            ORDERS.c.stage_entered_at,
        ).where(or_(*(and_(ORDERS.c.channel == ch, ORDERS.c.external_id.in_(ids)) for ch, ids in by_channel.items())))
        rows = (await self.conn.execute(stmt)).all()
        return {(r.channel, r.external_id): StoredOrderStamp(r.id, r.payload_hash, Stage(r.stage), r.stage_entered_at)
                for r in rows}

    async def history(self, asked: list[HistoryAsk], since: datetime) -> dict[int, StoredHistory]:
        """`HISTORY_SQL` on SQLite: the asked orders as one JSON array (json_each), one statement."""
        payload = orjson.dumps([[cid, _sqlite_time(at), ch, ext] for cid, at, ch, ext in asked]).decode()
        result = await self.conn.execute(_SQLITE_HISTORY, {"asked": payload, "since": _sqlite_time(since)})
        return history_of_rows(asked, result.all())

    async def approval_history(self, order_id: int) -> ApprovalHistory:
        """The order's latest order approval (who was asked) and its stored amount, customer and items."""
        latest = (await self.conn.execute(
            select(APPROVALS.c.required_role, APPROVALS.c.region)
            .where(APPROVALS.c.order_id == order_id, APPROVALS.c.kind == "order")
            .order_by(APPROVALS.c.id.desc()).limit(1)
        )).first()
        row = (await self.conn.execute(
            select(ORDERS.c.amount, ORDERS.c.customer_id, ORDERS.c.customer_name, ORDERS.c.customer_phone,
                   ORDERS.c.customer_city, ORDERS.c["items"]).where(ORDERS.c.id == order_id)
        )).one()
        about = (row.amount, row.customer_id, row.customer_name, row.customer_phone, row.customer_city,
                 orjson.dumps(row[5], option=orjson.OPT_SORT_KEYS))
        if latest is None:
            return ApprovalHistory(False, None, None, about)
        return ApprovalHistory(True, latest.required_role, latest.region, about)

    async def insert_new(self, plans: list[IntakePlan], encoded: object | None = None) -> set[OrderKey]:
        stmt = (
            self._insert(ORDERS)
            .on_conflict_do_nothing(index_elements=["channel", "external_id"])
            .returning(ORDERS.c.id, ORDERS.c.channel, ORDERS.c.external_id)
        )
        rows = (await self.conn.execute(stmt, [order_values(p, self.now) for p in plans])).all()
        ids = {(r.channel, r.external_id): r.id for r in rows}
        won = [p for p in plans if p.key in ids]
        await self._children(won, ids)
        await self.assign_owners(won, ids)
        return set(ids)

    async def assign_owners(self, plans: list[IntakePlan], ids: dict[OrderKey, int]) -> None:
        """New orders get the owner the rules ask for their first stage, in this same transaction."""
        wanted = [(ids[p.key], p.owner) for p in plans if p.owner is not None and p.key in ids]
        if wanted:
            await assign_owners(self.conn, wanted, self.now)

    async def apply_update(self, plan: IntakePlan, supersede_pending: bool) -> None:
        """The changed content; the stage of the stored order is never written here but by the one move
        (storage.order_moves.apply_move, compare-and-set), so a person's move meanwhile is never undone."""
        assert plan.existing_id is not None
        values = order_values(plan, self.now)
        for k in ("channel", "external_id", "received_at", "stage", "stage_entered_at", "stage_deadline"):
            values.pop(k)
        await self.conn.execute(update(ORDERS).where(ORDERS.c.id == plan.existing_id).values(**values))
        moves = [t for t in plan.transitions if t.from_stage is not None]
        for t in moves:  # the auto-confirmation of a changed order that no longer needs approval
            await apply_move(self.conn, Move(plan.existing_id, t.from_stage, t.to_stage, t.actor, t.reason,
                                             plan.stage_deadline, owner=plan.owner), self.now, self.announced)
        if not moves:  # the deadline of the stage it was planned for, if it is still there
            await self.conn.execute(update(ORDERS).where(
                ORDERS.c.id == plan.existing_id, ORDERS.c.stage == plan.stage.value).values(
                stage_deadline=plan.stage_deadline))
        plan = replace(plan, transitions=[t for t in plan.transitions if t.from_stage is None])
        if supersede_pending:
            # The old cards' buttons stop working: their approval rows are no longer pending, and every copy of
            # each old card is edited to say so (the notifier's approval_outcome job).
            voided = (await self.conn.execute(
                update(APPROVALS)
                .where(APPROVALS.c.order_id == plan.existing_id, APPROVALS.c.status == "pending",
                       APPROVALS.c.kind.not_in(UNBOUND_KINDS))  # a refund's request is bound to its refund
                .values(status="superseded", decided_at=self.now, decided_by="system",
                        reason="order changed after the request")
                .returning(APPROVALS.c.id)
            )).scalars().all()
            if voided:
                await self.conn.execute(self._insert(OUTBOX).on_conflict_do_nothing(index_elements=["dedup_key"]), [
                    outbox_values(approval_outcome(i, self.now), self.now) for i in voided])
        if plan.approvals:
            plan = await self._reopen_asked_before(plan)
        await self._children([plan], {plan.key: plan.existing_id})

    async def _reopen_asked_before(self, plan: IntakePlan) -> IntakePlan:
        """Content asked about before (lowered, then restored: the same order version again) reopens that request
        — one request per order, kind, level and version (uq_approvals_request) — and sends its card again; the
        plan keeps only the approvals that are new."""
        rows = {(r.kind, r.level): r.id for r in (await self.conn.execute(
            select(APPROVALS.c.id, APPROVALS.c.kind, APPROVALS.c.level)
            .where(APPROVALS.c.order_id == plan.existing_id, APPROVALS.c.order_version == plan.payload_hash)
        )).all()}
        fresh = []
        for a in plan.approvals:
            approval_id = rows.get((a.need.kind, a.need.level))
            if approval_id is None:
                fresh.append(a)
                continue
            await self.conn.execute(update(APPROVALS).where(APPROVALS.c.id == approval_id).values(
                status="pending", required_role=a.need.role, region=a.need.region, rule_id=a.need.rule_id,
                requested_at=self.now, escalate_at=a.escalate_at, escalation_level=0, decided_by=None,
                decided_at=None, reason="asked again: the order changed back to this content"))
            stamp = int(self.now.timestamp() * 1000)
            row = approval_request(approval_id, plan.existing_id, self.now, role=a.need.role, region=a.need.region,
                                   again=stamp)
            await self.conn.execute(self._insert(OUTBOX).on_conflict_do_nothing(index_elements=["dedup_key"]),
                                    [outbox_values(row, self.now)])
        return replace(plan, approvals=fresh)

    async def _children(self, plans: list[IntakePlan], ids: dict[OrderKey, int]) -> None:
        transitions = [
            {"order_id": ids[p.key], "at": t.at, "from_stage": t.from_stage.value if t.from_stage else None,
             "to_stage": t.to_stage.value, "actor": t.actor, "reason": t.reason}
            for p in plans for t in p.transitions
        ]
        if transitions:
            await self.conn.execute(TRANSITIONS.insert(), transitions)
        approvals = [
            {"order_id": ids[p.key], "kind": a.need.kind, "level": a.need.level, "required_role": a.need.role,
             "region": a.need.region, "amount": p.data.amount, "order_version": p.payload_hash,
             "rule_id": a.need.rule_id, "status": "pending", "requested_by": p.requested_by, "requested_at": self.now,
             "escalate_at": a.escalate_at, "escalation_level": 0, "reason": ""}
            for p in plans for a in p.approvals
        ]
        if not approvals:
            return
        stmt = self._insert(APPROVALS).returning(
            APPROVALS.c.id, APPROVALS.c.order_id, APPROVALS.c.required_role, APPROVALS.c.region, APPROVALS.c.kind,
            APPROVALS.c.level,
        )
        rows = first_levels((await self.conn.execute(stmt, approvals)).all())
        await self.conn.execute(OUTBOX.insert(), [
            outbox_values(approval_request(r.id, r.order_id, self.now, role=r.required_role, region=r.region), self.now)
            for r in rows])
