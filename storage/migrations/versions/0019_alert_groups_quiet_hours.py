"""alert groups (grouped stall cards), outbox.group_id for their members, users.quiet_hours (issue 12.2/3/5)
"""
import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0019'
down_revision: str | None = '0017'


def upgrade() -> None:
    op.create_table('alert_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_key', sa.String(length=240), nullable=False),
    sa.Column('open_key', sa.String(length=240), nullable=True),
    sa.Column('recipient_user_id', sa.Integer(), nullable=True),
    sa.Column('recipient_role', sa.String(length=20), nullable=True),
    sa.Column('recipient_region', sa.String(length=50), nullable=True),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('first_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('last_sent_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('shown', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('card_outbox_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', storage.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['recipient_user_id'], ['users.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('open_key')
    )
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('group_id', sa.Integer(), nullable=True))
        batch.create_index('ix_outbox_group_id', ['group_id'], unique=False)
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('quiet_hours', sa.String(length=11), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('quiet_hours')
    with op.batch_alter_table('outbox') as batch:
        batch.drop_index('ix_outbox_group_id')
        batch.drop_column('group_id')
    op.drop_table('alert_groups')
