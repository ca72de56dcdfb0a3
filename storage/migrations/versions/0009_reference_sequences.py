"""references: on PostgreSQL a sequence per municipality and year instead of a locked counter row

Submissions took the ``reference_counters`` row lock early in their transaction and kept it until
commit, so concurrent submissions waited for each other. PostgreSQL now takes the number from a
sequence per (municipality, year), created by the first submission of that year
(``storage.initiatives.next_reference``); this revision makes one for every counter there is, starting
after its last number. SQLite keeps counting in ``reference_counters``. Downgrading writes each
sequence's last number back into its counter and drops the sequences.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sequence_name(municipality_code: str, year: int) -> str:
    # As storage.initiatives.reference_sequence_name at this revision (a migration keeps its own copy).
    readable = re.sub(r"[^a-z0-9]+", "", municipality_code.lower())[:20]
    digest = hashlib.sha256(municipality_code.encode()).hexdigest()[:8]
    return f"reference_seq_{year}_{readable}_{digest}"


# Per counter: the highest number known, from the counter or from an initiative (a deleted initiative's
# number stays used).
_LAST_NUMBERS = sa.text(
    "SELECT c.municipality_code, c.year, GREATEST(c.last_seq, COALESCE(MAX(i.seq), 0))"
    " FROM reference_counters c LEFT JOIN initiatives i"
    " ON i.municipality_code = c.municipality_code AND i.year = c.year"
    " GROUP BY c.municipality_code, c.year, c.last_seq"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for code, year, last in bind.execute(_LAST_NUMBERS).all():
        name = _sequence_name(code, year)
        op.execute(f"CREATE SEQUENCE IF NOT EXISTS {name} START WITH {int(last) + 1} MINVALUE 1")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # Every sequence has its counter row (the first submission of a year adds it).
    for code, year, last in bind.execute(_LAST_NUMBERS).all():
        name = _sequence_name(code, year)
        exists = bind.execute(sa.text("SELECT to_regclass(CAST(:name AS text))"), {"name": name}).scalar()
        if exists is None:
            continue
        # is_called false: created, nothing handed out yet; last_value is then the start.
        used = bind.execute(
            sa.text(f"SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {name}")
        ).scalar_one()
        bind.execute(
            sa.text(
                "UPDATE reference_counters SET last_seq = :last"
                " WHERE municipality_code = :code AND year = :year"
            ),
            {"last": max(int(last), int(used)), "code": code, "year": year},
        )
        op.execute(f"DROP SEQUENCE {name}")
