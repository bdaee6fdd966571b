"""Tracking use cases: apply carrier events (push or poll), ship an order, the timeline, stalls after pickup.

Applying is idempotent and crash-safe: events are stored once each (a unique key per event), effects are driven
by the events still marked unapplied, and the order moves only from the shipment's state (delivered while the
order is `shipped`) — so a retry after a crash finishes what the first try began and never doubles it. The order
moves only through `handlers.orders.transition`, audited as the carrier.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from engine.carriers import TrackEvent, TrackStatus
from engine.carriers.model import waybill_ok
from engine.carriers.rules import goods_of
from engine.rules import RuleSet
from engine.stages import Stage, TransitionError, check_transition
from engine.carriers.text import t
from handlers.carriers import CarrierClient, CarrierError, Party, ShipmentRequest
from handlers.chat_ports import NewOutbox, OutboxStore
from handlers.notes import TrendNotes, record_note
from handlers.orders import MoveRefused, OrderNotFound, OrderStore, transition

log = logging.getLogger(__name__)
TERMINAL = {TrackStatus.DELIVERED, TrackStatus.RETURNED}
UPDATE_KIND = "tracking_update"  # plain text to a customer or staff chat: shipped, delivered
STALL_KIND = "tracking_stall"  # plain text to supply chain: a picked-up shipment with no scan for too long


@dataclass(frozen=True, slots=True)
class Shipment:
    id: int
    order_id: int
    carrier: str
    waybill: str
    company: str | None = None  # Kuaidi100's code of the carrier actually moving the parcel
    status: str | None = None
    picked_up_at: datetime | None = None
    delivered_at: datetime | None = None
    last_event_at: datetime | None = None
    last_polled_at: datetime | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    event: TrackEvent


@dataclass(slots=True)
class StoredBatch:
    new: int = 0
    unknown: list[str] = field(default_factory=list)  # waybills no shipment has
    shipments: dict[int, Shipment] = field(default_factory=dict)  # by id, state after this batch
    order_stages: dict[int, str] = field(default_factory=dict)  # shipment id → its order's stage
    pending: list[tuple[Shipment, StoredEvent]] = field(default_factory=list)  # unapplied, oldest first


class TrackingStore(Protocol):
    async def shipment(self, carrier: str, waybill: str) -> Shipment | None: ...
    async def shipment_of_order(self, order_id: int) -> Shipment | None: ...
    async def add_shipment(self, order_id: int, carrier: str, waybill: str, company: str | None,
                           now: datetime) -> Shipment:
        """Record (or return the existing) shipment and mirror it into `orders.tracking`."""
        ...
    async def store_events(self, carrier: str, events: Sequence[TrackEvent], now: datetime) -> StoredBatch:
        """Insert the events not yet stored (by `event_key`) of any number of this carrier's waybills and update
        their shipments' state, in a constant number of round trips; return how many were new, the shipments (with
        their orders' stages), and every event of them not yet applied (the new ones and any a crashed try left)."""
        ...
    async def mark_applied(self, event_ids: Sequence[int]) -> None: ...
    async def events(self, shipment_id: int, limit: int = 200) -> list[TrackEvent]: ...
    async def contacts(self, order_id: int) -> tuple[int | None, int | None]:
        """(the customer's user id, by the order's phone; the order's owner's user id)."""
        ...
    async def to_poll(self, polled_before: datetime, quiet_since: datetime, limit: int) -> list[Shipment]: ...
    async def mark_polled(self, shipment_id: int, now: datetime) -> None: ...
    async def stalled_after_pickup(self, quiet_since: datetime, limit: int) -> list[Shipment]: ...


@dataclass(slots=True)
class TrackingDeps:
    """What the tracking use cases need; built once by the composition root."""

    tracking: TrackingStore
    orders: OrderStore
    notes: TrendNotes
    outbox: OutboxStore
    rules: Callable[[], RuleSet]
    language: str = "zh"
    timezone: str = "Asia/Shanghai"


@dataclass(slots=True)
class ApplyResult:
    stored: int = 0  # events new to OrderHub
    applied: int = 0  # events whose effects ran (new ones, or ones a crash left unapplied)
    unknown: list[str] = field(default_factory=list)  # waybills no shipment has
    moved: list[int] = field(default_factory=list)  # orders moved to awaiting_install


def _local(at: datetime, tz: str) -> str:
    return at.astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M")


def event_line_parts(at: datetime, text: str, place: str, tz: str) -> str:
    """'12-01 14:01 快件到达【上海浦江中转场】' — the carrier's words, with the place when it is not already in them."""
    if place and place not in text:
        text = f"{text}【{place}】"
    return f"{_local(at, tz)} {text}"


def event_line(ev: TrackEvent, tz: str) -> str:
    return event_line_parts(ev.at, ev.text, ev.place, tz)


