"""staff and their invites; initiatives get a broker and a department; the timeline records staff

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-19
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types in storage/models.py at this revision.
Timestamp = sa.DateTime(timezone=True)
JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
STAFF_ROLES_CHECK = "role IN ('broker', 'coordinator')"

# The columns 0001 gave initiative_events, for copying its rows aside on a SQLite downgrade.
_EVENT_COLUMNS_0001 = "id, initiative_id, at, kind, status, actor_user_id, actor_role, note, department"


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _add_staff_reference(table: str, column: str) -> None:
    """Add a nullable column referencing staff.id, without rebuilding the table on SQLite."""
    name = f"fk_{table}_{column}_staff"
    reference = sa.Column(column, sa.Integer(), sa.ForeignKey("staff.id", name=name), nullable=True)
    if _is_sqlite():
        # SQLite cannot add a constraint to a table, but it can add a column with an inline REFERENCES
        # (which it does not name). A batch rebuild instead would drop initiatives, and with foreign
        # keys on that cascades to delete every initiative_events row.
        op.add_column(table, reference, inline_references=True)
    else:
        # Adds the column, then the foreign key under its conventional name.
        op.add_column(table, reference)


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("telegram_user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("wijken", JSONDocument, nullable=False),
        sa.Column("themes", JSONDocument, nullable=False),
        sa.Column("absent_until", sa.Date(), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("removed_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_staff"),
        sa.UniqueConstraint("telegram_user_id", name="uq_staff_telegram_user_id"),
        # op.f(): the name is final, not a constraint_name for the ck naming convention.
        sa.CheckConstraint(STAFF_ROLES_CHECK, name=op.f("ck_staff_role")),
    )
    op.create_table(
        "staff_invites",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("wijken", JSONDocument, nullable=False),
        sa.Column("themes", JSONDocument, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("used_at", Timestamp, nullable=True),
        sa.Column("used_by_user_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("code", name="pk_staff_invites"),
        sa.CheckConstraint(STAFF_ROLES_CHECK, name=op.f("ck_staff_invites_role")),
    )

    _add_staff_reference("initiatives", "broker_id")
    op.add_column("initiatives", sa.Column("assigned_at", Timestamp, nullable=True))
    op.add_column("initiatives", sa.Column("last_broker_action_at", Timestamp, nullable=True))
    op.add_column("initiatives", sa.Column("department", sa.String(64), nullable=True))
    op.create_index("ix_initiatives_broker_status", "initiatives", ["broker_id", "status"])

    _add_staff_reference("initiative_events", "staff_id")
    _add_staff_reference("initiative_events", "to_staff_id")
    # The server default makes every entry written before this revision visible, as it was.
    op.add_column(
        "initiative_events",
        sa.Column("visible_to_resident", sa.Boolean(), server_default=sa.true(), nullable=False),
    )


def downgrade() -> None:
    op.drop_index("ix_initiatives_broker_status", table_name="initiatives")
    if not _is_sqlite():
        for column in ("visible_to_resident", "to_staff_id", "staff_id"):
            op.drop_column("initiative_events", column)
        for column in ("department", "last_broker_action_at", "assigned_at", "broker_id"):
            op.drop_column("initiatives", column)
    else:
        # SQLite drops a column that is part of a foreign key only by rebuilding the table. Rebuilding
        # initiatives drops the old table, and with foreign keys on (they cannot be switched off inside
        # the migration's transaction) that deletes the timeline by cascade: so park the timeline.
        op.execute(
            f"CREATE TEMPORARY TABLE _events_0001 AS SELECT {_EVENT_COLUMNS_0001} FROM initiative_events"
        )
        op.execute("DELETE FROM initiative_events")
        with op.batch_alter_table("initiative_events", recreate="always") as batch:
            for column in ("visible_to_resident", "to_staff_id", "staff_id"):
                batch.drop_column(column)
        with op.batch_alter_table("initiatives", recreate="always") as batch:
            for column in ("department", "last_broker_action_at", "assigned_at", "broker_id"):
                batch.drop_column(column)
        columns = _EVENT_COLUMNS_0001
        op.execute(f"INSERT INTO initiative_events ({columns}) SELECT {columns} FROM _events_0001")
        op.execute("DROP TABLE _events_0001")
    op.drop_table("staff_invites")
    op.drop_table("staff")
