"""The timeline and the case card read well: one entry per event, a separator between a status and its
message, sentences that start with a capital, times without seconds; right-to-left text isolated in the
Dutch card, which names the initiator's language; the photo only with a new or opened case.

The first tests render the flows' replies as the bot sends them; the last one drives the real
Application against the fake Bot API.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text as sql

from bot.i18n import Translator
from bot.language_names import language_name
from bot.settings import load_municipality
from bot.telegram_io import ApiCall, render_reply
from flows import broker
from flows.bidi import FSI, PDI, isolate
from flows.cases import CaseView, TimelineItem
from flows.events import Reply
from tests.e2e import containing, press, running_bot, say
from tests.fake_bot_api import FakeBotApi
from tests.test_e2e_cases import add_staff, change_status, clock, database, meet, submit, text_of

pytestmark = pytest.mark.timeout(60)

TR = Translator(("nl", "en"))
ZUTPHEN = load_municipality(Path(__file__).resolve().parents[1] / "config" / "zutphen.toml")
# 14:05:37 in Amsterdam (winter time): a time with seconds, to show they are left out.
AT = datetime(2026, 11, 12, 13, 5, 37, tzinfo=UTC)
ARABIC_TITLE = "حديقة خضراء للحي"  # "A green garden for the neighbourhood"
ARABIC_IDEA = "نريد زراعة الخضروات مع الجيران.\nوالأطفال يساعدون أيضا."


def a_case(**changes: object) -> CaseView:
    case = CaseView(
        id=1,
        reference="INI-2026-0042",
        title="Moestuin aan de Leesten",
        description="Een moestuin voor de buurt.",
        theme_code="groen",
        wijk_code=ZUTPHEN.wijken[0].code,
        own_contribution="Wij zaaien en wieden.",
        needs=(),
        amount_cents=None,
        neighbours=None,
        photo_file_id=None,
        contact_name="Fatima",
        contact_phone=None,
        contact_email=None,
        status="toegewezen",
        status_changed_at=AT,
        created_at=AT,
        resident_user_id=7,
        resident_chat_id=7,
        broker_id=3,
        broker_name="Anna de Vries",
    )
    return replace(case, **changes)


def rendered(replies: tuple[Reply, ...] | Reply, language: str) -> list[ApiCall]:
    calls: list[ApiCall] = []
    for reply in (replies,) if isinstance(replies, Reply) else replies:
        calls += render_reply(reply, chat_id=3, message_id=None, tr=TR, language=language)
    return calls


def text(reply: Reply, language: str) -> str:
    return "\n\n".join(str(call.payload.get("text", "")) for call in rendered(reply, language))


# A case's life as the timeline stores it, oldest first: routing writes the assignment and the status
# "toegewezen" at one moment; then the broker talks with the initiator and asks a department.
ITEMS = (
    TimelineItem(AT, "status", "ingediend", None, "resident"),
    TimelineItem(AT, "assigned", None, "Anna de Vries", "system", to_name="Anna de Vries"),
    TimelineItem(AT, "status", "toegewezen", None, "system"),
    TimelineItem(
        AT + timedelta(hours=1), "status", "in_gesprek", "Anna de Vries", "broker", "ik bel je morgen."
    ),
    TimelineItem(
        AT + timedelta(hours=2), "message_from_resident", None, None, "resident", "Prima, tot morgen!"
    ),
    TimelineItem(
        AT + timedelta(days=1), "status", "bij_gemeente", "Anna de Vries", "broker", "Mag dit?", "Groen"
    ),
)


def entries(shown: str) -> list[str]:
    """The timeline's entries (after the heading and the page line), each "when · who\\nwhat"."""
    return shown.split("\n\n")[2:]


@pytest.mark.parametrize("for_resident", [False, True])
def test_one_event_shows_once_with_a_separator_a_capital_and_no_seconds(for_resident: bool) -> None:
    reply = broker.timeline_text(a_case(), ITEMS, for_resident=for_resident, now=AT)
    shown = text(reply, "nl")
    found = entries(shown)
    assert len(found) == 5, shown  # six rows, five events: the assignment and its status are one
    assert "Initiatiefmakelaar toegewezen" not in shown
    assert "Nieuwste eerst · 1–5 van 5" in shown
    assigned = found[-2]
    assert assigned.startswith("12 nov 14:05 · De bot\n"), assigned
    assert assigned.endswith(" — Anna de Vries"), assigned
    talk = next(e for e in found if "morgen." in e and "Anna de Vries\n" in e)
    status = "In gesprek met je initiatiefmakelaar" if for_resident else "In gesprek"
    assert talk.endswith(f"{status}: ik bel je morgen."), talk  # the separator, the note as written
    department = found[0]
    assert department.startswith("13 nov 14:05 · Anna de Vries\n"), department
    assert "(afdeling: Groen): Mag dit?" in department
    for entry in found:
        when, who_what = entry.split(" · ", 1)
        who, what = who_what.split("\n", 1)
        assert re.fullmatch(r"\d{1,2} \w{3} \d{2}:\d{2}", when), when  # no seconds, no year this year
        assert who[0].isupper() and what[0].isupper(), entry


def test_an_entry_of_another_year_shows_its_year() -> None:
    reply = broker.timeline_text(a_case(), ITEMS[:1], for_resident=True, now=AT + timedelta(days=60))
    assert "12 nov 2026 14:05 · Jij\n" in text(reply, "nl")
    assert not re.search(r"\d{2}:\d{2}:\d{2}", text(reply, "en"))


