"""carriers and tracking: shipments and their tracking events
"""
import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0007'
down_revision: str | None = '0003'


def upgrade() -> None:
    op.create_table('shipments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('carrier', sa.String(length=16), nullable=False),
    sa.Column('waybill', sa.String(length=40), nullable=False),
    sa.Column('company', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('created_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('picked_up_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('delivered_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('last_event_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('last_polled_at', storage.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('carrier', 'waybill', name='uq_shipments_carrier_waybill')
    )
    op.create_index('ix_shipments_open', 'shipments', ['delivered_at', 'last_event_at'], unique=False)
    op.create_index(op.f('ix_shipments_order_id'), 'shipments', ['order_id'], unique=False)
    op.create_table('tracking_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shipment_id', sa.Integer(), nullable=False),
    sa.Column('event_key', sa.String(length=32), nullable=False),
    sa.Column('at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.Column('received_at', storage.types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('shipment_id', 'event_key', name='uq_tracking_events_key')
    )
    op.create_index('ix_tracking_events_shipment_at', 'tracking_events', ['shipment_id', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_tracking_events_shipment_at', table_name='tracking_events')
    op.drop_table('tracking_events')
    op.drop_index(op.f('ix_shipments_order_id'), table_name='shipments')
    op.drop_index('ix_shipments_open', table_name='shipments')
    op.drop_table('shipments')
