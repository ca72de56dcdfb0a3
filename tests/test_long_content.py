"""Long content is split or paged, never cut off: case cards, relayed messages and the timeline.

The first tests render the flows' replies as the bot sends them; the last ones drive the real
Application against the fake Bot API, which refuses any message over Telegram's limits.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.shell import TerminalTransport
from bot.telegram_io import ApiCall, render_reply
from flows import broker
from flows.cases import CaseView, TimelineItem, parse_case_button
from flows.events import Button, Reply
from flows.intake import MONEY
from flows.splitting import MESSAGE_LIMIT, utf16_len
from flows.text import t, verbatim
from tests.e2e import answer_intake, containing, press, running_bot, say, submit
from tests.fake_bot_api import FakeBotApi, FakeUser, SentMessage
from tests.test_e2e_cases import add_staff, meet
from tests.test_intake_flow import TR, ZUTPHEN

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LANGUAGES = ("nl", "en")


def long_text(label: str, size: int = 2000) -> str:
    """``size`` characters of sentences that say where they come from, ending in a full word."""
    words = (f"{label} zin {i} van een lang verhaal met woorden." for i in range(size))
    return " ".join(words)[:size].rsplit(" ", 1)[0].ljust(size, ".")


IDEA, OWN = long_text("Idee"), long_text("Bijdrage")


def a_case(**changes: object) -> CaseView:
    case = CaseView(
        id=1,
        reference="INI-2026-0042",
        title="Bankjes in het park bij de speeltuin",
        description=IDEA,
        theme_code="groen",
        wijk_code="WK030101",
        own_contribution=OWN,
        needs=(MONEY, "vergunning"),
        amount_cents=125_000,
        neighbours=12,
        photo_file_id=None,
        contact_name="Anna de Vries",
        contact_phone="+31612345678",
        contact_email="anna@example.nl",
        status="toegewezen",
        status_changed_at=NOW,
        created_at=NOW,
        resident_user_id=7,
        resident_chat_id=7,
        broker_id=3,
        broker_name="Bea Bakker",
    )
    return replace(case, **changes)


def texts_of(calls: list[ApiCall]) -> list[str]:
    return [str(call.payload["text"]) for call in calls if "text" in call.payload]


def assert_fits(calls: list[ApiCall]) -> None:
    """Every message within Telegram's limit, the buttons only under the last one."""
    for call in calls:
        assert utf16_len(str(call.payload.get("text", ""))) <= MESSAGE_LIMIT
    assert all("reply_markup" not in call.payload for call in calls[:-1])


# --- splitting where the bot renders a reply -------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_card_with_a_2000_and_a_2000_character_text_keeps_needs_amount_and_contact(language: str) -> None:
    (card,) = broker.case_card(a_case(), broker.StaffContext(ZUTPHEN, NOW))
    whole = TR.render(card.text, language)
    assert utf16_len(whole) > MESSAGE_LIMIT  # so this card used to lose its last lines
    calls = render_reply(card, chat_id=9, message_id=None, tr=TR, language=language)
    assert_fits(calls)
    first, last = texts_of(calls)
    assert "".join((first, last)) == whole
    # Split between the two free texts, each whole beside its question; every line after them kept.
    assert IDEA in first and OWN in last
    needs, amount, contact = {
        "nl": ("Wat hebben ze nodig? Geld", "Bedrag: ongeveer € 1.250", "Contact: Anna de Vries"),
        "en": ("What do they need? Money", "Amount: about €1,250", "Contact: Anna de Vries"),
    }[language]
    shown = last.replace("\xa0", " ")
    assert needs in shown and amount in shown and contact in shown
    assert "+31612345678 · anna@example.nl" in last
    assert (
        calls[-1].payload["reply_markup"]["inline_keyboard"][-1][0]["callback_data"] == "c:INI-2026-0042:tl"
    )


def test_a_long_edit_changes_the_pressed_message_to_the_first_part_and_sends_the_rest() -> None:
    text = long_text("Bericht", 9000)
    reply = Reply(verbatim(text), buttons=((Button(t("Cancel"), "c:INI-2026-0042:cancel"),),), edit=True)
    calls = render_reply(reply, chat_id=9, message_id=55, tr=TR, language="nl")
    assert [c.method for c in calls] == ["editMessageText", "sendMessage", "sendMessage"]
    assert calls[0].payload["message_id"] == 55
    assert_fits(calls)
    assert "".join(texts_of(calls)) == text
    assert calls[-1].payload["reply_markup"]["inline_keyboard"][0][0]["text"] == "Annuleren"


def test_a_photo_with_a_long_text_comes_first_then_the_text_in_parts() -> None:
    text = long_text("Foto", 5000)
    calls = render_reply(
        Reply(verbatim(text), photo_file_id="photo-1"), chat_id=9, message_id=None, tr=TR, language="en"
    )
    assert [c.method for c in calls] == ["sendPhoto", "sendMessage", "sendMessage"]
    assert "caption" not in calls[0].payload and "".join(texts_of(calls)) == text


