"""stock levels per SKU and production base (issue 13.5)
"""
import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0023'
down_revision: str | None = '0021'


def upgrade() -> None:
    op.create_table('stock',
    sa.Column('sku', sa.String(length=64), nullable=False),
    sa.Column('base', sa.String(length=64), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('updated_at', storage.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('sku', 'base')
    )


def downgrade() -> None:
    op.drop_table('stock')
