"""SQLAlchemy models: the database schema of initiatiefbot, identical on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from storage import crypto

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp; naive datetimes are refused on write.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text, which gets its UTC tzinfo back on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored; use a timezone-aware one")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite compares timestamps as text, so every stored value must be naive UTC in one format.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSON documents; JSONB on PostgreSQL so they can be indexed and compared later.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")
# The contact details a draft holds (flows.intake's answers) while the resident fills in the intake.
DRAFT_CONTACT_KEYS = ("contact_phone", "contact_email")


class EncryptedText(TypeDecorator[str]):
    """Text encrypted at rest with the process's cipher (storage.crypto); plaintext from before
    encryption is read as it is. On SQLite a VARCHAR of ``sqlite_length``, which SQLite never enforces
    (the declared type of the first migration); TEXT elsewhere.

    Tokens differ at every write, so these columns cannot be compared or searched in SQL."""

    impl = Text
    cache_ok = True

    def __init__(self, sqlite_length: int) -> None:
        super().__init__()
        self.sqlite_length = sqlite_length

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return String(self.sqlite_length) if dialect.name == "sqlite" else Text()

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if not value or crypto.is_encrypted(value):  # nothing to hide, or encrypted already
            return value
        return crypto.cipher().encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else crypto.cipher().decrypt(value)


def map_draft_contacts(data: Any, convert: Any) -> Any:
    """``data`` (a conversation's JSON) with ``convert`` applied to the contact details of its draft's
    answers; the same object when it holds none, else a copy (the caller's dicts stay as they are)."""
    if not isinstance(data, dict):
        return data
    draft = data.get("draft")
    answers = draft.get("answers") if isinstance(draft, dict) else None
    if not isinstance(answers, dict):
        return data
    changed = {key: convert(answers[key]) for key in DRAFT_CONTACT_KEYS if isinstance(answers.get(key), str)}
    if not changed:
        return data
    return {**data, "draft": {**draft, "answers": {**answers, **changed}}}


def _encrypt_contact(value: str) -> str:
    return value if not value or crypto.is_encrypted(value) else crypto.cipher().encrypt(value)


class DraftDocument(TypeDecorator[dict[str, Any]]):
    """A conversation's JSON document (JSONB on PostgreSQL) whose draft's phone number and e-mail
    address are stored encrypted, like the initiative's (storage.crypto)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return JSONB() if dialect.name == "postgresql" else JSON()

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return map_draft_contacts(value, _encrypt_contact)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return map_draft_contacts(value, lambda stored: crypto.cipher().decrypt(stored))


# A 64-bit key that still autoincrements on SQLite, where only INTEGER PRIMARY KEY is a rowid alias.
BigIntegerKey = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base; its metadata names every constraint and index by NAMING_CONVENTION."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
        list[str]: JSONDocument,
    }


class Person(Base):
    """Someone who has written to the bot, with the language they want."""

    __tablename__ = "people"
    # The retention sweep's query for people the bot has not heard from in a long time.
    __table_args__ = (Index("ix_people_last_seen_at", "last_seen_at"),)

    telegram_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    first_name: Mapped[str | None] = mapped_column(String(255))
    telegram_language: Mapped[str | None] = mapped_column(String(16))
    # An explicit choice made with /taal; NULL means: follow telegram_language.
    language: Mapped[str | None] = mapped_column(String(8))
    # Set when Telegram says the user blocked the bot.
    unreachable_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class Conversation(Base):
    """Where one chat is in a flow, with the answers given so far."""

    __tablename__ = "conversations"
    __table_args__ = (
        # The retention sweep: drafts untouched for a long time, and reminded drafts whose time is up.
        Index("ix_conversations_updated_at", "updated_at"),
        Index(
            "ix_conversations_draft_reminded_at",
            "draft_reminded_at",
            sqlite_where=text("draft_reminded_at IS NOT NULL"),
            postgresql_where=text("draft_reminded_at IS NOT NULL"),
        ),
    )

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger)
    flow: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(48))
    # The draft's contact details are encrypted inside the document (DraftDocument).
    data: Mapped[dict[str, Any]] = mapped_column(DraftDocument())
    history: Mapped[list[str]]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer)
    # When the retention sweep reminded the resident of their untouched draft; cleared by any update.
    draft_reminded_at: Mapped[datetime | None]


class ReferenceCounter(Base):
    """SQLite: the last reference number handed out per municipality and year. PostgreSQL counts in a
    sequence per municipality and year; its row here says the sequence exists (``last_seq``: the number
    before it started).
    """

    __tablename__ = "reference_counters"

    municipality_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)


# The roles a staff member can have; kept in a CHECK constraint so a typo never becomes a role.
STAFF_ROLES_CHECK = "role IN ('broker', 'coordinator')"


class Staff(Base):
    """A broker or coordinator of the municipality; removed staff keep their row for the timeline."""

    __tablename__ = "staff"
    __table_args__ = (CheckConstraint(STAFF_ROLES_CHECK, name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    name: Mapped[str] = mapped_column(String(80))
    # "broker" or "coordinator".
    role: Mapped[str] = mapped_column(String(16))
    # Wijk codes and theme codes this person works on; an empty list means all of them.
    wijken: Mapped[list[str]]
    themes: Mapped[list[str]]
    # The last day of an absence (holiday, sick leave); NULL when present.
    absent_until: Mapped[date | None]
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]


class StaffInvite(Base):
    """A one-time code, sent as a Telegram deep link, that makes whoever redeems it a staff member."""

    __tablename__ = "staff_invites"
    __table_args__ = (CheckConstraint(STAFF_ROLES_CHECK, name="role"),)

    # Random and url-safe: Telegram deep-link payloads allow A-Z a-z 0-9 _ - and at most 64 characters.
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(80))
    wijken: Mapped[list[str]]
    themes: Mapped[list[str]]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_user_id: Mapped[int | None] = mapped_column(BigInteger)


class Initiative(Base):
    """A residents' initiative, from submission to realisation."""

    __tablename__ = "initiatives"
    __table_args__ = (
        UniqueConstraint("municipality_code", "year", "seq", name="uq_initiatives_municipality_year_seq"),
        Index("ix_initiatives_status_changed", "status", "status_changed_at"),
        Index("ix_initiatives_broker_status", "broker_id", "status"),
        # The watchdog's query: only initiatives whose next alert is due, in order, never the whole table.
        Index("ix_initiatives_next_alert_at", "next_alert_at", "id"),
        # The case list's period filter (submitted between two moments).
        Index("ix_initiatives_created_at", "created_at"),
        # The overview's counts read this index alone: per day of submission, with what they filter on.
        Index(
            "ix_initiatives_overview",
            "submitted_on",
            "status",
            "wijk_code",
            "theme_code",
            "broker_id",
            "first_contact_days",
            "first_contact_on",
        ),
        # Realised per quarter: the day a case reached its (final) status.
        Index("ix_initiatives_status_on", "status", "status_on"),
        # The retention sweep: ended cases, per status by the moment they ended, not yet anonymised.
        Index(
            "ix_initiatives_retention",
            "status",
            "status_changed_at",
            sqlite_where=text("anonymised_at IS NULL"),
            postgresql_where=text("anonymised_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    municipality_code: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    year: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    resident_user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    resident_chat_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text)
    theme_code: Mapped[str] = mapped_column(String(32))
    wijk_code: Mapped[str | None] = mapped_column(String(16))
    own_contribution: Mapped[str | None] = mapped_column(Text)
    needs: Mapped[list[str]]
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    # The top of a range ("800 à 1000 euro"); None for a single amount.
    amount_max_cents: Mapped[int | None] = mapped_column(BigInteger)
    neighbours: Mapped[int | None] = mapped_column(Integer)
    photo_file_id: Mapped[str | None] = mapped_column(String(255))
    # Voice notes a resident sent as the idea or as what they do themselves (Telegram file ids).
    idea_voice_file_id: Mapped[str | None] = mapped_column(String(255))
    own_voice_file_id: Mapped[str | None] = mapped_column(String(255))
    contact_name: Mapped[str] = mapped_column(String(60))
    # Encrypted at rest (storage.crypto): Fernet tokens, never the plain number or address. SQLite keeps
    # the VARCHAR widths of 0001: it never enforces them, and changing a declared type there means
    # copying the table, which would cascade to the timeline.
    contact_phone: Mapped[str | None] = mapped_column(EncryptedText(sqlite_length=32))
    contact_email: Mapped[str | None] = mapped_column(EncryptedText(sqlite_length=254))
    consent_at: Mapped[datetime]
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(32))
    status_changed_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The broker who has the case, since when, and when a broker last did something with it.
    broker_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    assigned_at: Mapped[datetime | None]
    last_broker_action_at: Mapped[datetime | None]
    # The department the case waits on while its status is bij_gemeente.
    department: Mapped[str | None] = mapped_column(String(64))
    # The resident's answer at intake to "may the municipality show your idea without your name?":
    # True lets open data show the description; False or NULL (not asked) show the title and theme only.
    publish_consent: Mapped[bool | None] = mapped_column(Boolean)
    # When the watchdog should look at the case again: the next step of its escalation ladder, or the
    # moment of a write that may have moved a clock ("recheck me"). NULL: no clock is running.
    next_alert_at: Mapped[datetime | None]
    # Amsterdam dates for the overview's figures (storage.reports), written with the moments they date:
    # the submission, the current status, and the first contact with the initiators (the first message
    # to them or in_gesprek, whichever came first).
    submitted_on: Mapped[date | None] = mapped_column(Date)
    status_on: Mapped[date | None] = mapped_column(Date)
    first_contact_at: Mapped[datetime | None]
    first_contact_on: Mapped[date | None] = mapped_column(Date)
    # Working days from submission to first contact, by the calendar in working_day_ordinals (NULL until
    # the calendar has both days; storage.reports.refresh_calendar fills it in then).
    first_contact_days: Mapped[int | None] = mapped_column(Integer)
    # The resident asked to be forgotten: no name, contact details or Telegram ids are left, and the
    # bot can no longer reach them (the case may go on without them).
    resident_erased_at: Mapped[datetime | None]
    # Nothing personal is left: the resident's texts, photo and contact are gone (on request, or by the
    # retention sweep once the case ended longer ago than the retention period).
    anonymised_at: Mapped[datetime | None]


class InitiativeEvent(Base):
    """One entry on an initiative's timeline: a status change, an assignment, a note, a message."""

    __tablename__ = "initiative_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    initiative_id: Mapped[int] = mapped_column(ForeignKey("initiatives.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(32))
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)
    # "resident", "broker", "coordinator" or "system".
    actor_role: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    department: Mapped[str | None] = mapped_column(String(64))
    # The staff member who acted, and the one a case was assigned or handed over to.
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    to_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    # False for internal entries (notes between staff) that the resident never sees.
    visible_to_resident: Mapped[bool] = mapped_column(Boolean, server_default=true())
    # A photo, voice note or document sent with a message ("photo", "voice", "document"): its Telegram
    # file id, and a document's file name.
    media_kind: Mapped[str | None] = mapped_column(String(16))
    media_file_id: Mapped[str | None] = mapped_column(String(255))
    media_name: Mapped[str | None] = mapped_column(String(255))
    # A voice note's length in seconds.
    media_seconds: Mapped[int | None] = mapped_column(Integer)


class StatusSpell(Base):
    """A finished stay of an initiative in one status (the current one is on the initiative's row), so the
    overview adds up waiting times without walking the timeline. Dates are Amsterdam dates."""

    __tablename__ = "status_spells"
    __table_args__ = (
        # Cover the overview's sums: per case (for a filtered overview), and over all cases.
        Index("ix_status_spells_initiative", "initiative_id", "status", "department", "working_days"),
        Index("ix_status_spells_waits", "status", "department", "working_days"),
        Index("ix_status_spells_period", "submitted_on", "status", "department", "working_days"),
    )

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=True)
    initiative_id: Mapped[int] = mapped_column(ForeignKey("initiatives.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date] = mapped_column(Date)
    # The case's day of submission (initiatives.submitted_on), so a period needs no join.
    submitted_on: Mapped[date | None] = mapped_column(Date)
    # Working days from started_on to ended_on, by the calendar in working_day_ordinals (NULL until the
    # calendar has both days; storage.reports.refresh_calendar fills it in then).
    working_days: Mapped[int | None] = mapped_column(Integer)


class WorkingDayOrdinal(Base):
    """A municipality's working-day calendar: per day, the working days counted up to it from the first
    day stored, so the working days between two dates are a subtraction (``flows.reports``)."""

    __tablename__ = "working_day_ordinals"

    municipality_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    ordinal: Mapped[int] = mapped_column(Integer)


class StallAlert(Base):
    """One step of the escalation ladder that happened; the unique key makes each step happen once."""

    __tablename__ = "stall_alerts"
    __table_args__ = (
        UniqueConstraint("initiative_id", "track", "clock_started_at", "level", name="uq_stall_alerts_step"),
    )

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=True)
    initiative_id: Mapped[int] = mapped_column(ForeignKey("initiatives.id", ondelete="CASCADE"))
    # "status" (time in the status) or "silence" (time since the broker last acted).
    track: Mapped[str] = mapped_column(String(16))
    # The moment the clock started: the status change, or the broker's last action.
    clock_started_at: Mapped[datetime]
    # 1 reminder, 2 escalation, 3 urgent escalation.
    level: Mapped[int] = mapped_column(Integer)
    # True for a step overtaken by a higher one in the same sweep: recorded, never sent.
    skipped: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]


class ProcessedUpdate(Base):
    """A Telegram update_id that has been handled, so a redelivery is skipped."""

    __tablename__ = "processed_updates"
    __table_args__ = (Index("ix_processed_updates_processed_at", "processed_at"),)

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime]


