"""privacy: erasure and anonymisation marks, encrypted contact columns, and the indexes that let the
retention sweep find only what is due

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Moment = sa.DateTime(timezone=True)


def _partial(where: str) -> dict[str, object]:
    return {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # No batch (table copy) for initiatives on SQLite: dropping the old copy would cascade to the
    # timeline. SQLite does not enforce a VARCHAR's length, so only PostgreSQL needs the wider type
    # that Fernet tokens (storage.crypto) take.
    if not sqlite:
        op.alter_column("initiatives", "contact_phone", type_=sa.Text(), existing_type=sa.String(32))
        op.alter_column("initiatives", "contact_email", type_=sa.Text(), existing_type=sa.String(254))
    op.add_column("initiatives", sa.Column("resident_erased_at", Moment, nullable=True))
    op.add_column("initiatives", sa.Column("anonymised_at", Moment, nullable=True))
    op.create_index(
        "ix_initiatives_retention",
        "initiatives",
        ["status", "status_changed_at"],
        **_partial("anonymised_at IS NULL"),
    )
    op.add_column("conversations", sa.Column("draft_reminded_at", Moment, nullable=True))
    op.create_index("ix_conversations_updated_at", "conversations", ["updated_at"])
    op.create_index(
        "ix_conversations_draft_reminded_at",
        "conversations",
        ["draft_reminded_at"],
        **_partial("draft_reminded_at IS NOT NULL"),
    )
    op.create_index("ix_people_last_seen_at", "people", ["last_seen_at"])
    op.create_index("ix_processed_updates_processed_at", "processed_updates", ["processed_at"])
    op.add_column("outbox", sa.Column("payload_cleared_at", Moment, nullable=True))
    op.add_column(
        "outbox", sa.Column("forget_chat", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.create_index(
        "ix_outbox_payload_kept",
        "outbox",
        ["created_at"],
        **_partial("status <> 'pending' AND payload_cleared_at IS NULL"),
    )
    op.add_column("mail_outbox", sa.Column("body_cleared_at", Moment, nullable=True))
    op.create_index("ix_mail_outbox_initiative_id", "mail_outbox", ["initiative_id"])
    op.create_index(
        "ix_mail_outbox_body_kept",
        "mail_outbox",
        ["created_at"],
        **_partial("status <> 'pending' AND body_cleared_at IS NULL"),
    )
    op.create_index("ix_send_gates_tat", "send_gates", ["tat"])


def downgrade() -> None:
    op.drop_index("ix_send_gates_tat", table_name="send_gates")
    op.drop_index("ix_mail_outbox_body_kept", table_name="mail_outbox")
    op.drop_index("ix_mail_outbox_initiative_id", table_name="mail_outbox")
    op.drop_column("mail_outbox", "body_cleared_at")
    op.drop_index("ix_outbox_payload_kept", table_name="outbox")
    op.drop_column("outbox", "forget_chat")
    op.drop_column("outbox", "payload_cleared_at")
    op.drop_index("ix_processed_updates_processed_at", table_name="processed_updates")
    op.drop_index("ix_people_last_seen_at", table_name="people")
    op.drop_index("ix_conversations_draft_reminded_at", table_name="conversations")
    op.drop_index("ix_conversations_updated_at", table_name="conversations")
    op.drop_column("conversations", "draft_reminded_at")
    op.drop_index("ix_initiatives_retention", table_name="initiatives")
    # Plain DROP COLUMN (SQLite 3.35+), no batch: see upgrade. Encrypted values do not fit the old
    # widths, so a downgrade keeps the wide contact columns.
    op.drop_column("initiatives", "anonymised_at")
    op.drop_column("initiatives", "resident_erased_at")
