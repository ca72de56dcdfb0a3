"""stall alerts: the steps of the escalation ladder that happened, and when to look at a case again

Revision ID: 0003
Revises: 0002
Create Date: 2026-02-02
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types in storage/models.py at this revision.
Timestamp = sa.DateTime(timezone=True)
BigIntegerKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Statuses in which no clock runs at this revision; every other initiative gets looked at once.
_WITHOUT_CLOCK = ("afgewezen", "gerealiseerd", "gestopt")


def upgrade() -> None:
    op.add_column("initiatives", sa.Column("next_alert_at", Timestamp, nullable=True))
    op.create_index("ix_initiatives_next_alert_at", "initiatives", ["next_alert_at", "id"])
    op.create_table(
        "stall_alerts",
        sa.Column("id", BigIntegerKey, autoincrement=True, nullable=False),
        sa.Column("initiative_id", sa.Integer(), nullable=False),
        sa.Column("track", sa.String(16), nullable=False),
        sa.Column("clock_started_at", Timestamp, nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Boolean(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stall_alerts"),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name="fk_stall_alerts_initiative_id_initiatives",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "initiative_id", "track", "clock_started_at", "level", name="uq_stall_alerts_step"
        ),
    )
    # "Recheck me": the first sweep computes the real next step of every open initiative.
    now = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # stored as naive UTC text, as storage.models.UTCDateTime does
    initiatives = sa.table(
        "initiatives", sa.column("status", sa.String()), sa.column("next_alert_at", Timestamp)
    )
    op.execute(
        initiatives.update().where(initiatives.c.status.not_in(_WITHOUT_CLOCK)).values(next_alert_at=now)
    )


def downgrade() -> None:
    op.drop_table("stall_alerts")
    op.drop_index("ix_initiatives_next_alert_at", table_name="initiatives")
    # A plain column without constraints: SQLite (3.35+) drops it in place, no table rebuild needed.
    op.drop_column("initiatives", "next_alert_at")