class OutboxMessage(Base):
    """A Bot API call queued in the update's transaction and sent after commit."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_not_before", "status", "not_before", "id"),
        # A resident's swipe-reply: which message of their chat they answered (``storage.resident_messages``).
        Index("ix_outbox_chat_message", "chat_id", "telegram_message_id"),
        # Each chat's queue: which messages wait for it, oldest first (see storage.outbox.backlogged).
        Index(
            "ix_outbox_pending_chat",
            "chat_id",
            "id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # The retention sweep: sent (or failed) messages whose payload is still there, oldest first.
        Index(
            "ix_outbox_payload_kept",
            "created_at",
            sqlite_where=text("status <> 'pending' AND payload_cleared_at IS NULL"),
            postgresql_where=text("status <> 'pending' AND payload_cleared_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, index=True)
    # sendMessage, sendPhoto, editMessageText, editMessageReplyMarkup or answerCallbackQuery.
    method: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    # "pending", "sent" or "failed".
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    not_before: Mapped[datetime]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # When the retention sweep emptied the payload (the row stays: what was sent when, to which chat).
    payload_cleared_at: Mapped[datetime | None]
    # The last message to a person who asked to be forgotten: once sent (or failed), its chat id and
    # payload are wiped and the chat's send gate is removed.
    forget_chat: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class CoordinatorDigest(Base):
    """A weekly digest a coordinator got; the key makes each week's digest go out once per coordinator."""

    __tablename__ = "coordinator_digests"

    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)
    week_start: Mapped[date] = mapped_column(Date, primary_key=True)
    sent_at: Mapped[datetime]


