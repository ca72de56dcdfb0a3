"""overview figures: Amsterdam dates on initiatives, finished status spells, a working-day calendar

The staff web's overview adds up, per wijk, how long cases waited and on whom, and counts per month
and quarter, for up to 100,000 initiatives in a few hundred milliseconds. So the initiative keeps the
Amsterdam dates of its submission, its current status and its first contact (first message to the
initiators, or in_gesprek), each finished stay in a status is a row of ``status_spells``, and
``working_day_ordinals`` (filled by the overview for its municipality) turns two dates into working
days by a subtraction; the working days of a spell and to the first contact are kept with them once
the calendar has their days. This revision fills the dates and the spells from the timeline; their
working days follow when the overview first writes the calendar.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntegerKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
BATCH = 5_000

_initiatives = sa.table(
    "initiatives",
    sa.column("id", sa.Integer()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("status_changed_at", sa.DateTime(timezone=True)),
    sa.column("submitted_on", sa.Date()),
    sa.column("status_on", sa.Date()),
    sa.column("first_contact_at", sa.DateTime(timezone=True)),
    sa.column("first_contact_on", sa.Date()),
)
_events = sa.table(
    "initiative_events",
    sa.column("id", sa.Integer()),
    sa.column("initiative_id", sa.Integer()),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("kind", sa.String()),
    sa.column("status", sa.String()),
    sa.column("department", sa.String()),
)
_spells = sa.table(
    "status_spells",
    sa.column("initiative_id", sa.Integer()),
    sa.column("status", sa.String()),
    sa.column("department", sa.String()),
    sa.column("started_at", sa.DateTime(timezone=True)),
    sa.column("ended_at", sa.DateTime(timezone=True)),
    sa.column("started_on", sa.Date()),
    sa.column("ended_on", sa.Date()),
    sa.column("submitted_on", sa.Date()),
)


def _day(moment: datetime) -> object:
    # SQLite hands back naive UTC; PostgreSQL aware moments.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(AMSTERDAM).date()


def upgrade() -> None:
    # Plain columns: SQLite adds and drops them in place. A batch rebuild of initiatives would drop the
    # old table, and with foreign keys on that deletes the timeline by cascade.
    op.add_column("initiatives", sa.Column("submitted_on", sa.Date(), nullable=True))
    op.add_column("initiatives", sa.Column("status_on", sa.Date(), nullable=True))
    op.add_column("initiatives", sa.Column("first_contact_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("initiatives", sa.Column("first_contact_on", sa.Date(), nullable=True))
    op.add_column("initiatives", sa.Column("first_contact_days", sa.Integer(), nullable=True))
    op.create_index("ix_initiatives_created_at", "initiatives", ["created_at"], unique=False)
    op.create_index(
        "ix_initiatives_overview",
        "initiatives",
        [
            "submitted_on",
            "status",
            "wijk_code",
            "theme_code",
            "broker_id",
            "first_contact_days",
            "first_contact_on",
        ],
        unique=False,
    )
    op.create_index("ix_initiatives_status_on", "initiatives", ["status", "status_on"], unique=False)
    op.create_table(
        "status_spells",
        sa.Column("id", BigIntegerKey, autoincrement=True, nullable=False),
        sa.Column("initiative_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=False),
        sa.Column("working_days", sa.Integer(), nullable=True),
        sa.Column("submitted_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name=op.f("fk_status_spells_initiative_id_initiatives"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_spells")),
    )
    op.create_index(
        "ix_status_spells_initiative",
        "status_spells",
        ["initiative_id", "status", "department", "working_days"],
        unique=False,
    )
    op.create_index(
        "ix_status_spells_waits", "status_spells", ["status", "department", "working_days"], unique=False
    )
    op.create_index(
        "ix_status_spells_period",
        "status_spells",
        ["submitted_on", "status", "department", "working_days"],
        unique=False,
    )
    op.create_table(
        "working_day_ordinals",
        sa.Column("municipality_code", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("municipality_code", "day", name=op.f("pk_working_day_ordinals")),
    )
    _backfill()


def _backfill() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_initiatives.c.id, _initiatives.c.created_at, _initiatives.c.status_changed_at)
    ).all()
    dates = [{"b_id": i, "b_sub": _day(created), "b_st": _day(changed)} for i, created, changed in rows]
    submitted = {d["b_id"]: d["b_sub"] for d in dates}
    set_dates = (
        _initiatives.update()
        .where(_initiatives.c.id == sa.bindparam("b_id"))
        .values(submitted_on=sa.bindparam("b_sub"), status_on=sa.bindparam("b_st"))
    )
    for start in range(0, len(dates), BATCH):
        bind.execute(set_dates, dates[start : start + BATCH])

    # As storage.initiatives keeps it on write: the first message to the initiators or in_gesprek.
    first = bind.execute(
        sa.select(_events.c.initiative_id, sa.func.min(_events.c.at))
        .where(
            sa.or_(
                _events.c.kind == "message_to_resident",
                sa.and_(_events.c.kind == "status", _events.c.status == "in_gesprek"),
            )
        )
        .group_by(_events.c.initiative_id)
    ).all()
    contacts = [{"b_id": i, "b_at": at, "b_on": _day(at)} for i, at in first]
    set_contact = (
        _initiatives.update()
        .where(_initiatives.c.id == sa.bindparam("b_id"))
        .values(first_contact_at=sa.bindparam("b_at"), first_contact_on=sa.bindparam("b_on"))
    )
    for start in range(0, len(contacts), BATCH):
        bind.execute(set_contact, contacts[start : start + BATCH])

    # Each status event up to the next one of the same case is a finished spell; the last is current.
    events = bind.execute(
        sa.select(_events.c.initiative_id, _events.c.at, _events.c.status, _events.c.department)
        .where(_events.c.kind == "status")
        .order_by(_events.c.initiative_id, _events.c.at, _events.c.id)
    ).all()
    spells: list[dict[str, object]] = []
    previous = None
    for row in events:
        if previous is not None and previous.initiative_id == row.initiative_id:
            spells.append(
                {
                    "initiative_id": row.initiative_id,
                    "status": previous.status,
                    "department": previous.department if previous.status == "bij_gemeente" else None,
                    "started_at": previous.at,
                    "ended_at": row.at,
                    "started_on": _day(previous.at),
                    "ended_on": _day(row.at),
                    "submitted_on": submitted.get(row.initiative_id),
                }
            )
            if len(spells) >= BATCH:
                bind.execute(_spells.insert(), spells)
                spells = []
        previous = row
    if spells:
        bind.execute(_spells.insert(), spells)


def downgrade() -> None:
    op.drop_table("working_day_ordinals")
    op.drop_index("ix_status_spells_period", table_name="status_spells")
    op.drop_index("ix_status_spells_waits", table_name="status_spells")
    op.drop_index("ix_status_spells_initiative", table_name="status_spells")
    op.drop_table("status_spells")
    op.drop_index("ix_initiatives_status_on", table_name="initiatives")
    op.drop_index("ix_initiatives_overview", table_name="initiatives")
    op.drop_index("ix_initiatives_created_at", table_name="initiatives")
    for column in ("first_contact_days", "first_contact_on", "first_contact_at", "status_on", "submitted_on"):
        op.drop_column("initiatives", column)
