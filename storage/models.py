"""The tables. PostgreSQL holds the truth; every row type here maps to an engine dataclass in a repository."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import MoneyCents, UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, Decimal: MoneyCents, dict[str, Any]: JSON, list[Any]: JSON}


# --- orders -------------------------------------------------------------------------------------------------------


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_orders_channel_external_id"),
        Index("ix_orders_stage_deadline", "stage", "stage_deadline"),
        Index("ix_orders_customer_phone", "customer_phone"),
        Index("ix_orders_customer_city", "customer_city"),
        Index("ix_orders_created_at", "created_at"),
        # the rules' history facts at intake: a customer's earlier orders, counted from the index alone
        Index("ix_orders_customer_created", "customer_id", "created_at"),
        # least-loaded owner pools count each member's open orders (storage.owners)
        Index("ix_orders_owner_stage", "owner_user_id", "stage"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    customer_id: Mapped[str] = mapped_column(String(64))
    customer_name: Mapped[str] = mapped_column(String(100), default="")
    customer_phone: Mapped[str] = mapped_column(String(32), default="")
    customer_city: Mapped[str] = mapped_column(String(50), default="")
    customer_tier: Mapped[str] = mapped_column(String(20), default="normal")
    region: Mapped[str | None] = mapped_column(String(50))
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    items: Mapped[list[Any]]
    custom_fields: Mapped[dict[str, Any]]
    notes: Mapped[str] = mapped_column(Text, default="")
    payload_hash: Mapped[str] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(20))
    stage_entered_at: Mapped[datetime]
    stage_deadline: Mapped[datetime | None]
    priority: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    production_base: Mapped[str | None] = mapped_column(String(32))
    work_order_no: Mapped[str | None] = mapped_column(String(48), unique=True)
    tracking: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    rules_version: Mapped[str | None] = mapped_column(String(64))
    decisions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    manual_intervention: Mapped[bool] = mapped_column(Boolean, default=False)
    snoozed_until: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]


class StageTransitionRow(Base):
    """The audit trail of the board: who moved what, when, from where to where, and why."""

    __tablename__ = "stage_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")


class ExceptionNoteRow(Base):
    __tablename__ = "exception_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(32), index=True)
    score: Mapped[float | None]
    kind: Mapped[str] = mapped_column(String(16), default="exception")  # exception | refund | complaint


class NoteExampleRow(Base):
    """A person's correction of a note's category: an example the classifier learns from (issue 13.2).

    One per note (a second correction replaces the first); the text is copied so the example outlives edits, and the
    rules and library versions in force at the correction are kept, so an exported set says what it was taught on."""

    __tablename__ = "note_examples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("exception_notes.id", ondelete="CASCADE"), unique=True)
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32), index=True)
    previous: Mapped[str | None] = mapped_column(String(32))  # what the classifier (or an earlier person) said
    corrected_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    rules_version: Mapped[str] = mapped_column(String(64))
    library_version: Mapped[str] = mapped_column(String(16))


# --- approvals and audit ------------------------------------------------------------------------------------------


class ApprovalRow(Base):
    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("order_id", "kind", "level", "order_version", name="uq_approvals_request"),
        Index("ix_approvals_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # order | refund
    level: Mapped[int] = mapped_column(Integer, default=1)
    required_role: Mapped[str] = mapped_column(String(20))
    region: Mapped[str | None] = mapped_column(String(50))
    amount: Mapped[Decimal]
    order_version: Mapped[str] = mapped_column(String(32))
    rule_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|approved|rejected|superseded
    requested_by: Mapped[str] = mapped_column(String(64), default="system")
    requested_at: Mapped[datetime]
    escalate_at: Mapped[datetime | None]
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text, default="")


class AuditRow(Base):
    """Every human decision, kept forever."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[dict[str, Any]]


# --- outbox -------------------------------------------------------------------------------------------------------


