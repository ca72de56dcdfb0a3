"""The department rules on their own: the answer form's checks, the department's clock with its norm and
a promised date, the personal link's token, and a department without contacts."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.casework import Casework
from bot.departments import Opened, Refused
from bot.settings import load_municipality, resolve_config_path
from flows.cases import QuestionFacts
from flows.department import (
    AnswerKind,
    BlockedBy,
    check_answer,
    clock,
    link_token,
    sent_notice,
    standing,
    token_id,
    token_matches,
)
from flows.municipality import DEFAULT_DEPARTMENTS
from flows.stalls import Level
from storage import departments as store
from storage import initiatives as initiatives_store
from storage import mail_outbox
from storage.db import session_factory
from tests.factories import new_initiative

M = load_municipality(resolve_config_path("zutphen"))
TODAY = date(2026, 11, 30)  # a Monday
ASKED = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def test_each_answer_asks_for_what_it_needs_and_keeps_the_rest() -> None:
    assert check_answer(M, "verkeer", TODAY, kind="ja").kind is AnswerKind.YES  # type: ignore[union-attr]
    assert set(check_answer(M, "verkeer", TODAY, kind="voorwaarden")) == {"text"}  # type: ignore[arg-type]
    assert set(check_answer(M, "verkeer", TODAY, kind="nee", blocked_by="regel")) == {"text"}  # type: ignore[arg-type]
    no = check_answer(M, "verkeer", TODAY, kind="nee", text=" Mag niet. ", blocked_by="mandaat")
    assert not isinstance(no, dict) and no.text == "Mag niet." and no.blocked_by is BlockedBy.MANDATE
    assert "blocked_by" in check_answer(M, "verkeer", TODAY, kind="nee", text="x", blocked_by="zomaar")  # type: ignore[operator]
    info = check_answer(M, "verkeer", TODAY, kind="informatie", text="Hoe breed?", promised_on="2026-12-18")
    assert not isinstance(info, dict) and info.promised_on == date(2026, 12, 18)
    for wrong in ("18-12-2026x", "2026-11-27", "2028-01-01"):
        errors = check_answer(M, "verkeer", TODAY, kind="informatie", text="?", promised_on=wrong)
        assert set(errors) == {"promised_on"}, wrong  # type: ignore[arg-type]
    for target in ("", "verkeer", "nergens"):
        errors = check_answer(M, "verkeer", TODAY, kind="niet_voor_ons", forward_to=target)
        assert set(errors) == {"forward_to"}, target  # type: ignore[arg-type]
    assert check_answer(M, "verkeer", TODAY, kind="niet_voor_ons", forward_to="groen").forward_to == "groen"  # type: ignore[union-attr]
    assert set(check_answer(M, "verkeer", TODAY, kind="misschien")) == {"kind"}  # type: ignore[arg-type]
    assert set(check_answer(M, "verkeer", TODAY, kind="ja", text="x" * 4001)) == {"text"}  # type: ignore[arg-type]


def test_the_department_clock_runs_on_its_norm_or_the_promised_date_and_only_while_open() -> None:
    open_ = QuestionFacts(1, "vergunningen", "open", ASKED)
    running = clock(open_, M)
    assert running is not None and running.norm == 40  # Vergunningen's own norm
    assert clock(QuestionFacts(1, "verkeer", "open", ASKED), M).norm == 20  # type: ignore[union-attr]
    assert clock(QuestionFacts(1, "verkeer", "info", ASKED), M) is None
    assert clock(QuestionFacts(1, "verkeer", "answered", ASKED), M) is None
    # Promised Friday 4 December: the reminder is due Monday 7 December, 09:00 Amsterdam.
    promised = QuestionFacts(1, "verkeer", "open", ASKED, date(2026, 12, 4))
    before = standing(promised, M, datetime(2026, 12, 7, 7, 59, tzinfo=UTC))
    after = standing(promised, M, datetime(2026, 12, 7, 8, 0, tzinfo=UTC))
    assert before is not None and before.level is None
    assert after is not None and after.level is Level.REMINDER


def test_a_link_token_opens_only_its_own_link() -> None:
    key = b"k" * 32
    token = link_token(key, 42, "salt")
    assert token_id(token) == 42 and token_matches(key, token, "salt")
    assert not token_matches(key, token, "other salt") and not token_matches(b"x" * 32, token, "salt")
    assert not token_matches(key, token.replace("42-", "43-"), "salt")
    for broken in ("", "42", "x-" + "0" * 40, "42-short", "1" * 13 + "-" + "0" * 40):
        assert token_id(broken) is None or not token_matches(key, broken, "salt")


def test_the_broker_hears_when_nobody_at_the_department_was_mailed() -> None:
    assert "has no e-mail contacts yet" in sent_notice("Verkeer", 0).msgid
    assert sent_notice("Verkeer", 2).n == 2


@pytest.mark.parametrize("contacts", [False, True])
async def test_a_question_mails_each_contact_a_personal_link(engine: AsyncEngine, contacts: bool) -> None:
    async with session_factory(engine)() as session, session.begin():
        await _question_mails(session, contacts)


async def _question_mails(session: AsyncSession, contacts: bool) -> None:
    m = M if contacts else dataclasses.replace(M, departments=DEFAULT_DEPARTMENTS)
    casework = Casework(m, web_url="https://bot.example.nl")
    desk = casework.desk
    created = await initiatives_store.create_initiative(session, new_initiative(wijk_code="WK030101"), ASKED)
    await initiatives_store.change_status(
        session,
        created.id,
        status="bij_gemeente",
        now=ASKED,
        actor_role="broker",
        actor_user_id=None,
        staff_id=None,
        note="Mag het?",
        department="verkeer",
    )
    case = await casework.case(session, created.reference)
    assert case is not None
    mailed = await desk.ask(
        session, case, department="verkeer", question="Mag het?", staff_id=None, now=ASKED
    )
    rows = await mail_outbox.mails(session)
    assert mailed == len(rows) == (1 if contacts else 0)
    [question] = await store.questions_of(session, case.id)
    assert question.state == "open" and question.next_alert_at == ASKED
    if not contacts:
        return
    url = rows[0].body.split("https://bot.example.nl/afdeling/")[1].split()[0]
    opened = await desk.open_link(session, url, ASKED)
    assert isinstance(opened, Opened) and opened.question is not None and opened.question.id == question.id
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert await desk.open_link(session, tampered, ASKED) == Refused("unknown")
    await store.revoke_links(session, case.id, now=ASKED, reason="staff")
    assert await desk.open_link(session, url, ASKED) == Refused("revoked")
