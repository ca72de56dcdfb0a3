"""Plain views of initiatives and staff as the flows see them, and the callback data that points at a case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from flows.events import Event, EventKind, Reply
from flows.text import Msg

# Callback data: "c:<reference>:<action>[:<argument>]" for staff, "r:<reference>:<action>" for residents.
STAFF_PREFIX, RESIDENT_PREFIX = "c", "r"
COORDINATOR_COMMANDS = frozenset({"overzicht", "vastgelopen", "onverdeeld", "makelaars"})
STAFF_COMMANDS = frozenset({"zaken", "zaak", "toewijzen", "dashboard"}) | COORDINATOR_COMMANDS


class StaffRole(StrEnum):
    BROKER = "broker"
    COORDINATOR = "coordinator"


class HandBack(StrEnum):
    """Why a broker's open cases went back to the coordinators (the note on the internal timeline)."""

    REMOVED = "removed"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class StaffView:
    """A staff member; empty ``wijken`` or ``themes`` mean all of them.

    ``coordinated_wijken`` (coordinators with wijken only) holds every wijk some coordinator has; None
    when that is unknown or a coordinator covers the whole municipality.
    """

    id: int
    telegram_user_id: int
    name: str
    role: StaffRole
    wijken: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    absent_until: date | None = None
    coordinated_wijken: frozenset[str] | None = None

    @property
    def is_coordinator(self) -> bool:
        return self.role is StaffRole.COORDINATOR

    def covers(self, wijk_code: str | None) -> bool:
        """Whether this coordinator acts on cases in ``wijk_code``: one of their wijken, any without wijken.

        A case without a wijk, or in a wijk no coordinator has, is every coordinator's (as its alerts are).
        """
        if not self.is_coordinator:
            return False
        if not self.wijken or wijk_code is None or wijk_code in self.wijken:
            return True
        return self.coordinated_wijken is not None and wijk_code not in self.coordinated_wijken


@dataclass(frozen=True, slots=True)
class QuestionFacts:
    """What the department's clock needs to know of a question (``flows.department``)."""

    id: int
    department: str
    state: str
    clock_started_at: datetime
    promised_on: date | None = None

    @classmethod
    def of(cls, row: object) -> QuestionFacts:
        """The facts of any question row with these field names."""
        return cls(
            row.id,  # type: ignore[attr-defined]
            row.department,  # type: ignore[attr-defined]
            row.state,  # type: ignore[attr-defined]
            row.clock_started_at,  # type: ignore[attr-defined]
            row.promised_on,  # type: ignore[attr-defined]
        )


@dataclass(frozen=True)
class CaseView:
    """One initiative with what staff and the resident need to see of it."""

    id: int
    reference: str
    title: str
    description: str
    theme_code: str
    wijk_code: str | None
    own_contribution: str | None
    needs: tuple[str, ...]
    amount_cents: int | None
    neighbours: int | None
    photo_file_id: str | None
    contact_name: str
    contact_phone: str | None
    contact_email: str | None
    status: str
    status_changed_at: datetime
    created_at: datetime
    resident_user_id: int
    resident_chat_id: int
    broker_id: int | None = None
    broker_name: str | None = None
    broker_telegram_id: int | None = None
    department: str | None = None
    resident_unreachable: bool = False
    # While bij_gemeente: the department's current question (its clock), if the case has one.
    question: QuestionFacts | None = None
    # The language the initiator uses, named for staff (e.g. "Arabisch (العربية)"); None if unknown.
    resident_language: Msg | None = None
    amount_max_cents: int | None = None  # the top of an amount range
    # Voice notes the initiator sent as the idea, or as what they do themselves.
    idea_voice_file_id: str | None = None
    own_voice_file_id: str | None = None


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # status, assigned, handover, note, message_to_resident, message_from_resident
    status: str | None = None
    staff_name: str | None = None
    actor_role: str = "system"
    note: str | None = None
    department: str | None = None
    to_name: str | None = None  # assigned, handover: the initiatiefmakelaar who got the case
    internal: bool = False  # never shown to the initiator (the staff web marks it)
    # A photo, voice note or document that came with a message (``flows.resident_messages``).
    media_kind: str | None = None
    media_name: str | None = None
    media_seconds: int | None = None


@dataclass(frozen=True)
class BrokerOption:
    """A broker to choose when assigning or handing over."""

    staff_id: int
    name: str
    open_cases: int
    absent_until: date | None = None


@dataclass(frozen=True)
class Pending:
    """Free text the bot waits for: a note, a message, a reason — for one case."""

    action: str
    reference: str
    status: str | None = None
    department: str | None = None
    to_staff_id: int | None = None

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_json(cls, data: object) -> Pending | None:
        if not isinstance(data, dict) or "action" not in data or "reference" not in data:
            return None
        return cls(
            action=str(data["action"]),
            reference=str(data["reference"]),
            status=data.get("status"),
            department=data.get("department"),
            to_staff_id=data.get("to_staff_id"),
        )


@dataclass(frozen=True)
class Notification:
    """A message for someone else than the person who acted (rendered in their language)."""

    user_id: int
    chat_id: int
    reply: Reply


def case_button(prefix: str, reference: str, action: str, argument: str = "") -> str:
    data = f"{prefix}:{reference}:{action}" + (f":{argument}" if argument else "")
    if len(data.encode()) > 64:
        raise ValueError(f"callback data too long: {data!r}")
    return data


def parse_case_button(data: str) -> tuple[str, str, str, str] | None:
    """(prefix, reference, action, argument) of case callback data, or None for anything else."""
    parts = data.split(":", 3)
    if len(parts) < 3 or parts[0] not in (STAFF_PREFIX, RESIDENT_PREFIX) or not parts[1] or not parts[2]:
        return None
    return parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else ""


def page_offset(argument: str) -> int:
    """The offset a paging button carries (0 for anything else)."""
    return int(argument) if argument.isdigit() and len(argument) < 7 else 0


def referenced_case(event: Event, pending: Pending | None) -> str | None:
    """The reference an event is about, so the dispatcher can load (and lock) that case first."""
    if event.kind is EventKind.BUTTON:
        parsed = parse_case_button(event.button or "")
        return parsed[1].upper() if parsed else None
    if event.kind is EventKind.COMMAND and event.command in ("zaak", "toewijzen"):
        return event.command_args.split()[0].upper() if event.command_args.split() else None
    if event.kind is EventKind.TEXT and pending is not None:
        return pending.reference
    return None
