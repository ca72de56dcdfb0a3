"""send gates: Telegram's send budget and the per-chat sender, shared by every worker

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "send_gates",
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("tat", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("holder", sa.String(length=80), nullable=True),
        sa.Column("held_until", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_send_gates"),
    )


def downgrade() -> None:
    op.drop_table("send_gates")