class SendGate(Base):
    """Telegram's send budget and who sends to a chat, shared by every process on the database.

    ``key`` is ``global`` (the whole bot) or ``chat:<id>``. ``tat`` is the budget's theoretical arrival
    time (GCRA, Unix seconds; a flood wait pushes it ahead). ``holder`` and ``held_until`` give one
    process at a time the right to send to a chat, so its messages keep their order across workers.
    """

    __tablename__ = "send_gates"
    # The retention sweep removes gates idle since long ago; tat is the last moment they were used for.
    __table_args__ = (Index("ix_send_gates_tat", "tat"),)

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    tat: Mapped[float] = mapped_column(Double, default=0.0, server_default=text("0"))
    holder: Mapped[str | None] = mapped_column(String(80))
    held_until: Mapped[float | None] = mapped_column(Double)


class DeploymentSecret(Base):
    """A secret one deployment shares across its workers and restarts, made on first start (the key
    that turns Telegram ids into log pseudonyms when LOG_PSEUDONYM_KEY is not set)."""

    __tablename__ = "deployment_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class StaffLoginLink(Base):
    """A one-time link, sent by the bot, that starts a staff member's web session; only its hash is kept."""

    __tablename__ = "staff_login_links"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class StaffWebSession(Base):
    """A staff member's session on the staff web; the cookie carries its id, the table only its hash."""

    __tablename__ = "staff_web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    # Every form of the session carries this token; a POST without it is refused.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # Set by log-out; an ended session is never valid again.
    ended_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who looked at contact details or exported cases, and when; never what they saw."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    # "view_contact", "export_csv", "export_xlsx", "export_council", "login", "logout".
    action: Mapped[str] = mapped_column(String(32))
    initiative_id: Mapped[int | None] = mapped_column(ForeignKey("initiatives.id", ondelete="SET NULL"))
    # A count or a filter, never the contents of what was seen.
    detail: Mapped[str | None] = mapped_column(String(255))


