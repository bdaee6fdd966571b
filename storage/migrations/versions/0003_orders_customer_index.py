"""orders: index (customer_id, created_at) for the rules' history facts at intake

Intake now looks up each batch's customers' earlier orders (issue 8.2): without this index that lookup scans the
whole orders table once per batch; the count is an index-only scan (the order itself is
subtracted by a probe of the unique key, not filtered per row).
"""
from alembic import op

revision: str = '0003'
down_revision: str | None = '0001'


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_customer_created', ['customer_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_customer_created')
