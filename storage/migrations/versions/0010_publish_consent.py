"""initiatives: publish_consent (may the description be shown as open data?) and an index on created_at

``publish_consent`` is asked at intake; NULL means the initiative was submitted before the question
existed, and NULL or false publish the title and theme only. The Open311 read API lists initiatives by
submission time, newest first, a page at a time: ``ix_initiatives_created_at`` serves that.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("initiatives", sa.Column("publish_consent", sa.Boolean(), nullable=True))
    op.create_index("ix_initiatives_created_at", "initiatives", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_initiatives_created_at", table_name="initiatives")
    op.drop_column("initiatives", "publish_consent")
