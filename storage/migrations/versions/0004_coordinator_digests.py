"""coordinator digests: which coordinator got which week's overview, so each gets it once

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "coordinator_digests",
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("sent_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name="fk_coordinator_digests_staff_id_staff", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("staff_id", "week_start", name="pk_coordinator_digests"),
    )


def downgrade() -> None:
    op.drop_table("coordinator_digests")
