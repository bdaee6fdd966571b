"""note examples: corrected exception-note categories the classifier learns from (issue 13.2)
"""
import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = '0021'
down_revision: str | None = '0019'


def upgrade() -> None:
    op.create_table('note_examples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('note_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('previous', sa.String(length=32), nullable=True),
    sa.Column('corrected_by', sa.String(length=64), nullable=False),
    sa.Column('at', storage.types.UTCDateTime(), nullable=False),
    sa.Column('rules_version', sa.String(length=64), nullable=False),
    sa.Column('library_version', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['note_id'], ['exception_notes.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('note_id')
    )
    op.create_index(op.f('ix_note_examples_category'), 'note_examples', ['category'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_note_examples_category'), table_name='note_examples')
    op.drop_table('note_examples')