class OutboxRow(Base):
    """A message decided but maybe not yet sent. The unique dedup key is what makes alerts never doubled."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recipient_role: Mapped[str | None] = mapped_column(String(20))
    recipient_region: Mapped[str | None] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|failed|cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    # a stall alert held for, or shown on, a grouped card (status held|grouped); None for every other row
    group_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # the notifier holding the row for one pass, and until when (an atomic claim: two processes never both send
    # it; a claim that runs out — its process died — lets another take the row); cleared when the row is marked
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]


class AlertGroupRow(Base):
    """One recipient's group of stall alerts (engine/alert_groups.py). `open_key` is the group key while the group
    is open and NULL once closed: unique, so one open group per key even with two schedulers."""

    __tablename__ = "alert_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_key: Mapped[str] = mapped_column(String(240))
    open_key: Mapped[str | None] = mapped_column(String(240), unique=True)
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recipient_role: Mapped[str | None] = mapped_column(String(20))
    recipient_region: Mapped[str | None] = mapped_column(String(50))
    labels: Mapped[dict[str, Any]]
    first_at: Mapped[datetime]
    last_sent_at: Mapped[datetime | None]
    shown: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=0)  # cards sent or edited so far: the next card's key
    card_outbox_id: Mapped[int | None] = mapped_column(Integer)
    closed_at: Mapped[datetime | None]


class MessageRefRow(Base):
    """Where a card landed, so it can be edited after a decision."""

    __tablename__ = "message_refs"
    __table_args__ = (UniqueConstraint("platform", "chat_id", "message_id", name="uq_message_refs"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    approval_id: Mapped[int | None] = mapped_column(ForeignKey("approvals.id"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime]


class SendAttemptRow(Base):
    """One platform send call: committed before the call, completed right after, so a takeover can tell a send
    that may have landed (started, never finished) from one that did (message id) or did not (error)."""

    __tablename__ = "send_attempts"
    __table_args__ = (Index("ix_send_attempts_target", "outbox_id", "platform", "chat_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    send_key: Mapped[str] = mapped_column(String(40))  # the same on a resend: WeCom's task_id, so content is equal
    resend: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)


# --- people -------------------------------------------------------------------------------------------------------


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # admin|manager|finance|supply_chain|customer
    regions: Mapped[list[Any]]
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    email: Mapped[str | None] = mapped_column(String(120))
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    quiet_hours: Mapped[str | None] = mapped_column(String(11))  # "22:00-08:00": chat alerts held (engine/quiet.py)


class ChatIdentityRow(Base):
    __tablename__ = "chat_identities"
    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_chat_identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))  # telegram | wecom
    external_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str | None] = mapped_column(String(64))
    verified_phone: Mapped[str | None] = mapped_column(String(32))
    linked_at: Mapped[datetime]


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


# --- operations ---------------------------------------------------------------------------------------------------


class DeadLetterRow(Base):
    """An intake entry that failed three times; visible to admins and replayable."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(40), unique=True)
    channel: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    replayed_at: Mapped[datetime | None]


class RuleVersionRow(Base):
    """Every rules file ever loaded, so any past decision can be reproduced."""

    __tablename__ = "rule_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    loaded_at: Mapped[datetime]
    loaded_by: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)


