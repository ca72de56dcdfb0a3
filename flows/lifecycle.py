"""The initiative's statuses, the transitions between them, and who may make each one.

``TRANSITIONS`` is the one table of allowed steps; ``check_transition`` adds who may take a step and
what it needs (a reason, a department and its question). Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from flows.text import Msg, t, verbatim
from flows.validators import clean_text


class Status(StrEnum):
    INGEDIEND = "ingediend"
    TOEGEWEZEN = "toegewezen"
    IN_GESPREK = "in_gesprek"
    PLAN_IN_UITWERKING = "plan_in_uitwerking"
    BIJ_GEMEENTE = "bij_gemeente"
    GOEDGEKEURD = "goedgekeurd"
    AFGEWEZEN = "afgewezen"
    IN_UITVOERING = "in_uitvoering"
    GEREALISEERD = "gerealiseerd"
    GESTOPT = "gestopt"


S = Status
TRANSITIONS: Mapping[Status, frozenset[Status]] = MappingProxyType(
    {
        S.INGEDIEND: frozenset({S.TOEGEWEZEN, S.GESTOPT}),
        S.TOEGEWEZEN: frozenset({S.IN_GESPREK, S.GESTOPT}),
        S.IN_GESPREK: frozenset(
            {S.PLAN_IN_UITWERKING, S.BIJ_GEMEENTE, S.GOEDGEKEURD, S.AFGEWEZEN, S.GESTOPT}
        ),
        S.PLAN_IN_UITWERKING: frozenset({S.BIJ_GEMEENTE, S.GOEDGEKEURD, S.IN_GESPREK, S.GESTOPT}),
        # Back to plan_in_uitwerking when the department asks for changes.
        S.BIJ_GEMEENTE: frozenset({S.GOEDGEKEURD, S.AFGEWEZEN, S.PLAN_IN_UITWERKING, S.GESTOPT}),
        S.GOEDGEKEURD: frozenset({S.IN_UITVOERING, S.PLAN_IN_UITWERKING, S.GESTOPT}),
        # A rejected idea may be tried another way, so afgewezen is not final.
        S.AFGEWEZEN: frozenset({S.PLAN_IN_UITWERKING, S.GESTOPT}),
        S.IN_UITVOERING: frozenset({S.GEREALISEERD, S.GESTOPT}),
        S.GEREALISEERD: frozenset(),
        S.GESTOPT: frozenset(),
    }
)
del S

FINAL: frozenset[Status] = frozenset(status for status, targets in TRANSITIONS.items() if not targets)
# "Open" means someone is expected to act, so it counts for a broker's load. afgewezen is not open:
# nobody has to act on it (it has no norm either); when it is retried it becomes plan_in_uitwerking again.
OPEN_STATUSES: frozenset[Status] = frozenset(Status) - FINAL - {Status.AFGEWEZEN}

# Reached only by assigning a broker (routing or a coordinator), never chosen from a status menu.
ASSIGNMENT_STATUS = Status.TOEGEWEZEN
_NEEDS_REASON = frozenset({Status.AFGEWEZEN, Status.GESTOPT})
_NEEDS_DEPARTMENT = frozenset({Status.BIJ_GEMEENTE})


class Role(StrEnum):
    RESIDENT = "resident"
    BROKER = "broker"
    COORDINATOR = "coordinator"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who asks for a status change, and how they relate to this initiative."""

    role: Role
    is_assigned_broker: bool = False
    is_initiator: bool = False


@dataclass(frozen=True)
class Allowed:
    """The transition may happen, with ``note`` and ``department`` cleaned (None when empty or unused)."""

    target: Status
    note: str | None = None
    department: str | None = None


@dataclass(frozen=True)
class Refused:
    """The transition may not happen: ``reason`` for the person, ``code`` for the program."""

    reason: Msg
    code: str


def _parse(status: str) -> Status | None:
    try:
        return Status(status)
    except ValueError:
        return None


