"""rubric components may name the question they come from (authoring, issue 12)

Revision ID: 0007_authoring
Revises: 0008_lti
Create Date: 2026-11-30 10:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_authoring"
down_revision: str | None = "0008_lti"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rubric_components") as batch:
        batch.add_column(sa.Column("question_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_rubric_components_question_id_questions"),
            "questions",
            ["question_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("rubric_components") as batch:
        batch.drop_constraint(op.f("fk_rubric_components_question_id_questions"), type_="foreignkey")
        batch.drop_column("question_id")
