"""outbox claims: a row is claimed in the database before it is sent, so two processes never both send it (issue 9)
"""
import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0025'
down_revision: str | None = '0023'


def upgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('claimed_by', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('claimed_until', storage.types.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('claimed_until')
        batch.drop_column('claimed_by')
