"""storage.erasure: what a case keeps once its resident's data goes, on SQLite and PostgreSQL; and the
traces it scrubs out of what staff wrote."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from flows.privacy import ERASED_TEXT, Traces
from storage import departments as departments_store
from storage import erasure
from storage import initiatives as initiatives_store
from storage import mail_outbox as mail_store
from storage import outbox as outbox_store
from storage.db import session_factory
from tests.factories import new_initiative

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
NAME, PHONE, EMAIL = "Fatima el Amrani", "0612345678", "fatima@voorbeeld.nl"
TITLE = "Bankjes bij de speeltuin"


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("Bel Fatima el Amrani op 06-12 34 56 78.", f"Bel {ERASED_TEXT} op {ERASED_TEXT}."),
        ("Of +31 6 12345678, of 0031612345678.", f"Of {ERASED_TEXT}, of {ERASED_TEXT}."),
        ("Mail FATIMA@voorbeeld.nl", f"Mail {ERASED_TEXT}"),
        # A name is a whole word: "Fatima el Amranis" is someone else's; short traces are left alone.
        ("Fatima el Amranis fiets, 06 uur, el", "Fatima el Amranis fiets, 06 uur, el"),
        ("2026: 1250 euro voor 12 bankjes", "2026: 1250 euro voor 12 bankjes"),
    ],
)
def test_traces_are_scrubbed_however_they_are_written(written: str, kept: str) -> None:
    traces = Traces.of([NAME, PHONE, EMAIL, "el", None, ""])
    assert traces.scrub(written) == kept


async def _case_with_everything(engine: AsyncEngine) -> int:
    """A case with the resident's words, staff notes quoting them, a department thread, an e-mail and
    Telegram messages that name them."""
    async with session_factory(engine)() as session, session.begin():
        case = await initiatives_store.create_initiative(
            session,
            new_initiative(
                contact_name=NAME,
                contact_phone=PHONE,
                contact_email=EMAIL,
                photo_file_id="PHOTO-1",
                description="Twee bankjes; Fatima zet ze neer.",
                publish_consent=True,
            ),
            NOW,
        )
        add = initiatives_store.add_event
        await add(
            session,
            case.id,
            kind="message_from_resident",
            now=NOW,
            actor_role="resident",
            actor_user_id=1001,
            note="Mijn zus helpt ook",
        )
        await add(
            session,
            case.id,
            kind="message_to_resident",
            now=NOW,
            actor_role="broker",
            note="Dag Fatima el Amrani!",
        )
        await add(
            session, case.id, kind="note", now=NOW, actor_role="broker", note=f"Gebeld met {NAME} ({PHONE})."
        )
        await add(
            session, case.id, kind="note", now=NOW, actor_role="broker", note="Mevrouw Amrani wil ze groen."
        )
        # A voice note and a drawing she sent her broker: Telegram keeps the files, the bot their ids.
        for media in (
            initiatives_store.MediaFields("voice", "VOICE-FILE-1", seconds=9),
            initiatives_store.MediaFields("document", "DOC-FILE-1", name="Tuin van Fatima.pdf"),
        ):
            await add(
                session,
                case.id,
                kind="message_from_resident",
                now=NOW,
                actor_role="resident",
                actor_user_id=1001,
                media=media,
            )
        question = await departments_store.ask(
            session,
            initiative_id=case.id,
            department="verkeer",
            question=f"Mag {TITLE} hier?",
            staff_id=None,
            now=NOW,
        )
        await departments_store.add_message(
            session,
            question.id,
            author="department",
            author_name="Karin",
            kind="informatie",
            text=f"Wat wil {NAME} precies?",
            now=NOW,
        )
        await mail_store.enqueue(
            session,
            [
                mail_store.NewMail(
                    "verkeer@zutphen.example",
                    "Verkeer",
                    f"Vraag over {TITLE}",
                    f"{TITLE}: {case.description}",
                    "question",
                    case.id,
                )
            ],
            now=NOW,
            domain="zutphen.example",
        )
        await outbox_store.enqueue(
            session,
            chat_id=5301,
            method="sendMessage",
            payload={"chat_id": 5301, "text": f"Nieuw: {TITLE} van {NAME}, {PHONE}"},
            now=NOW,
        )
        await outbox_store.enqueue(
            session,
            chat_id=5301,
            method="sendVoice",
            payload={"chat_id": 5301, "voice": "VOICE-FILE-1", "caption": "Bericht van Fatima"},
            now=NOW,
        )
        await outbox_store.enqueue(
            session,
            chat_id=5302,
            method="sendMessage",
            payload={"chat_id": 5302, "text": "Iets anders"},
            now=NOW,
        )
        return case.id


async def _one(engine: AsyncEngine, sql: str) -> list[tuple[object, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(text(sql))]


async def test_anonymising_on_request_keeps_the_archive_and_nothing_personal(engine: AsyncEngine) -> None:
    case_id = await _case_with_everything(engine)
    async with session_factory(engine)() as session, session.begin():
        assert await erasure.anonymise_initiatives(session, [case_id], now=NOW, reason="request") == 1
    async with session_factory(engine)() as session, session.begin():
        # Idempotent: a second run finds nothing left to do and adds no second note.
        assert await erasure.anonymise_initiatives(session, [case_id], now=NOW, reason="request") == 0

    assert await _one(
        engine,
        "select title, description, contact_name, contact_phone, contact_email, photo_file_id, "
        "resident_user_id, resident_chat_id, theme_code, wijk_code, amount_cents from initiatives",
    ) == [(ERASED_TEXT, ERASED_TEXT, "", None, None, None, 0, 0, "groen", "WK036301", 45_000)]
    assert await _one(engine, "select kind, actor_user_id, note from initiative_events order by id") == [
        ("status", None, None),
        ("message_from_resident", None, None),
        ("message_to_resident", None, None),
        ("note", None, f"Gebeld met {ERASED_TEXT} ({ERASED_TEXT})."),
        ("note", None, f"Mevrouw {ERASED_TEXT} wil ze groen."),
        ("message_from_resident", None, None),
        ("message_from_resident", None, None),
        ("note", None, "Gegevens van de indiener verwijderd op verzoek"),
    ]
    # What she sent goes; that a voice note and a document were sent stays.
    assert await _one(
        engine,
        "select media_kind, media_file_id, media_name, media_seconds from initiative_events "
        "where media_kind is not null order by id",
    ) == [("voice", None, None, None), ("document", None, None, None)]
    assert await _one(engine, "select question from department_questions") == [(f"Mag {ERASED_TEXT} hier?",)]
    assert await _one(engine, "select text from department_messages") == [
        (f"Wat wil {ERASED_TEXT} precies?",)
    ]
    assert await _one(engine, "select subject, body from mail_outbox") == [
        (f"Vraag over {ERASED_TEXT}", f"{ERASED_TEXT}: {ERASED_TEXT}")
    ]
    payloads = [str(p) for (p,) in await _one(engine, "select payload from outbox order by id")]
    assert payloads[0].count(ERASED_TEXT) == 3 and NAME not in payloads[0] and PHONE not in payloads[0]
    assert "VOICE-FILE-1" not in payloads[1] and ERASED_TEXT in payloads[1]
    assert "Iets anders" in str(payloads[2])
    assert await _one(engine, "select action, detail from audit_log") == [("erasure", "case")]


async def test_erasing_the_resident_of_a_case_that_goes_on_keeps_the_idea(engine: AsyncEngine) -> None:
    case_id = await _case_with_everything(engine)
    async with session_factory(engine)() as session, session.begin():
        erased = await erasure.erase_resident_of(session, [case_id], now=NOW)
    assert [e.idea_kept for e in erased] == [True]
    (row,) = await _one(
        engine,
        "select title, description, publish_consent, contact_name, contact_phone, photo_file_id, "
        "resident_user_id, resident_erased_at is not null, anonymised_at is null from initiatives",
    )
    # The idea stays, without her name in it, and no longer published on her consent.
    assert row == (TITLE, f"Twee bankjes; {ERASED_TEXT} zet ze neer.", False, "", None, None, 0, True, True)
    assert await _one(engine, "select question from department_questions") == [(f"Mag {TITLE} hier?",)]
    async with session_factory(engine)() as session, session.begin():
        # Later, once the case ended and its retention period passed, the idea goes too.
        assert await erasure.anonymise_initiatives(session, [case_id], now=NOW, reason="retention") == 1
    assert await _one(engine, "select title from initiatives") == [(ERASED_TEXT,)]
    assert await _one(engine, "select action from audit_log order by id") == [("erasure",), ("anonymised",)]
