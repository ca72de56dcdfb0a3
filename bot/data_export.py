"""A resident's right of access in the chat (/mijngegevens, AVG art. 15): a short summary in plain words,
then everything stored about them as a JSON file. Nothing of anyone else goes in: no staff notes, no
staff Telegram ids, no department threads, no other residents.

The file's keys are English (as the code's names), its texts are in the resident's language, moments are
ISO 8601 in UTC. Each category says why it is kept and for how long (``flows.privacy``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Translator
from flows import lifecycle
from flows.broker import event_text
from flows.cases import TimelineItem
from flows.engine import FlowState
from flows.events import Document, Reply
from flows.intake import NEEDS
from flows.municipality import Municipality
from flows.privacy import Retention, access_document_caption, access_summary, export_categories
from flows.text import Msg, t
from storage import audit
from storage.data_export import StoredData, StoredInitiative, stored_data
from storage.initiatives import TimelineEntry

# The version of the file's layout, so a reader can tell an older copy apart.
FORMAT = "initiatiefbot-export/1"
MESSAGE_KINDS = {"message_to_resident": "to_you", "message_from_resident": "from_you"}
Render = Callable[[Msg], str]  # a message in the resident's language


def retention_of(municipality: Municipality) -> Retention:
    """The municipality's retention periods."""
    return municipality.retention


async def export_replies(
    session: AsyncSession,
    *,
    user_id: int,
    draft: FlowState | None,
    draft_changed_at: datetime | None,
    municipality: Municipality,
    translator: Translator,
    language: str,
    now: datetime,
    via: str = "chat",
) -> tuple[Reply, Reply]:
    """The summary and the file for the resident ``user_id`` (``draft``: their unfinished idea, as the
    update has it); records the export in the audit log, without contents."""
    data = await stored_data(session, user_id)
    retention = retention_of(municipality)
    copy = export_document(
        data,
        draft=draft,
        draft_changed_at=draft_changed_at,
        municipality=municipality,
        retention=retention,
        render=lambda msg: translator.render(msg, language),
        language=language,
        now=now,
    )
    cases = len(data.initiatives)
    await audit.record(
        session,
        staff_id=None,
        action="data_export",
        detail=f"{1 if data.person else 0} person, {cases} case{'' if cases == 1 else 's'}, via {via}",
        now=now,
    )
    content = json.dumps(copy, ensure_ascii=False, indent=2)
    document = Document(f"mijngegevens-{now.date().isoformat()}.json", content + "\n")
    return (
        access_summary(municipality.name, retention),
        Reply(access_document_caption(), document=document),
    )


def export_document(
    data: StoredData,
    *,
    draft: FlowState | None,
    draft_changed_at: datetime | None,
    municipality: Municipality,
    retention: Retention,
    render: Render,
    language: str,
    now: datetime,
) -> dict[str, Any]:
    """The resident's data as plain JSON values (``render`` turns a ``Msg`` into their language)."""
    person = data.person
    initiatives = [_initiative(item, municipality, render, language) for item in data.initiatives]
    return {
        "format": FORMAT,
        "generated_at": _iso(now),
        "municipality": {
            "code": municipality.code,
            "name": municipality.name,
            "privacy_contact": municipality.privacy_contact or None,
        },
        "language": language,
        "categories": {
            c.key: {"purpose": render(c.purpose), "retention": render(c.retention)}
            for c in export_categories(retention)
        },
        "profile": None
        if person is None
        else {
            "telegram_user_id": person.telegram_user_id,
            "chat_id": person.chat_id,
            "first_name": person.first_name,
            "telegram_language": person.telegram_language,
            "chosen_language": person.language,
            "first_seen_at": _iso(person.created_at),
            "last_seen_at": _iso(person.last_seen_at),
            "unreachable_since": _iso(person.unreachable_at),
        },
        "draft": None
        if draft is None
        else {
            "step": draft.step,
            "answers": dict(draft.answers),
            "last_changed_at": _iso(draft_changed_at),
        },
        "initiatives": initiatives,
        "messages": [
            message
            for item in data.initiatives
            for entry in item.timeline
            if (message := _message(item.case.reference, entry)) is not None
        ],
        "consents": [
            {
                "reference": item.case.reference,
                "privacy_consent_at": _iso(item.case.consent_at),
                "publish_without_name": item.case.publish_consent,
            }
            for item in data.initiatives
        ],
    }