def test_english_timelines_read_as_sentences_too() -> None:
    shown = text(broker.timeline_text(a_case(), ITEMS, for_resident=True, now=AT), "en")
    assert "Nov 12 2:05\u202fPM · You\nSubmitted" in shown
    assert "The bot\nAn initiative broker is assigned — Anna de Vries" in shown
    assert "You\nYour message: Prima, tot morgen!" in shown


def test_a_reassignment_without_its_own_status_names_the_new_broker() -> None:
    later = TimelineItem(AT, "assigned", None, "Carla", "coordinator", to_name="Dirk Dekker")
    shown = text(broker.timeline_text(a_case(), (later,), for_resident=False), "nl")
    assert "Carla\nDirk Dekker is nu de initiatiefmakelaar." in shown
    # A name stays as it is written; a sentence that starts with it gets its capital.
    later = TimelineItem(AT, "assigned", None, "van Dijk", "coordinator", to_name="de Vries")
    shown = text(broker.timeline_text(a_case(), (later,), for_resident=False), "nl")
    assert " · van Dijk\nDe Vries is nu de initiatiefmakelaar." in shown


def test_an_arabic_title_and_idea_read_right_to_left_inside_the_dutch_card() -> None:
    case = a_case(
        title=ARABIC_TITLE,
        description=ARABIC_IDEA,
        own_contribution="نحن نزرع",
        contact_name="فاطمة",
        resident_language=language_name("ar", ("nl", "en")),
    )
    (card,) = broker.case_card(case, broker.StaffContext(ZUTPHEN, AT))
    shown = text(card, "nl")
    assert f"INI-2026-0042 · {FSI}{ARABIC_TITLE}{PDI}\n" in shown
    # Each line on its own: a newline ends every isolate.
    assert f"{FSI}نريد زراعة الخضروات مع الجيران.{PDI}\n{FSI}والأطفال يساعدون أيضا.{PDI}" in shown
    assert f"{FSI}نحن نزرع{PDI}" in shown
    assert f"Contact: {FSI}فاطمة{PDI}" in shown
    assert "Taal van de inwoner: Arabisch (العربية)" in shown
    assert "Project-Id-Version" not in shown and "Wat hebben ze nodig?" not in shown  # no needs given
    # The broker's own words stay Dutch and outside every isolate.
    outside = re.sub(f"{FSI}[^{PDI}]*{PDI}", "", shown)
    assert not re.search(r"[\u0600-\u06ff]", outside.replace("Arabisch (العربية)", ""))
    assert "Wat willen ze?" in outside
    english = text(card, "en")
    assert "Language of the initiator: Arabic (العربية)" in english


def test_latin_text_is_left_as_it_is() -> None:
    (card,) = broker.case_card(a_case(), broker.StaffContext(ZUTPHEN, AT))
    shown = text(card, "nl")
    assert FSI not in shown and PDI not in shown
    assert "INI-2026-0042 · Moestuin aan de Leesten" in shown
    assert isolate("Bankjes\nin het park") == "Bankjes\nin het park"
    assert isolate("123 حديقة") == f"{FSI}123 حديقة{PDI}"


def test_the_photo_goes_with_a_new_or_opened_card_only() -> None:
    case = a_case(photo_file_id="photo-1")
    ctx = broker.StaffContext(ZUTPHEN, AT)
    status_card = broker.case_card(case, ctx, heading=None)
    assert [call.method for call in rendered(status_card, "nl")] == ["sendMessage"]
    opened = broker.case_card(case, ctx, with_photo=True)
    assert [call.method for call in rendered(opened, "nl")] == ["sendPhoto", "sendMessage"]


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


async def test_the_broker_gets_the_photo_with_the_new_case_and_when_opening_it_not_with_each_status(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(8501, "Bea", language_code="en")
    cora = fake.user(8502, "Cora", language_code="en")
    anna = fake.user(8503, "Anna", language_code="en")
    await add_staff(database_url, cora.id, "Cora Claassen", role="coordinator", wijken=[])

    async with running_bot(fake, database_url, clock=clock):
        await meet(cora)
        reference = await submit(anna)  # no broker yet: it waits for Cora
        alert = await cora.wait_for_message(containing("New initiative without an initiative broker"))
        # The photo as the intake stores it (the intake sends none in this story).
        photo = fake._new_photo(800, 600)[-1]["file_id"]
        async with database(database_url) as session:
            await session.execute(
                sql("update initiatives set photo_file_id = :photo where reference = :reference"),
                {"photo": photo, "reference": reference},
            )
        await add_staff(database_url, bea.id, "Bea Bakker")
        await meet(bea)

        await cora.press(alert, f"c:{reference}:as")
        await cora.wait_for_message(containing(f"Who becomes the initiative broker of {reference}?"))
        await press(cora, "Bea Bakker (0 open)", f"{reference} is assigned to Bea Bakker.")
        card = await bea.wait_for_message(containing("Cora Claassen assigned this initiative to you."))
        assert "Language of the initiator: English" in text_of(card)
        await change_status(bea, "In conversation")
        await press(bea, "No note", "Status changed.")
        await say(bea, f"/zaak {reference}", f"{reference} · ")

    photos = [m for m in bea.sent() if m.photo]
    assert [m.text for m in photos] == [f"Photo of {reference}"] * 2  # the new card, and /zaak
    sent = bea.sent()
    status_card = next(m for m in sent if "Status changed." in (m.text or ""))
    assert sent[sent.index(status_card) - 1].photo is None
