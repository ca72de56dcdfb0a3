"""initial schema: people, conversations, initiatives and their timeline, processed updates, outbox

Revision ID: 0001
Revises:
Create Date: 2026-01-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types in storage/models.py at this revision.
Timestamp = sa.DateTime(timezone=True)
JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigIntegerKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("telegram_user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("first_name", sa.String(255), nullable=True),
        sa.Column("telegram_language", sa.String(16), nullable=True),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("unreachable_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_seen_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("telegram_user_id", name="pk_people"),
    )
    op.create_table(
        "conversations",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("flow", sa.String(32), nullable=False),
        sa.Column("step", sa.String(48), nullable=False),
        sa.Column("data", JSONDocument, nullable=False),
        sa.Column("history", JSONDocument, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", name="pk_conversations"),
    )
    op.create_table(
        "reference_counters",
        sa.Column("municipality_code", sa.String(16), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_code", "year", name="pk_reference_counters"),
    )
    op.create_table(
        "initiatives",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("municipality_code", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("resident_user_id", sa.BigInteger(), nullable=False),
        sa.Column("resident_chat_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(80), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("theme_code", sa.String(32), nullable=False),
        sa.Column("wijk_code", sa.String(16), nullable=True),
        sa.Column("own_contribution", sa.Text(), nullable=True),
        sa.Column("needs", JSONDocument, nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("neighbours", sa.Integer(), nullable=True),
        sa.Column("photo_file_id", sa.String(255), nullable=True),
        sa.Column("contact_name", sa.String(60), nullable=False),
        sa.Column("contact_phone", sa.String(32), nullable=True),
        sa.Column("contact_email", sa.String(254), nullable=True),
        sa.Column("consent_at", Timestamp, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_changed_at", Timestamp, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_initiatives"),
        sa.UniqueConstraint("reference", name="uq_initiatives_reference"),
        sa.UniqueConstraint("municipality_code", "year", "seq", name="uq_initiatives_municipality_year_seq"),
    )
    op.create_index("ix_initiatives_resident_user_id", "initiatives", ["resident_user_id"])
    op.create_index("ix_initiatives_status_changed", "initiatives", ["status", "status_changed_at"])
    op.create_table(
        "initiative_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("initiative_id", sa.Integer(), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("department", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_initiative_events"),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name="fk_initiative_events_initiative_id_initiatives",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_initiative_events_initiative_id", "initiative_events", ["initiative_id"])
    op.create_table(
        "processed_updates",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("processed_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("update_id", name="pk_processed_updates"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", BigIntegerKey, autoincrement=True, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("payload", JSONDocument, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("not_before", Timestamp, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("sent_at", Timestamp, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_chat_id", "outbox", ["chat_id"])
    op.create_index("ix_outbox_status_not_before", "outbox", ["status", "not_before", "id"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("processed_updates")
    op.drop_table("initiative_events")
    op.drop_table("initiatives")
    op.drop_table("reference_counters")
    op.drop_table("conversations")
    op.drop_table("people")