def _initiative(item: StoredInitiative, m: Municipality, render: Render, language: str) -> dict[str, Any]:
    case = item.case
    theme = m.theme(case.theme_code)
    wijk = m.wijk(case.wijk_code) if case.wijk_code else None
    department = m.department(case.department) if case.department else None
    needs = {option.code: option.label for option in NEEDS}
    return {
        "reference": case.reference,
        "title": case.title,
        "description": case.description,
        "theme": {"code": case.theme_code, "name": theme.label(language) if theme else None},
        "wijk": None
        if case.wijk_code is None
        else {"code": case.wijk_code, "name": wijk.name if wijk else None},
        "own_contribution": case.own_contribution,
        "needs": [
            {"code": code, "label": render(needs[code]) if code in needs else None}
            for code in case.needs or ()
        ],
        "amount_cents": case.amount_cents,
        "neighbours": case.neighbours,
        "photo_telegram_file_id": case.photo_file_id,
        "contact": {"name": case.contact_name, "phone": case.contact_phone, "email": case.contact_email},
        "language": case.language,
        "consent_at": _iso(case.consent_at),
        "publish_consent": case.publish_consent,
        "status": case.status,
        "status_label": render(lifecycle.status_label(case.status)),
        "status_changed_at": _iso(case.status_changed_at),
        "department": None
        if case.department is None
        else (department.name if department else case.department),
        "submitted_at": _iso(case.created_at),
        "resident_erased_at": _iso(case.resident_erased_at),
        "anonymised_at": _iso(case.anonymised_at),
        "timeline": [_timeline_entry(entry, m, render) for entry in item.timeline],
    }


def _timeline_entry(entry: TimelineEntry, m: Municipality, render: Render) -> dict[str, Any]:
    """One entry as "Timeline" shows it to the resident: when, who, and what."""
    department = m.department(entry.department) if entry.department else None
    staff_name = entry.staff_name if entry.kind == "status" else entry.staff_name or entry.to_staff_name
    item = TimelineItem(
        entry.at,
        entry.kind,
        entry.status,
        staff_name,
        entry.actor_role,
        entry.note,
        department.name if department else entry.department,
        media_kind=entry.media_kind,
        media_name=entry.media_name,
        media_seconds=entry.media_seconds,
    )
    return {
        "at": _iso(entry.at),
        "kind": entry.kind,
        "status": entry.status,
        "who": staff_name or render(_role(entry.actor_role)),
        "text": render(event_text(item, True)).strip(),
    }


def _role(role: str) -> Msg:
    """Who did something, when no staff member's name goes with it (as the resident's timeline says)."""
    if role == "resident":
        return t("you")
    if role == "system":
        return t("the bot")
    return t("the municipality")


def _message(reference: str, entry: TimelineEntry) -> dict[str, Any] | None:
    direction = MESSAGE_KINDS.get(entry.kind)
    if direction is None:
        return None
    return {
        "reference": reference,
        "at": _iso(entry.at),
        "direction": direction,
        "initiatiefmakelaar": entry.staff_name,
        "text": entry.note,
        # The photo, voice note or document sent with it: Telegram keeps the file, the bot its id.
        "attachment": None
        if entry.media_kind is None
        else {
            "kind": entry.media_kind,
            "telegram_file_id": entry.media_file_id,
            "file_name": entry.media_name,
            "seconds": entry.media_seconds,
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
