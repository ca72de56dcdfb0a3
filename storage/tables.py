"""The Core table of each model, for the storage modules' statements."""

from __future__ import annotations

from sqlalchemy import Table

from storage.models import (
    AuditEntry,
    BlockerAction,
    Conversation,
    CoordinatorDigest,
    DepartmentContact,
    DepartmentLink,
    DepartmentMessage,
    DepartmentQuestion,
    Initiative,
    InitiativeEvent,
    MailMessage,
    OutboxMessage,
    Person,
    ProcessedUpdate,
    ReferenceCounter,
    SendGate,
    Staff,
    StaffInvite,
    StaffLoginLink,
    StaffWebSession,
    StallAlert,
    StatusSpell,
    WorkingDayOrdinal,
)

people: Table = Person.__table__  # type: ignore[assignment]
conversations: Table = Conversation.__table__  # type: ignore[assignment]
reference_counters: Table = ReferenceCounter.__table__  # type: ignore[assignment]
initiatives: Table = Initiative.__table__  # type: ignore[assignment]
initiative_events: Table = InitiativeEvent.__table__  # type: ignore[assignment]
status_spells: Table = StatusSpell.__table__  # type: ignore[assignment]
working_day_ordinals: Table = WorkingDayOrdinal.__table__  # type: ignore[assignment]
processed_updates: Table = ProcessedUpdate.__table__  # type: ignore[assignment]
outbox: Table = OutboxMessage.__table__  # type: ignore[assignment]
staff: Table = Staff.__table__  # type: ignore[assignment]
staff_invites: Table = StaffInvite.__table__  # type: ignore[assignment]
coordinator_digests: Table = CoordinatorDigest.__table__  # type: ignore[assignment]
stall_alerts: Table = StallAlert.__table__  # type: ignore[assignment]
send_gates: Table = SendGate.__table__  # type: ignore[assignment]
staff_login_links: Table = StaffLoginLink.__table__  # type: ignore[assignment]
staff_web_sessions: Table = StaffWebSession.__table__  # type: ignore[assignment]
audit_log: Table = AuditEntry.__table__  # type: ignore[assignment]
department_contacts: Table = DepartmentContact.__table__  # type: ignore[assignment]
department_questions: Table = DepartmentQuestion.__table__  # type: ignore[assignment]
department_messages: Table = DepartmentMessage.__table__  # type: ignore[assignment]
department_links: Table = DepartmentLink.__table__  # type: ignore[assignment]
blocker_actions: Table = BlockerAction.__table__  # type: ignore[assignment]
mail_outbox: Table = MailMessage.__table__  # type: ignore[assignment]
