"""thread visits: when each person last read each thread (issue 12, "N new" per question)

One row per (person, thread), upserted when the person opens the thread; posts by others
after `read_at` are new to them. Private to the person (their data export; erased with them).

Revision ID: 0011_visits
Revises: 0007_authoring
Create Date: 2026-11-29 19:11:25.019119+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may emit sqlmodel.sql.sqltypes.AutoString)
from alembic import op


revision: str = '0011_visits'
down_revision: str | None = '0007_authoring'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('thread_visits',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('thread_id', sa.Integer(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['thread_id'], ['threads.id'], name=op.f('fk_thread_visits_thread_id_threads'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_thread_visits_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'thread_id', name=op.f('pk_thread_visits'))
    )
    with op.batch_alter_table('thread_visits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_thread_visits_thread_id'), ['thread_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('thread_visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_thread_visits_thread_id'))

    op.drop_table('thread_visits')
