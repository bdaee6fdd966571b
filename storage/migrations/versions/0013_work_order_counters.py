"""work-order counters (issue 13.5)
"""
import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0009'


def upgrade() -> None:
    op.create_table('work_order_counters',
    sa.Column('base', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('base', 'day')
    )


def downgrade() -> None:
    op.drop_table('work_order_counters')