async def apply_events(deps: TrackingDeps, carrier: str, events: Sequence[TrackEvent], now: datetime) -> ApplyResult:
    """Store a batch of one carrier's events (any number of waybills, one store call) and let the unapplied ones
    act on their orders: exception → a note, delivered → the order moves. Marked applied only after acting, so a
    crash in between is finished by the retry; the move itself is guarded by the order's stage, so never doubled."""
    stored = await deps.tracking.store_events(carrier, events, now)
    result = ApplyResult(stored=stored.new, unknown=stored.unknown)
    rules = deps.rules()
    for shipment, ev in ((sh, st.event) for sh, st in stored.pending):
        if ev.status is TrackStatus.EXCEPTION:
            text = f"[{ev.carrier} {ev.waybill}] {ev.text}" + (f"（{ev.place}）" if ev.place else "")
            await record_note(deps.orders, deps.notes, deps.outbox, rules, shipment.order_id, text[:2000],
                              f"carrier:{ev.carrier}", now)
    delivered = {sh.id: st.event for sh, st in stored.pending if st.event.status is TrackStatus.DELIVERED}
    for sid, shipment in stored.shipments.items():
        if shipment.delivered_at is not None and stored.order_stages.get(sid) == Stage.SHIPPED.value:
            await _deliver(deps, shipment, delivered.get(sid), now, result)
    await deps.tracking.mark_applied([st.id for _, st in stored.pending])
    result.applied = len(stored.pending)
    return result


async def _deliver(deps: TrackingDeps, shipment: Shipment, ev: TrackEvent | None, now: datetime,
                   result: ApplyResult) -> None:
    """Delivered: a `shipped` order moves to `awaiting_install`; customer and owner are told (once each)."""
    detail = await deps.orders.get(str(shipment.order_id), with_history=False)
    if detail is None or detail.order.stage is not Stage.SHIPPED:
        return
    reason = f"{shipment.carrier} {shipment.waybill} 已签收"
    try:
        await transition(deps.orders, deps.rules(), str(shipment.order_id), Stage.AWAITING_INSTALL.value, reason,
                         f"carrier:{shipment.carrier}", now)
    except (TransitionError, MoveRefused) as exc:  # someone moved it meanwhile: nothing left to do
        log.info("delivered %s: order %s not moved: %s", shipment.waybill, shipment.order_id, exc)
        return
    result.moved.append(shipment.order_id)
    customer, owner = await deps.tracking.contacts(shipment.order_id)
    lang = deps.language
    line = event_line(ev, deps.timezone) if ev else ""
    rows = []
    for who, uid in (("customer", customer), ("owner", owner)):
        if uid is None:
            continue
        text = t(f"tracking.delivered_{who}", lang, order=detail.order.data.external_id, waybill=shipment.waybill,
                 line=line)
        rows.append(NewOutbox(f"tracking:{shipment.id}:delivered:{who}", UPDATE_KIND, now,
                              {"text": text, "order_id": shipment.order_id}, recipient_user_id=uid))
    if rows:
        await deps.outbox.enqueue(rows, now)


# --- shipping ---------------------------------------------------------------------------------------------------

class ShipRefused(ValueError):
    """Shipping cannot start: a bad waybill, an unknown carrier, or every carrier failed."""


@dataclass(frozen=True, slots=True)
class ShipResult:
    order: Any  # OrderDetail after the move
    shipment: Shipment
    created: bool  # OrderHub created the waybill with the carrier (not typed by staff)
    tried: tuple[str, ...] = ()  # carriers that failed before the one that worked


async def ship(deps: TrackingDeps, carriers: Mapping[str, CarrierClient], ref: str, carrier: str | None,
               waybill: str | None, actor: str, now: datetime, sender: Party, *,
               company: str | None = None) -> ShipResult:
    """Hand an order to a carrier: record the waybill staff typed, or create one with the carrier (the rules'
    choice for the order's region, then its backup), then move the order to `shipped` and tell the customer."""
    detail = await deps.orders.get(ref, with_history=False)
    if detail is None:
        raise OrderNotFound(ref)
    order = detail.order
    check_transition(order.stage, Stage.SHIPPED.value)  # refuse before any carrier is called
    existing = await deps.tracking.shipment_of_order(order.id)
    rules = deps.rules()
    tried: list[str] = []
    if waybill:
        waybill = waybill.strip()
        if carrier is None or not waybill_ok(carrier, waybill):
            raise ShipRefused(f"{waybill!r} is not a {carrier or '?'} waybill number")
        chosen, created = carrier, False
    elif existing is not None and (carrier is None or existing.carrier == carrier):
        chosen, waybill, created = existing.carrier, existing.waybill, True  # a retried request: same waybill
    else:
        order_of = rules.model.carriers.order_of_carriers(order.region, goods_of(order.data.items))
        candidates = [carrier] + [c for c in order_of if c != carrier] if carrier else order_of
        request = ShipmentRequest(
            reference=f"OH{order.id}", sender=sender,
            receiver=Party(order.data.customer.name, order.data.customer.phone, order.data.customer.city),
            goods="、".join(i.name for i in order.data.items)[:60] or "货物",
            pieces=sum(i.qty for i in order.data.items) or 1)
        chosen = ""
        for c in candidates:
            client = carriers.get(c)
            if client is None:
                tried.append(c)
                continue
            try:
                waybill = await client.create_waybill(request)
                chosen = c
                break
            except CarrierError as exc:
                log.warning("waybill for order %s with %s failed: %s", order.id, c, exc)
                tried.append(c)
        if not chosen or not waybill:
            raise ShipRefused(f"no carrier could create a waybill (tried {', '.join(tried) or 'none'})")
        created = True
    shipment = await deps.tracking.add_shipment(order.id, chosen, waybill, company, now)
    moved = await transition(deps.orders, rules, str(order.id), Stage.SHIPPED.value, f"{chosen} {waybill}", actor,
                             now)
    client = carriers.get(chosen)
    if client is not None:
        try:
            await client.subscribe(waybill, shipment.company)
        except CarrierError as exc:  # the poller picks it up instead
            log.warning("subscribing %s %s failed: %s", chosen, waybill, exc)
    customer, _ = await deps.tracking.contacts(order.id)
    if customer is not None:
        text = t("tracking.shipped_customer", deps.language, order=order.data.external_id,
                 carrier=t(f"carrier.{chosen}", deps.language), waybill=waybill)
        await deps.outbox.enqueue([NewOutbox(f"tracking:{shipment.id}:shipped", UPDATE_KIND, now,
                                             {"text": text, "order_id": order.id}, recipient_user_id=customer)], now)
    return ShipResult(moved, shipment, created, tuple(tried))


