"""exemplars

Revision ID: 0004_ex
Revises: 0003
Create Date: 2026-11-27 09:04:05.975134+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate may emit sqlmodel.sql.sqltypes.AutoString)
from alembic import op


revision: str = '0004_ex'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('exemplars',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.Enum('post', 'paper', 'passage', 'review', 'sample_paper', name='exemplarkind', native_enum=False, length=16), nullable=False),
    sa.Column('source_post_id', sa.Integer(), nullable=True),
    sa.Column('source_paper_id', sa.Integer(), nullable=True),
    sa.Column('source_review_id', sa.Integer(), nullable=True),
    sa.Column('source_version', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('note_html', sa.Text(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('draft', 'published', name='exemplarstatus', native_enum=False, length=16), nullable=False),
    sa.Column('attribution', sa.Enum('pending', 'anonymous', 'named', 'declined', 'assignment', name='attribution', native_enum=False, length=16), nullable=False),
    sa.Column('attribution_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_exemplars_assignment_id_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], name=op.f('fk_exemplars_author_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_exemplars_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['question_id'], ['questions.id'], name=op.f('fk_exemplars_question_id_questions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_paper_id'], ['papers.id'], name=op.f('fk_exemplars_source_paper_id_papers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_post_id'], ['posts.id'], name=op.f('fk_exemplars_source_post_id_posts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_review_id'], ['reviews.id'], name=op.f('fk_exemplars_source_review_id_reviews'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exemplars')),
    sa.UniqueConstraint('public_id', name=op.f('uq_exemplars_public_id'))
    )
    with op.batch_alter_table('exemplars', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exemplars_assignment_id'), ['assignment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exemplars_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exemplars_question_id'), ['question_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('exemplars', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exemplars_question_id'))
        batch_op.drop_index(batch_op.f('ix_exemplars_author_id'))
        batch_op.drop_index(batch_op.f('ix_exemplars_assignment_id'))

    op.drop_table('exemplars')