class HeartbeatRow(Base):
    """One row per component per minute it was alive; availability is computed from these."""

    __tablename__ = "heartbeats"
    __table_args__ = (UniqueConstraint("component", "minute", name="uq_heartbeat_minute"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    component: Mapped[str] = mapped_column(String(32))
    minute: Mapped[datetime]


# --- chat core (issue 4): invitation codes, customer order grants, stall acknowledgements, awaited reasons -------


class LinkCodeRow(Base):
    """A one-time invitation code (`/link CODE`) tying a chat identity to a staff user; only its hash is kept."""

    __tablename__ = "link_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[str | None] = mapped_column(String(96))  # platform:external_id


class OrderAccessRow(Base):
    """One order a chat identity proved by order number + last four phone digits (not their whole phone)."""

    __tablename__ = "order_access"
    __table_args__ = (UniqueConstraint("platform", "external_id", "order_id", name="uq_order_access"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    granted_at: Mapped[datetime]


class StallAckRow(Base):
    """Someone owns this stall: no further escalation for the order's stage."""

    __tablename__ = "stall_acks"
    __table_args__ = (UniqueConstraint("order_id", "stage", name="uq_stall_ack"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(20))
    acked_by: Mapped[str] = mapped_column(String(64))
    acked_at: Mapped[datetime]


class AwaitedReasonRow(Base):
    """A Reject press waiting for its reason (ForceReply); one per person and chat."""

    __tablename__ = "awaited_reasons"
    __table_args__ = (UniqueConstraint("platform", "user_external_id", "chat_id", name="uq_awaited_reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    approval_id: Mapped[int] = mapped_column(ForeignKey("approvals.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(16))
    user_external_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str] = mapped_column(String(64))
    prompt_message_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


class ShipmentRow(Base):
    """An order handed to a carrier: its waybill and the tracking state the scans have reached."""

    __tablename__ = "shipments"
    __table_args__ = (
        UniqueConstraint("carrier", "waybill", name="uq_shipments_carrier_waybill"),
        Index("ix_shipments_open", "delivered_at", "last_event_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    carrier: Mapped[str] = mapped_column(String(16))
    waybill: Mapped[str] = mapped_column(String(40))
    company: Mapped[str | None] = mapped_column(String(32))  # Kuaidi100's code of the carrier moving the parcel
    status: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime]
    picked_up_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_event_at: Mapped[datetime | None]
    last_polled_at: Mapped[datetime | None]


class TrackingEventRow(Base):
    """One scan of one parcel, stored once (`event_key`); `applied` once its effects on the order have run."""

    __tablename__ = "tracking_events"
    __table_args__ = (
        UniqueConstraint("shipment_id", "event_key", name="uq_tracking_events_key"),
        Index("ix_tracking_events_shipment_at", "shipment_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))
    code: Mapped[str] = mapped_column(String(16), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    place: Mapped[str] = mapped_column(String(200), default="")
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime]


# --- refunds ------------------------------------------------------------------------------------------------------


class RefundRow(Base):
    """One refund request of an order; its steps are audited as `refund.*` on subject `refund:<id>`.

    `(source, source_ref)` is unique: the Taobao push of one refund delivered twice is one refund.
    """

    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("source", "source_ref", name="uq_refunds_source_ref"),
        Index("ix_refunds_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # chat | api | cli | taobao
    source_ref: Mapped[str | None] = mapped_column(String(64))  # e.g. Taobao refund_id
    amount: Mapped[Decimal]
    reason: Mapped[str] = mapped_column(Text, default="")
    items: Mapped[list[Any]]
    state: Mapped[str] = mapped_column(String(20))
    rule_id: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[dict[str, Any]]  # matrix action, message, facts read, who decided
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    approval_id: Mapped[int | None] = mapped_column(ForeignKey("approvals.id"))
    proof: Mapped[dict[str, Any] | None]  # file (under the data dir), OCR text, waybill, carrier's status, verdict
    notify_platform: Mapped[str | None] = mapped_column(String(16))  # where the customer is told
    notify_chat_id: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class WorkOrderCounterRow(Base):
    """The running number of production work orders per base and (local) day: one row, bumped by one atomic
    upsert…RETURNING, so two workers confirming at once never draw the same number."""

    __tablename__ = "work_order_counters"

    base: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)


class OwnerCursorRow(Base):
    """A round-robin owner pool's turn counter (one row per rules row and region), bumped by one atomic
    upsert…RETURNING inside the transaction that enters the stage: the row lock queues concurrent assignments to
    the same pool, so several workers never hand out the same turn (storage.owners)."""

    __tablename__ = "owner_cursors"

    pool_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)


class StockRow(Base):
    """Units on hand of one SKU at one production base (`orderhub stock import`): what `routing.use_stock` reads.
    A (sku, base) without a row is "unknown" and does not block routing."""

    __tablename__ = "stock"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    base: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]
