"""A department as a participant, over the fake Bot API: the broker's question goes out by e-mail with a
personal link, the department answers through it, and the broker and the initiator hear what concerns
them — on SQLite and PostgreSQL. (The page itself, SMTP and the browser: tests/test_department_story.py.)
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
import pytest_asyncio

from bot.casework import Casework
from bot.departments import Opened
from bot.i18n import Translator
from bot.notifications import enqueue_for_sweep
from bot.settings import load_municipality, resolve_config_path
from flows.department import check_answer
from storage import departments as store
from storage import mail_outbox
from storage.db import create_engine, session_factory
from tests.e2e import press, running_bot, say
from tests.fake_bot_api import FakeBotApi, FakeUser
from tests.smtp_support import Inbox, running
from tests.test_e2e_cases import add_staff, case_row, change_status, meet, submit, text_of

pytestmark = pytest.mark.timeout(90)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
QUESTION = "Mogen de bankjes op de stoep staan?"
LINK = re.compile(r"http://localhost:\d+/afdeling/\d+-[0-9a-f]{40}")


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


def clock() -> datetime:
    return NOW


async def mails(database_url: str) -> list[mail_outbox.MailRow]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            return await mail_outbox.mails(session)
    finally:
        await engine.dispose()


async def department_answers(database_url: str, url: str, **fields: str) -> Opened:
    """The department opens its link and sends the form, as the answer page does."""
    m = load_municipality(resolve_config_path("zutphen"))
    desk = Casework(m, web_url="http://localhost", translator=Translator(("nl", "en"))).desk
    token = url.rsplit("/", 1)[1]
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            opened = await desk.open_link(session, token, NOW)
            assert isinstance(opened, Opened), opened
            answer = check_answer(m, opened.link.department, NOW.date(), **fields)
            assert not isinstance(answer, dict), answer
            done = await desk.answer(session, opened, answer, NOW)
            assert done is not None
            # What the answer page does with the Telegram messages: queue them for the outbox's sweep.
            await enqueue_for_sweep(session, list(done.notifications), Translator(("nl", "en")), NOW)
            return opened
    finally:
        await engine.dispose()


async def put_to_verkeer(broker: FakeUser, resident: FakeUser, question: str = QUESTION) -> str:
    """The broker meets the bot, the resident submits, and the broker moves the case through "In
    conversation" to "With the municipality" at Verkeer with ``question``; returns the reference."""
    await meet(broker)
    reference = await submit(resident)
    await broker.wait_for_message(lambda m: "A new initiative for you." in (m.text or ""))
    await change_status(broker, "In conversation")
    await press(broker, "No note", "Status changed.")
    await change_status(broker, "With the municipality")
    await press(broker, "Verkeer", "What is the question for Verkeer?")
    await say(broker, question, "Status changed.")
    return reference