# --- reading ----------------------------------------------------------------------------------------------------

async def timeline(deps: TrackingDeps, ref: str) -> dict[str, Any]:
    """`{"carrier", "waybill", "status", "events": [{"at", "status", "text", "place"}]}`, newest first."""
    detail = await deps.orders.get(ref, with_history=False)
    if detail is None:
        raise OrderNotFound(ref)
    shipment = await deps.tracking.shipment_of_order(detail.order.id)
    if shipment is None:
        return {"carrier": None, "waybill": None, "status": None, "events": []}
    events = await deps.tracking.events(shipment.id)
    return {"carrier": shipment.carrier, "waybill": shipment.waybill, "status": shipment.status,
            "events": [{"at": e.at, "status": e.status.value, "text": e.text, "place": e.place} for e in events]}


async def last_lines(deps: TrackingDeps, order_id: int, n: int = 3) -> list[str]:
    """The last `n` scans as lines for chat ('12-01 14:01 快件到达【上海浦江中转场】')."""
    shipment = await deps.tracking.shipment_of_order(order_id)
    if shipment is None:
        return []
    return [event_line(e, deps.timezone) for e in (await deps.tracking.events(shipment.id, limit=n))]


# --- the poller and stalls (scheduler leader only) ---------------------------------------------------------------

async def poll_routes(deps: TrackingDeps, carriers: Mapping[str, CarrierClient], now: datetime, *,
                      per_carrier: int = 20, every: timedelta = timedelta(hours=2)) -> dict[str, int]:
    """Fetch routes for undelivered waybills no push has touched for `every`, at most `per_carrier` calls per
    carrier per pass (the scheduler's interval makes that a rate). A carrier failure skips the waybill till later."""
    due = await deps.tracking.to_poll(now - every, now - every, limit=per_carrier * max(len(carriers), 1) * 3)
    calls: dict[str, int] = {}
    for s in due:
        client = carriers.get(s.carrier)
        if client is None or calls.get(s.carrier, 0) >= per_carrier:
            continue
        calls[s.carrier] = calls.get(s.carrier, 0) + 1
        try:
            events = await client.query_routes(s.waybill, s.company)
        except CarrierError as exc:
            log.warning("polling %s %s failed: %s", s.carrier, s.waybill, exc)
            continue
        await deps.tracking.mark_polled(s.id, now)
        if events:
            await apply_events(deps, s.carrier, events, now)
    return calls


async def scan_stalls(deps: TrackingDeps, now: datetime, limit: int = 500) -> int:
    """Shipments picked up with no scan for the rules' `stall_after_pickup_hours` → one alert per silence
    (to supply chain), keyed by the last scan so a new silence alerts again."""
    hours = deps.rules().model.carriers.stall_after_pickup_hours
    stalled = await deps.tracking.stalled_after_pickup(now - timedelta(hours=hours), limit)
    rows = []
    for s in stalled:
        last = s.last_event_at or s.picked_up_at or now
        detail = await deps.orders.get(str(s.order_id), with_history=False)  # its number, as people know it
        number = detail.order.data.external_id if detail is not None else str(s.order_id)
        text = t("tracking.stalled", deps.language, carrier=t(f"carrier.{s.carrier}", deps.language),
                 waybill=s.waybill, order=number, hours=int((now - last).total_seconds() // 3600))
        rows.append(NewOutbox(f"tracking_stall:{s.id}:{last.isoformat()}", STALL_KIND, now,
                              {"text": text, "order_id": s.order_id}, recipient_role="supply_chain"))
    return len(await deps.outbox.enqueue(rows, now)) if rows else 0