async def test_the_terminal_shell_shows_the_same_parts() -> None:
    (card,) = broker.case_card(a_case(), broker.StaffContext(ZUTPHEN, NOW))
    out = io.StringIO()
    shell = TerminalTransport(me=9, out=out)
    for call in render_reply(card, chat_id=9, message_id=None, tr=TR, language="en"):
        await shell.deliver(call.method, call.payload)
    printed = out.getvalue()
    assert printed.count("🤖 ") == 2
    first, second = printed.split("🤖 ")[1:]
    assert "What do they want?" in first and "[1] Change status" not in first
    assert "Contact: Anna de Vries" in second and "[1] Change status" in second
    assert shell.buttons[0] == (2, "c:INI-2026-0042:st")  # the buttons belong to the second message


def test_a_broker_with_more_open_cases_than_the_list_shows_is_told_how_many_more() -> None:
    cases = [a_case(id=i, reference=f"INI-2026-{i:04d}") for i in range(1, 36)]
    reply = broker.case_list(cases, broker.StaffContext(ZUTPHEN, NOW), title=t("Your open initiatives:"))
    calls = render_reply(reply, chat_id=9, message_id=None, tr=TR, language="nl")
    assert_fits(calls)
    assert "… en nog 5." in texts_of(calls)[-1] and len(reply.buttons) == broker.CASE_LIST_LIMIT


# --- the timeline: newest first, one message a page -------------------------------------------------


def timeline(count: int, size: int = 1900) -> list[TimelineItem]:
    """``count`` long messages, oldest first as storage returns them; message i says so."""
    first = TimelineItem(NOW, "status", status="ingediend", actor_role="resident")
    messages = [
        TimelineItem(
            NOW + timedelta(hours=i + 1),
            "message_from_resident" if i % 2 else "message_to_resident",
            staff_name=None if i % 2 else "Bea Bakker",
            actor_role="resident" if i % 2 else "broker",
            note=f"<{i}> " + long_text(f"Bericht {i}", size),
        )
        for i in range(count)
    ]
    return [first, *messages]


def page_through(
    case: CaseView, items: list[TimelineItem], *, for_resident: bool, language: str
) -> list[str]:
    """Show the timeline and press "Earlier messages" until the oldest page; one text per page."""
    pages: list[str] = []
    offset = 0
    while True:
        reply = broker.timeline_text(case, items, for_resident=for_resident, offset=offset)
        calls = render_reply(reply, chat_id=7, message_id=None, tr=TR, language=language)
        assert len(calls) == 1, "a page fits one message"
        assert_fits(calls)
        pages.append(texts_of(calls)[0])
        if not reply.buttons:
            return pages
        (earlier,) = reply.buttons[0]
        assert TR.render(earlier.label, "nl") == "Eerdere berichten"
        assert len(earlier.data.encode()) <= 64
        prefix, reference, action, argument = parse_case_button(earlier.data) or ("", "", "", "")
        assert (prefix, reference, action) == ("r" if for_resident else "c", case.reference, "tl")
        assert int(argument) > offset
        offset = int(argument)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("for_resident", [False, True])
def test_the_timeline_shows_the_newest_first_and_pages_back_to_the_oldest(
    language: str, for_resident: bool
) -> None:
    items = timeline(12)
    pages = page_through(a_case(), items, for_resident=for_resident, language=language)
    assert len(pages) >= 6
    shown = [int(n) for page in pages for n in re.findall(r"<(\d+)>", page)]
    assert shown == list(range(11, -1, -1))  # every message once, newest first
    assert "<11>" in pages[0] and ("ingediend" in pages[-1].lower() or "submitted" in pages[-1].lower())


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=2000), min_size=1, max_size=12),
    st.booleans(),
    st.sampled_from(LANGUAGES),
)
def test_every_timeline_page_fits_one_message_whatever_the_lengths(
    sizes: list[int], for_resident: bool, language: str
) -> None:
    first = TimelineItem(NOW, "status", status="bij_gemeente", actor_role="broker", department="Vergunningen")
    items = [
        first,
        *(
            TimelineItem(
                NOW + timedelta(minutes=i),
                "handover" if i % 2 else "message_to_resident",
                staff_name="Bea Bakker-van den Heuvel de Groot-Ypma",
                actor_role="broker",
                note=f"<{i}> " + long_text("x", size),
            )
            for i, size in enumerate(sizes)
        ),
    ]
    case = a_case(title="T" * 80)  # the longest title intake accepts
    pages = page_through(case, items, for_resident=for_resident, language=language)
    shown = [int(n) for page in pages for n in re.findall(r"<(\d+)>", page)]
    assert shown == list(range(len(sizes) - 1, -1, -1))