# Built once: the watchdog's cards and the overviews ask for a label per case.
_STATUS_LABELS: Mapping[Status, Msg] = MappingProxyType(
    {
        Status.INGEDIEND: t("submitted"),
        Status.TOEGEWEZEN: t("an initiatiefmakelaar is assigned"),
        Status.IN_GESPREK: t("in conversation with your initiatiefmakelaar"),
        Status.PLAN_IN_UITWERKING: t("working out the plan"),
        Status.BIJ_GEMEENTE: t("with the municipality"),
        Status.GOEDGEKEURD: t("approved"),
        Status.AFGEWEZEN: t("not approved"),
        Status.IN_UITVOERING: t("being carried out"),
        Status.GEREALISEERD: t("done"),
        Status.GESTOPT: t("stopped"),
    }
)
_STAFF_LABELS: Mapping[Status, Msg] = MappingProxyType(
    {
        Status.INGEDIEND: t("Submitted"),
        Status.TOEGEWEZEN: t("Assigned"),
        Status.IN_GESPREK: t("In conversation"),
        Status.PLAN_IN_UITWERKING: t("Working out the plan"),
        Status.BIJ_GEMEENTE: t("With the municipality"),
        Status.GOEDGEKEURD: t("Approved"),
        Status.AFGEWEZEN: t("Rejected"),
        Status.IN_UITVOERING: t("Being carried out"),
        Status.GEREALISEERD: t("Done"),
        Status.GESTOPT: t("Stopped"),
    }
)


def status_label(status: str) -> Msg:
    """What a status means, in words a resident understands."""
    parsed = _parse(status)
    return _STATUS_LABELS[parsed] if parsed is not None else verbatim(status)


def staff_label(status: str) -> Msg:
    """The short name of a status as staff use it in menus and overviews."""
    parsed = _parse(status)
    return _STAFF_LABELS[parsed] if parsed is not None else verbatim(status)


def is_final(status: str) -> bool:
    """True for a status nothing can follow (gerealiseerd, gestopt); False for unknown codes."""
    return _parse(status) in FINAL


def needs_reason(target: str) -> bool:
    """True when moving to ``target`` needs a reason (afgewezen, gestopt)."""
    return _parse(target) in _NEEDS_REASON


def needs_department(target: str) -> bool:
    """True when moving to ``target`` needs a department code and the question put to it (bij_gemeente)."""
    return _parse(target) in _NEEDS_DEPARTMENT


def _label(status: Status, actor: Actor) -> Msg:
    return status_label(status) if actor.role is Role.RESIDENT else staff_label(status)


def _permission(current: Status, target: Status, actor: Actor) -> Refused | None:
    """Whether ``actor`` may take the step ``current -> target``, which the table allows."""
    if target is ASSIGNMENT_STATUS:
        if actor.role in (Role.SYSTEM, Role.COORDINATOR):
            return None
        return Refused(
            t(
                "An initiative gets the status {status} when a coordinator assigns an initiatiefmakelaar.",
                status=_label(target, actor),
            ),
            "not_your_role",
        )
    match actor.role:
        case Role.COORDINATOR:
            return None
        case Role.BROKER if actor.is_assigned_broker:
            return None
        case Role.BROKER:
            return Refused(
                t("Only its initiatiefmakelaar or a coordinator can change the status of this initiative."),
                "not_your_case",
            )
        case Role.RESIDENT if not actor.is_initiator:
            return Refused(t("Only the initiators can withdraw this initiative."), "not_your_case")
        case Role.RESIDENT if target is Status.GESTOPT:
            return None
        case Role.RESIDENT:
            return Refused(
                t("You can stop your initiative. Your initiatiefmakelaar changes its other statuses."),
                "not_your_role",
            )
    return Refused(t("Only an initiatiefmakelaar or a coordinator can make this change."), "not_your_role")


