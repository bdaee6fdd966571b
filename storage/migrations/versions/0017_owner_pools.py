"""owner pools: round-robin cursors, and open orders per owner (issue 12.1)
"""
import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0015'


def upgrade() -> None:
    op.create_table('owner_cursors',
    sa.Column('pool_key', sa.String(length=200), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('pool_key')
    )
    op.create_index('ix_orders_owner_stage', 'orders', ['owner_user_id', 'stage'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_orders_owner_stage', table_name='orders')
    op.drop_table('owner_cursors')