def test_a_short_timeline_is_one_page_without_the_button() -> None:
    reply = broker.timeline_text(a_case(), timeline(3, size=100), for_resident=False)
    assert reply.buttons == ()
    text = TR.render(reply.text, "en")
    assert "Newest first · 1–4 of 4" in text
    assert text.index("<2>") < text.index("<1>") < text.index("<0>") < text.index("Submitted")


def test_a_stale_or_forged_offset_still_shows_a_page() -> None:
    items = timeline(4)
    last = broker.timeline_text(a_case(), items, for_resident=False, offset=999)
    assert "Submitted" in TR.render(last.text, "en") and last.buttons == ()


# --- end to end: the real Application against the strict fake Bot API --------------------------------


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as api:
        yield api


def clock() -> datetime:
    return NOW


def text_of(message: SentMessage) -> str:
    return (message.text or "").replace("\xa0", " ")


async def long_intake(anna: FakeUser) -> str:
    """Anna shares an idea of 2,000 characters and an own contribution of 2,000; returns the reference."""
    # The summary is longer than a message: two, the buttons under the second, nothing left out.
    first = await answer_intake(
        anna, title="Bankjes in het park", idea=IDEA, own=OWN, name="Anna", contact="0612345678"
    )
    second = await anna.wait_for_message()
    assert first.button_labels == [] and "✔ I agree, send my idea" in second.button_labels
    summary = text_of(first) + "\n" + text_of(second)
    assert IDEA in summary and OWN in summary
    assert "Amount: about €1,250" in summary and "Contact: +31612345678" in summary
    return await submit(anna)


async def page_through_chat(user: FakeUser, open_label: str) -> list[SentMessage]:
    """Open the timeline with ``open_label`` and press "Earlier messages" until the oldest page."""
    pages = [await press(user, open_label, "Timeline of")]
    while "Earlier messages" in pages[-1].button_labels:
        pages.append(await press(user, "Earlier messages", "Timeline of"))
    return pages


async def test_long_cards_messages_and_timelines_reach_everybody_whole(
    fake: FakeBotApi, database_url: str
) -> None:
    bea = fake.user(7101, "Bea", language_code="en")
    anna = fake.user(7201, "Anna", language_code="en")
    await add_staff(database_url, bea.id, "Bea Bakker")

    async with running_bot(fake, database_url, clock=clock):
        await meet(bea)
        reference = await long_intake(anna)

        # The broker's card: two messages, split between the two free texts; the buttons under the
        # second, with the needs, the amount and the contact line.
        head = await bea.wait_for_message(containing("A new initiative for you."))
        rest = await bea.wait_for_message()
        assert head.button_labels == [] and rest.button_labels[-1] == "Timeline"
        assert f"What do they want?\n{IDEA}" in text_of(head)
        card = text_of(rest)
        assert card.startswith(f"What can they do themselves?\n{OWN}")
        assert "What do they need? Money or a grant\nAmount: about €1,250" in card
        assert "Contact: Anna · +31612345678 (and in this chat via the bot)" in card

        # Long messages both ways, each relayed whole.
        for i in range(3):
            await press(bea, "Message to initiator", "Write your message to the initiator.")
            await say(bea, f"<{2 * i}> " + long_text(f"Bea {i}", 1990), "Sent to Anna.")
            got = await anna.wait_for_message(containing(f"<{2 * i}>"))
            assert text_of(got).endswith(long_text(f"Bea {i}", 1990)) and got.button_labels == ["Reply"]
            await press(anna, "Reply", "Write your message to your initiative broker")
            await say(anna, f"<{2 * i + 1}> " + long_text(f"Anna {i}", 1990), "✔ Sent to")
            relayed = await bea.wait_for_message(containing(f"<{2 * i + 1}>"))
            assert text_of(relayed).endswith(long_text(f"Anna {i}", 1990))

        # The timeline: newest first, one message a page, back to the submission.
        staff_pages = await page_through_chat(bea, "Timeline")
        shown = [int(n) for page in staff_pages for n in re.findall(r"<(\d+)>", text_of(page))]
        assert shown == [5, 4, 3, 2, 1, 0]
        assert len(staff_pages) >= 3 and "Submitted" in text_of(staff_pages[-1])
        assert "Newest first · 1–" in text_of(staff_pages[0])

        await press(anna, "My initiatives", "Your initiatives:")
        resident_pages = await page_through_chat(anna, f"View {reference}")
        shown = [int(n) for page in resident_pages for n in re.findall(r"<(\d+)>", text_of(page))]
        assert shown == [5, 4, 3, 2, 1, 0]
        assert resident_pages[0].button_labels[0] == "Earlier messages"
        assert resident_pages[-1].button_labels == [
            "Message to my initiative broker",
            "Timeline",
            "Stop my initiative",
        ]
        assert "You\nSubmitted" in text_of(resident_pages[-1])

    assert all(utf16_len(m.text or "") <= MESSAGE_LIMIT for user in (anna, bea) for m in user.sent())
