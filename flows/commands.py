"""Side effects a flow asks for; the dispatcher carries them out inside the update's transaction."""

from __future__ import annotations

from dataclasses import dataclass

from flows.intake import InitiativeDraft
from flows.resident_messages import Attachment


@dataclass(frozen=True)
class SubmitInitiative:
    draft: InitiativeDraft


@dataclass(frozen=True)
class ShowMyInitiatives:
    pass


@dataclass(frozen=True)
class ExportMyData:
    """Send the resident everything stored about them (/mijngegevens, AVG art. 15)."""


@dataclass(frozen=True)
class SetLanguage:
    language: str


@dataclass(frozen=True)
class RedeemInvite:
    """Bind the sender to a staff role with a one-time invite code (from a deep link)."""

    code: str


@dataclass(frozen=True)
class SyncStaffMenu:
    """Set Telegram's command menu in the sender's chat to their staff commands (through the outbox)."""


@dataclass(frozen=True)
class ListCases:
    """A broker's open cases, most urgent first."""


@dataclass(frozen=True)
class ShowBrokers:
    """Brokers to choose from: ``purpose`` "as" (coordinator assigns) or "ho" (broker hands over)."""

    reference: str
    purpose: str


@dataclass(frozen=True)
class ShowTimeline:
    """One page of a case's timeline: ``offset`` newer entries were on the pages before."""

    reference: str
    for_resident: bool
    offset: int = 0


@dataclass(frozen=True)
class ChangeStatus:
    """An allowed status change (already checked against the locked case)."""

    reference: str
    target: str
    note: str | None
    department: str | None
    by_resident: bool = False


@dataclass(frozen=True)
class MessageResident:
    reference: str
    text: str


@dataclass(frozen=True)
class MessageBroker:
    """A resident's message to the broker of their case (the coordinators when it has none), with the
    photo, voice note or document that came with it."""

    reference: str
    text: str
    attachment: Attachment | None = None


@dataclass(frozen=True)
class AddNote:
    reference: str
    text: str


@dataclass(frozen=True)
class Handover:
    reference: str
    to_staff_id: int
    note: str | None


@dataclass(frozen=True)
class CoordinatorReport:
    """One of the coordinators' pictures: "overzicht", "vastgelopen", "onverdeeld" or "makelaars"."""

    kind: str


@dataclass(frozen=True)
class RemindBroker:
    reference: str


@dataclass(frozen=True)
class OpenDashboard:
    """A one-time link to the staff web for the staff member who asked."""


@dataclass(frozen=True)
class Assign:
    reference: str
    to_staff_id: int


@dataclass(frozen=True)
class AskDepartment:
    """Put a new question to the department the case waits on (the case stays bij_gemeente)."""

    reference: str
    question: str


@dataclass(frozen=True)
class ReplyToDepartment:
    """The broker's answer to a department's request for information."""

    reference: str
    text: str


@dataclass(frozen=True)
class PassOnConditions:
    """Back to the plan, with the department's conditions passed on to the initiator."""

    reference: str


@dataclass(frozen=True)
class RecordContactView:
    """A staff member opened a case card that shows the initiator's phone or e-mail (the audit log)."""

    reference: str


@dataclass(frozen=True)
class ExplainErasure:
    """Tell the resident what /vergeetmij erases and ask them to choose (it depends on their cases)."""


@dataclass(frozen=True)
class ErasePerson:
    """Forget the resident: ``stop_open`` stops their open initiatives, else those go on without them;
    ``open_seen`` is how many open initiatives the question they answered was about."""

    stop_open: bool
    open_seen: int


Command = (
    SubmitInitiative
    | ShowMyInitiatives
    | ExportMyData
    | SetLanguage
    | RedeemInvite
    | ListCases
    | ShowBrokers
    | ShowTimeline
    | ChangeStatus
    | MessageResident
    | MessageBroker
    | AddNote
    | Handover
    | Assign
    | CoordinatorReport
    | RemindBroker
    | OpenDashboard
    | AskDepartment
    | ReplyToDepartment
    | PassOnConditions
    | RecordContactView
    | ExplainErasure
    | ErasePerson
)