class DepartmentContact(Base):
    """A department contact added with ``initiatiefbot staff add --role department`` (the config's own
    contacts and manager are read from the municipality file). Department staff need no Telegram."""

    __tablename__ = "department_contacts"
    __table_args__ = (UniqueConstraint("department", "email", name="uq_department_contacts_address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    department: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]


class DepartmentQuestion(Base):
    """A broker's question to a department about one case, with the department's clock and its answer.

    ``state``: "open" (the department is to answer), "info" (the department asked the broker something),
    "answered" (ja, onder voorwaarden, nee), "forwarded" (not for them: another department got it) or
    "withdrawn" (the case left the department before an answer)."""

    __tablename__ = "department_questions"
    __table_args__ = (
        Index("ix_department_questions_initiative", "initiative_id", "id"),
        Index("ix_department_questions_next_alert_at", "next_alert_at", "id"),
        Index("ix_department_questions_department", "department", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    initiative_id: Mapped[int] = mapped_column(ForeignKey("initiatives.id", ondelete="CASCADE"))
    department: Mapped[str] = mapped_column(String(64))
    question: Mapped[str] = mapped_column(Text)
    asked_at: Mapped[datetime]
    asked_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    state: Mapped[str] = mapped_column(String(16))
    # When the department's clock last started: the question, or the broker's answer to theirs.
    clock_started_at: Mapped[datetime]
    # A decision date the department promised; once it passes it counts like the norm.
    promised_on: Mapped[date | None]
    # The watchdog looks at the question again from this moment (NULL: no clock runs).
    next_alert_at: Mapped[datetime | None]
    # The final answer: "ja", "voorwaarden" or "nee" (or "niet_voor_ons" when forwarded).
    answer_kind: Mapped[str | None] = mapped_column(String(16))
    answer_text: Mapped[str | None] = mapped_column(Text)
    # For a "nee": "regel" (a rule blocks it) or "mandaat" (a lack of mandate), else NULL.
    blocked_by: Mapped[str | None] = mapped_column(String(16))
    answered_at: Mapped[datetime | None]
    # Working days from the question to the final answer (or to forwarding): the dashboard's figures.
    answer_working_days: Mapped[int | None] = mapped_column(Integer)
    # Whether the final answer came within the norm (or the promised date).
    answered_within_norm: Mapped[bool | None] = mapped_column(Boolean)
    forwarded_to: Mapped[str | None] = mapped_column(String(64))
    # The question this one was forwarded from, if any.
    forwarded_from_id: Mapped[int | None] = mapped_column(ForeignKey("department_questions.id"))
    closed_at: Mapped[datetime | None]


class DepartmentMessage(Base):
    """One message in a question's thread: the department's answer of any kind, or the broker's reply to
    a request for information. Who wrote it is a name, never a Telegram id."""

    __tablename__ = "department_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    question_id: Mapped[int] = mapped_column(
        ForeignKey("department_questions.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    # "department" or "broker".
    author: Mapped[str] = mapped_column(String(16))
    author_name: Mapped[str] = mapped_column(String(80))
    author_email: Mapped[str | None] = mapped_column(String(254))
    # "ja", "voorwaarden", "nee", "informatie", "niet_voor_ons"; "antwoord" for the broker's reply.
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    blocked_by: Mapped[str | None] = mapped_column(String(16))
    promised_on: Mapped[date | None]
    forward_to: Mapped[str | None] = mapped_column(String(64))


class DepartmentLink(Base):
    """A contact's personal link to one case's answer page while the case is with their department.

    The token is an HMAC of the id and ``salt`` under a deployment secret: nothing stored in this table
    opens the page (the secret in ``deployment_secrets`` does), and the same link can be sent again."""

    __tablename__ = "department_links"
    __table_args__ = (Index("ix_department_links_case", "initiative_id", "department", "email"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    initiative_id: Mapped[int] = mapped_column(ForeignKey("initiatives.id", ondelete="CASCADE"))
    department: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str] = mapped_column(String(254))
    salt: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # "left_department" when the case moved on, "staff" when a broker or coordinator revoked it.
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    revoked_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))


class BlockerAction(Base):
    """What a coordinator did about a "nee" blocked by a rule or a lack of mandate (the blocker list)."""

    __tablename__ = "blocker_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    question_id: Mapped[int] = mapped_column(
        ForeignKey("department_questions.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    escalated_to: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str | None] = mapped_column(Text)
    # True when this action settled the blocker: it leaves the open list.
    resolved: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class MailMessage(Base):
    """An e-mail queued in the transaction that caused it and sent after commit (SMTP, or an .eml file).

    ``message_id`` is the Message-ID header, fixed when queued, so a resend after a crash is the same
    mail to the receiving server."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        Index("ix_mail_outbox_status_not_before", "status", "not_before", "id"),
        # A case's e-mails, scrubbed when its resident's data goes (storage.erasure).
        Index("ix_mail_outbox_initiative_id", "initiative_id"),
        # The retention sweep: sent (or failed) mail whose subject and body are still there.
        Index(
            "ix_mail_outbox_body_kept",
            "created_at",
            sqlite_where=text("status <> 'pending' AND body_cleared_at IS NULL"),
            postgresql_where=text("status <> 'pending' AND body_cleared_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntegerKey, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    to_address: Mapped[str] = mapped_column(String(254))
    to_name: Mapped[str | None] = mapped_column(String(80))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    # "question", "reply", "reminder", "escalation", "urgent", "forwarded": for logs and tests.
    kind: Mapped[str] = mapped_column(String(16))
    initiative_id: Mapped[int | None] = mapped_column(ForeignKey("initiatives.id", ondelete="SET NULL"))
    # "pending", "sent" or "failed".
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    not_before: Mapped[datetime]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # When the retention sweep emptied subject and body (the row stays: what was sent when, to whom).
    body_cleared_at: Mapped[datetime | None]
