"""stock levels per SKU and production base (issue 13.5)

Revision ID: 0023
Revises: 0015
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0023'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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
