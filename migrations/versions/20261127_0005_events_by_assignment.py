"""events carry their assignment, so the moderator's workspace can follow it live

Revision ID: 0005_ws
Revises: 0004_ex
Create Date: 2026-11-27 11:50:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_ws"
down_revision: str | None = "0004_ex"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("events", sa.Column("assignment_id", sa.Integer(), nullable=True))
    op.create_index("ix_events_assignment_id", "events", ["assignment_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_events_assignment_id", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("assignment_id")