async def test_question_answer_reply_and_conditions_passed_on(fake: FakeBotApi, database_url: str) -> None:
    bea = fake.user(5201, "Bea", language_code="en")
    anna = fake.user(1301, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        reference = await put_to_verkeer(bea, anna)
        sent = await bea.wait_for_message(lambda m: "by e-mail" in (m.text or ""))
        assert "Sent to Verkeer by e-mail (1 contact), with a personal link to answer." in text_of(sent)

        [question_mail] = await mails(database_url)
        assert question_mail.to_address == "verkeer@zutphen.example"
        assert question_mail.subject == f"Vraag over initiatief {reference}: Bankjes in het park"
        assert question_mail.body.index(QUESTION) < question_mail.body.index("persoonlijke link")
        [url] = LINK.findall(question_mail.body)
        assert "Anna" not in question_mail.body  # never the resident's name or contact details

        # The department needs more information, and expects to decide by a date.
        await department_answers(
            database_url, url, kind="informatie", text="Hoe breed is de stoep daar?", promised_on="2026-03-20"
        )
        told = await bea.wait_for_message(lambda m: "Verkeer answered" in (m.text or ""))
        assert "We need more information" in text_of(told)
        assert "Hoe breed is de stoep daar?" in text_of(told)
        assert told.button_labels == ["Answer their question"]
        heard = await anna.wait_for_message(lambda m: "Verkeer has answered" in (m.text or ""))
        assert "Bea Bakker will discuss it with you." in text_of(heard)
        assert "stoep" not in text_of(heard)  # the department's words only through the broker

        await bea.press_button("Answer their question")
        await bea.wait_for_message(lambda m: "Write your answer to Verkeer's question" in (m.text or ""))
        await say(bea, "Ongeveer twee meter.", "Sent to Verkeer by e-mail")
        reply_mail = (await mails(database_url))[-1]
        assert reply_mail.kind == "reply" and "Ongeveer twee meter." in reply_mail.body
        assert LINK.findall(reply_mail.body) == [url]  # the same link

        await department_answers(
            database_url, url, kind="voorwaarden", text="Er moet 1,5 meter stoep vrij blijven."
        )
        told = await bea.wait_for_message(lambda m: "Yes, under conditions" in (m.text or ""))
        assert told.button_labels == [
            "Approved",
            "Back to the plan, with the conditions",
            "Ask Verkeer again",
        ]
        await bea.press_button("Back to the plan, with the conditions")
        await bea.wait_for_message(lambda m: "Status changed" in (m.text or ""))
        heard = await anna.wait_for_message(lambda m: "1,5 meter" in (m.text or ""))
        assert "Verkeer: Er moet 1,5 meter stoep vrij blijven." in text_of(heard)

    assert (await case_row(database_url, reference))[0] == "plan_in_uitwerking"
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            links = await store.links_of(session, 1)
            assert [link.revoked_reason for link in links] == ["left_department"]
    finally:
        await engine.dispose()


async def test_not_for_us_forwards_the_question_and_ends_the_first_link(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5202, "Bea", language_code="en")
    anna = fake.user(1302, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        reference = await put_to_verkeer(bea, anna)
        [url] = LINK.findall((await mails(database_url))[0].body)

        await department_answers(
            database_url, url, kind="niet_voor_ons", forward_to="groen", text="Dit gaat over het park."
        )
        told = await bea.wait_for_message(lambda m: "This is not for us" in (m.text or ""))
        assert "Sent to Groen en openbare ruimte by e-mail (1 contact)" in text_of(told)
        forwarded = (await mails(database_url))[-1]
        assert forwarded.to_address == "groen@zutphen.example"
        assert QUESTION in forwarded.body and "Verkeer" in forwarded.body
        assert (await case_row(database_url, reference))[2] == "groen"

    m = load_municipality(resolve_config_path("zutphen"))
    desk = Casework(m, web_url="http://localhost").desk
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            refused = await desk.open_link(session, url.rsplit("/", 1)[1], NOW)
            assert not isinstance(refused, Opened) and refused.reason == "moved_on"
            assert date(2026, 3, 2) == NOW.date()
    finally:
        await engine.dispose()


async def test_a_department_address_that_is_refused_is_told_to_the_broker(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(5203, "Bea", language_code="en")
    anna = fake.user(1303, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")
    inbox = Inbox(refuse={"verkeer@zutphen.example": "550 5.1.1 no such user"})
    with running(inbox) as smtp:
        async with running_bot(fake, database_url, clock=clock, smtp_url=smtp.url):
            reference = await put_to_verkeer(bea, anna)
            told = await bea.wait_for_message(
                lambda m: "could not be delivered" in (m.text or ""), timeout=20
            )
            assert (
                f"The e-mail to verkeer@zutphen.example about {reference} could not be delivered"
                in text_of(told)
            )
            assert "no such user" in text_of(told)
    [refused] = await mails(database_url)
    assert refused.status == "failed" and inbox.received == []
