"""hand back the open cases of brokers removed before removal did so: they wait for a new broker

Before 0006, ``staff remove`` left a broker's open initiatives assigned to them, so nobody saw them as
unassigned. This revision clears their broker and notes it on the internal timeline, as removal does now;
the watchdog looks at them again. It changes data only, so going back leaves them unassigned.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# flows.lifecycle.OPEN_STATUSES when this revision was written.
_OPEN = (
    "ingediend",
    "toegewezen",
    "in_gesprek",
    "plan_in_uitwerking",
    "bij_gemeente",
    "goedgekeurd",
    "in_uitvoering",
)
_OPEN_SQL = ", ".join(f"'{status}'" for status in _OPEN)
# Open cases whose broker was removed; ``{t}`` is the initiatives table's name or alias.
_ORPHANED = (
    " WHERE {t}.status IN (" + _OPEN_SQL + ")"
    " AND {t}.broker_id IN (SELECT s.id FROM staff s WHERE s.removed_at IS NOT NULL)"
)


def upgrade() -> None:
    # The removal moment is the event's time: copied from the row, so it keeps each database's format.
    op.execute(
        sa.text(
            "INSERT INTO initiative_events (initiative_id, at, kind, status, actor_user_id, actor_role,"
            " note, department, staff_id, to_staff_id, visible_to_resident)"
            " SELECT i.id, s.removed_at, 'unassigned', NULL, NULL, 'system', 'removed', NULL, i.broker_id,"
            " NULL, FALSE FROM initiatives i JOIN staff s ON s.id = i.broker_id" + _ORPHANED.format(t="i")
        )
    )
    # SET sees the row as it was, so next_alert_at ("recheck me") is read through the old broker_id.
    op.execute(
        sa.text(
            "UPDATE initiatives SET broker_id = NULL, next_alert_at ="
            " (SELECT s.removed_at FROM staff s WHERE s.id = initiatives.broker_id)"
            + _ORPHANED.format(t="initiatives")
        )
    )


def downgrade() -> None:
    pass  # data only: which broker a case had is still on its timeline
