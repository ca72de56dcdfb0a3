"""resident experience: amounts as ranges, voice notes with the idea, and photos, voice notes and
documents in the messages between a resident and their broker

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both engines (no batch copy: on SQLite that would cascade to the timeline).
    op.add_column("initiatives", sa.Column("amount_max_cents", sa.BigInteger(), nullable=True))
    op.add_column("initiatives", sa.Column("idea_voice_file_id", sa.String(255), nullable=True))
    op.add_column("initiatives", sa.Column("own_voice_file_id", sa.String(255), nullable=True))
    op.add_column("initiative_events", sa.Column("media_kind", sa.String(16), nullable=True))
    op.add_column("initiative_events", sa.Column("media_file_id", sa.String(255), nullable=True))
    op.add_column("initiative_events", sa.Column("media_name", sa.String(255), nullable=True))

    # --- talk (issue 14): a voice note's length, for "🎤 voice note (0:12)" on the timeline ---
    op.add_column("initiative_events", sa.Column("media_seconds", sa.Integer(), nullable=True))
    # A swipe-reply finds the bot's message it answers without reading the whole outbox.
    op.create_index("ix_outbox_chat_message", "outbox", ["chat_id", "telegram_message_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_chat_message", table_name="outbox")
    # Plain DROP COLUMN (SQLite 3.35+), no batch: a table copy of initiatives would cascade to the
    # timeline, and one of initiative_events would renumber nothing but cost a copy of every entry.
    op.drop_column("initiative_events", "media_seconds")
    op.drop_column("initiative_events", "media_name")
    op.drop_column("initiative_events", "media_file_id")
    op.drop_column("initiative_events", "media_kind")
    op.drop_column("initiatives", "own_voice_file_id")
    op.drop_column("initiatives", "idea_voice_file_id")
    op.drop_column("initiatives", "amount_max_cents")
