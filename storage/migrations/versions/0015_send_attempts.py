"""send attempts: a platform send recorded before the call and completed after (issue 9.7)
"""
import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0015'
down_revision: str | None = '0013'


def upgrade() -> None:
    op.create_table('send_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('chat_id', sa.String(length=64), nullable=False),
    sa.Column('send_key', sa.String(length=40), nullable=False),
    sa.Column('resend', sa.Boolean(), nullable=False),
    sa.Column('started_at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('finished_at', storage.types.UTCDateTime(), nullable=True),
    sa.Column('message_id', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_send_attempts_target', 'send_attempts', ['outbox_id', 'platform', 'chat_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_send_attempts_target', table_name='send_attempts')
    op.drop_table('send_attempts')
