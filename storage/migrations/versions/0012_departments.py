"""departments answer inside the workflow: contacts, questions and their threads, personal links, the
blocker list, and the e-mail outbox

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntegerKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "department_contacts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("removed_at", Moment, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_department_contacts"),
        sa.UniqueConstraint("department", "email", name="uq_department_contacts_address"),
    )
    op.create_table(
        "department_questions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("initiative_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("asked_at", Moment, nullable=False),
        sa.Column("asked_by_staff_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("clock_started_at", Moment, nullable=False),
        sa.Column("promised_on", sa.Date(), nullable=True),
        sa.Column("next_alert_at", Moment, nullable=True),
        sa.Column("answer_kind", sa.String(length=16), nullable=True),
        sa.Column("answer_text", sa.Text(), nullable=True),
        sa.Column("blocked_by", sa.String(length=16), nullable=True),
        sa.Column("answered_at", Moment, nullable=True),
        sa.Column("answer_working_days", sa.Integer(), nullable=True),
        sa.Column("answered_within_norm", sa.Boolean(), nullable=True),
        sa.Column("forwarded_to", sa.String(length=64), nullable=True),
        sa.Column("forwarded_from_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", Moment, nullable=True),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name="fk_department_questions_initiative_id_initiatives",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["asked_by_staff_id"], ["staff.id"], name="fk_department_questions_asked_by_staff_id_staff"
        ),
        sa.ForeignKeyConstraint(
            ["forwarded_from_id"],
            ["department_questions.id"],
            name="fk_department_questions_forwarded_from_id_department_questions",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_department_questions"),
    )
    op.create_index(
        "ix_department_questions_initiative", "department_questions", ["initiative_id", "id"], unique=False
    )
    op.create_index(
        "ix_department_questions_next_alert_at", "department_questions", ["next_alert_at", "id"], unique=False
    )
    op.create_index(
        "ix_department_questions_department", "department_questions", ["department", "state"], unique=False
    )
    op.create_table(
        "department_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("at", Moment, nullable=False),
        sa.Column("author", sa.String(length=16), nullable=False),
        sa.Column("author_name", sa.String(length=80), nullable=False),
        sa.Column("author_email", sa.String(length=254), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("blocked_by", sa.String(length=16), nullable=True),
        sa.Column("promised_on", sa.Date(), nullable=True),
        sa.Column("forward_to", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["department_questions.id"],
            name="fk_department_messages_question_id_department_questions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_department_messages"),
    )
    op.create_index(
        "ix_department_messages_question_id", "department_messages", ["question_id"], unique=False
    )
    op.create_table(
        "department_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("initiative_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("last_used_at", Moment, nullable=True),
        sa.Column("revoked_at", Moment, nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.Column("revoked_by_staff_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name="fk_department_links_initiative_id_initiatives",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by_staff_id"], ["staff.id"], name="fk_department_links_revoked_by_staff_id_staff"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_department_links"),
    )
    op.create_index(
        "ix_department_links_case", "department_links", ["initiative_id", "department", "email"], unique=False
    )
    op.create_table(
        "blocker_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("question_id", sa.Integer(), nullable=False),
        sa.Column("at", Moment, nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("escalated_to", sa.String(length=200), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("resolved", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["department_questions.id"],
            name="fk_blocker_actions_question_id_department_questions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name="fk_blocker_actions_staff_id_staff"),
        sa.PrimaryKeyConstraint("id", name="pk_blocker_actions"),
    )
    op.create_index("ix_blocker_actions_question_id", "blocker_actions", ["question_id"], unique=False)
    op.create_table(
        "mail_outbox",
        sa.Column("id", BigIntegerKey, autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("to_address", sa.String(length=254), nullable=False),
        sa.Column("to_name", sa.String(length=80), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("initiative_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("not_before", Moment, nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("sent_at", Moment, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["initiative_id"],
            ["initiatives.id"],
            name="fk_mail_outbox_initiative_id_initiatives",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mail_outbox"),
        sa.UniqueConstraint("message_id", name="uq_mail_outbox_message_id"),
    )
    op.create_index(
        "ix_mail_outbox_status_not_before", "mail_outbox", ["status", "not_before", "id"], unique=False
    )
    # Cases waiting on a department today get their question as an open one, so the department's clock
    # (which replaces the status clock of bij_gemeente) keeps running from the moment they were sent.
    op.execute(
        """
        INSERT INTO department_questions
            (initiative_id, department, question, asked_at, state, clock_started_at, next_alert_at)
        SELECT i.id, i.department,
               COALESCE((SELECT e.note FROM initiative_events e
                         WHERE e.initiative_id = i.id AND e.kind = 'status' AND e.status = 'bij_gemeente'
                         ORDER BY e.at DESC, e.id DESC LIMIT 1), ''),
               i.status_changed_at, 'open', i.status_changed_at, i.status_changed_at
        FROM initiatives i
        WHERE i.status = 'bij_gemeente' AND i.department IS NOT NULL
        """
    )


def downgrade() -> None:
    op.drop_index("ix_mail_outbox_status_not_before", table_name="mail_outbox")
    op.drop_table("mail_outbox")
    op.drop_index("ix_blocker_actions_question_id", table_name="blocker_actions")
    op.drop_table("blocker_actions")
    op.drop_index("ix_department_links_case", table_name="department_links")
    op.drop_table("department_links")
    op.drop_index("ix_department_messages_question_id", table_name="department_messages")
    op.drop_table("department_messages")
    op.drop_index("ix_department_questions_department", table_name="department_questions")
    op.drop_index("ix_department_questions_next_alert_at", table_name="department_questions")
    op.drop_index("ix_department_questions_initiative", table_name="department_questions")
    op.drop_table("department_questions")
    op.drop_table("department_contacts")