def _step(current: Status, target: Status, actor: Actor) -> Refused | None:
    """Refuse a step that is not in the table or not for this actor; None when it may be taken."""
    if current in FINAL:
        return Refused(
            t(
                "This initiative is closed ({status}). Its status cannot change any more.",
                status=_label(current, actor),
            ),
            "final",
        )
    if current is target:
        return Refused(
            t("The initiative already has the status {status}.", status=_label(current, actor)), "unchanged"
        )
    if target not in TRANSITIONS[current]:
        return Refused(
            t(
                "An initiative cannot go from {current} to {target}.",
                current=_label(current, actor),
                target=_label(target, actor),
            ),
            "not_allowed",
        )
    return _permission(current, target, actor)


def _unknown_status(raw: str) -> Refused:
    return Refused(t("I don't know the status {status}.", status=verbatim(raw)), "unknown_status")


def check_transition(
    current: str,
    target: str,
    actor: Actor,
    *,
    note: str | None = None,
    department: str | None = None,
    departments: Collection[str] | None = None,
) -> Allowed | Refused:
    """Whether ``actor`` may move an initiative from ``current`` to ``target``; never raises.

    ``note`` is the reason (afgewezen, gestopt) or the question (bij_gemeente), else an optional comment.
    ``department`` is only used for bij_gemeente; when ``departments`` is given it must be one of them.
    """
    current_status, target_status = _parse(current), _parse(target)
    if current_status is None:
        return _unknown_status(current)
    if target_status is None:
        return _unknown_status(target)

    refused = _step(current_status, target_status, actor)
    if refused is not None:
        return refused

    clean_note = clean_text(note, keep_newlines=True) if note is not None else ""
    clean_department = clean_text(department, keep_newlines=False) if department is not None else ""
    if target_status in _NEEDS_REASON and not clean_note:
        return Refused(
            t("Give a short reason for the status {status}.", status=_label(target_status, actor)),
            "needs_reason",
        )
    if target_status in _NEEDS_DEPARTMENT:
        if not clean_department:
            return Refused(t("Choose the department the question is for."), "needs_department")
        if departments is not None and clean_department not in departments:
            return Refused(
                t("I don't know the department {department}.", department=verbatim(clean_department)),
                "unknown_department",
            )
        if not clean_note:
            return Refused(t("Write down the question for the department."), "needs_question")
    else:
        clean_department = ""
    return Allowed(target_status, note=clean_note or None, department=clean_department or None)


def _menu_order(current: Status, target: Status) -> tuple[int, int, int]:
    """Forward steps first, then steps back, then stopping; each in lifecycle order."""
    order = list(Status)
    return (target is Status.GESTOPT, order.index(target) < order.index(current), order.index(target))


def next_statuses(current: str, actor: Actor) -> tuple[Status, ...]:
    """The statuses to offer ``actor`` in a status menu; never toegewezen, which comes with assigning."""
    current_status = _parse(current)
    if current_status is None:
        return ()
    offered = [
        target
        for target in TRANSITIONS[current_status]
        if target is not ASSIGNMENT_STATUS and _step(current_status, target, actor) is None
    ]
    return tuple(sorted(offered, key=lambda target: _menu_order(current_status, target)))


def mermaid() -> str:
    """Draw the lifecycle table as a Mermaid state diagram, noting what each kind of step needs."""
    lines = ["stateDiagram-v2", f"    [*] --> {Status.INGEDIEND}"]
    for current in Status:
        for target in sorted(TRANSITIONS[current], key=lambda target: _menu_order(current, target)):
            if target is ASSIGNMENT_STATUS:
                suffix = " : assignment"
            elif target in _NEEDS_REASON:
                suffix = " : reason"
            elif target in _NEEDS_DEPARTMENT:
                suffix = " : department and question"
            else:
                suffix = ""
            lines.append(f"    {current} --> {target}{suffix}")
    lines.extend(f"    {status} --> [*]" for status in Status if status in FINAL)
    return "\n".join(lines) + "\n"
