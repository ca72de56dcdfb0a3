"""The guard for free text: phone numbers, e-mail addresses and BSNs are found and kindly refused; the
numbers residents write every day (amounts, years, dates, postcodes, times) are not."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows import resident
from flows.cases import CaseView, Pending
from flows.commands import ChangeStatus, MessageBroker
from flows.events import Event, EventKind
from flows.pii import PersonalData, personal_data_in, personal_data_refusal, without_personal_data
from flows.validators import Invalid, validate_description, validate_title
from tests.test_intake_flow import TR, Chat, answer_until

PHONE, EMAIL, BSN = PersonalData.PHONE, PersonalData.EMAIL, PersonalData.BSN
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PHONES = [
    "0612345678",
    "06-12345678",
    "06 123 456 78",
    "06 12 34 56 78",
    "06-12.34.56.78",
    "06 - 1234 5678",
    "0612 345 678",
    "(06) 12345678",
    "0575-123456",  # Zutphen, area code and subscriber
    "0575 - 12 34 56",
    "(0575) 12 34 56",
    "010-1234567",  # Rotterdam
    "020 123 45 67",
    "0201234567",
    "+31 6 12345678",
    "+31612345678",
    "+316 1234 5678",
    "+31(0)6 12345678",
    "+31 (0) 575 123 456",
    "+31 06 12345678",  # the 0 written out of habit
    "(+31) 6 12345678",
    "0031 6 12345678",
    "0031612345678",
    "+32 470 12 34 56",  # Belgium
    "+49 30 1234567",  # Germany
    "0032 470 12 34 56",
    "https://wa.me/31612345678",
    "06‑12345678",  # a non-breaking hyphen
    "06–12345678",  # an en dash
    "０６１２３４５６７８",  # full-width digits
    "06\u200b12345678",  # a zero-width space inside
    "06\u00a012345678",  # a non-breaking space
]

IN_SENTENCES = [
    "Bel me gerust op 06-12345678, dan regelen we het.",
    "Tel.: 0575 123456 (na 17:00 uur)",
    "Telefoon:0612345678.",
    "bel0612345678",
    "Ik ben overdag bereikbaar op 06 12 34 56 78 of via de buurtapp.",
    "Op 12-05-2026 om 10:00 in het buurthuis, vragen? 06-12345678",
]

EMAILS = [
    "anna@example.nl",
    "Anna.de.Vries@ziggo.nl",
    "anna+buurt@gmail.com",
    "anna_devries@hotmail.com.",
    "mail me: anna@buurthuis-zutphen.nl!",
    "anna @ example.nl",  # spaces around the @ still make an address
    "anna@ example.nl",
    "anna(at)example.nl",
    "anna [at] example [dot] nl",
    "anna (AT) example (punt) nl",
    "ANNA@EXAMPLE.NL",
    "anna＠example.nl",  # a full-width @
    "jörg@müller.de",
]

BSNS = [
    "123456782",
    "111222333",
    "1234.56.782",  # the way the municipality writes it
    "1234 56 782",
    "123.456.782",
    "123 456 782",
    "12 34 56 782",
    "012345672",  # a leading zero is part of the number
    "Mijn BSN is 123456782.",
]

# Numbers residents write every day: none of these is personal data.
HARMLESS = [
    "800",
    "€ 1.250",
    "€1250,50",
    "€ 12.500,-",
    "1.250.000",
    "100 000",
    "800 à 1000",
    "tussen de 50 en 100 mensen",
    "Kosten: 1.250 - 2.500",
    "1.000 2.000 3.000",
    "2026",
    "2025-2026",
    "2026/2027",
    "2025 2026 2027 2028",
    "12-05-2026",
    "06-12-2026",  # the 6th of December, not a mobile number
    "06/12/2026",
    "06.12.2026",
    "2026-05-12",
    "12-05-2026 10:00",
    "01-05-2026 10:00",
    "Op 1-5-2026 om 14:30",
    "van 1 t/m 10 mei 2026",
    "op 06-12 om 10 uur",
    "om 10.00 uur",
    "om 9.30 u",
    "09.00-17.00",
    "06:30-07:00",
    "7201 AB",
    "postcode 7201 AB 12",
    "7201-7206",
    "Dorpsstraat 12a",
    "huisnummer 112",
    "Bel 112 bij nood",
    "tel. 14 0575",  # the municipality's own number is not personal
    "0800-1234",
    "0,5 km",
    "2,5%",
    "50%",
    "50.000 m2",
    "2x per week",
    "3 x 40 = 120",
    "ratio 1:10",
    "Score 0 - 10",
    "versie 2.0.1",
    "Kamer 0.12",
    "wijk 12, 13 en 14",
    "we zijn met 25 buren, 12 kinderen en 3 honden",
    "1 2 3 4 5 6 7 8 9",
    "INI-2026-0001",
    "kvk 12345678",
    "€ 123.456.782",  # an amount, even if its digits pass the 11-proef
    "+12.500.000 euro",
    "+/- 1.000.000",
    "0612345678910",  # too long for a Dutch number
    "06-1234567",  # too short
    "123456789",  # nine digits that fail the 11-proef
    "000000000",
    "@anna_devries",  # a Telegram username is not an e-mail address
    "Kosten @ 5 euro",
    "meet @ het park. Daarna koffie",
    "www.zutphen.nl",
    "NL91 ABNA 0417 1643 00",  # bank accounts are not looked for, and not taken for a phone number
    "NL91ABNA0417164300",
    "IBAN NL02 RABO 0123 4567 89",
    "",
]


@pytest.mark.parametrize("text", PHONES + IN_SENTENCES)
def test_phone_numbers_are_found_however_they_are_written(text: str) -> None:
    assert personal_data_in(text) == {PHONE}


@pytest.mark.parametrize("text", EMAILS)
def test_email_addresses_are_found_however_they_are_written(text: str) -> None:
    assert personal_data_in(text) == {EMAIL}


@pytest.mark.parametrize("text", BSNS)
def test_numbers_that_pass_the_eleven_test_are_found_as_bsn(text: str) -> None:
    assert personal_data_in(text) == {BSN}


@pytest.mark.parametrize("text", HARMLESS)
def test_everyday_numbers_are_not_personal_data(text: str) -> None:
    assert personal_data_in(text) == frozenset()


def test_a_bsn_with_one_wrong_digit_is_just_a_number() -> None:
    assert personal_data_in("123456782") == {BSN}
    assert personal_data_in("123456783") == frozenset()
    assert personal_data_in("123456792") == frozenset()


def test_a_phone_number_is_not_also_taken_for_a_bsn() -> None:
    # 612345678 passes the 11-proef, but here it is the end of a phone number.
    assert personal_data_in("+31 612345678") == {PHONE}
    assert personal_data_in("+31 612345678 en BSN 1234.56.782") == {PHONE, BSN}


def test_several_kinds_are_all_found() -> None:
    text = "Bel 06-12345678 of mail anna@example.nl, mijn BSN is 111222333."
    assert personal_data_in(text) == {PHONE, EMAIL, BSN}


@FAST
@given(st.text(max_size=3000))
def test_any_text_is_checked_without_error(text: str) -> None:
    assert personal_data_in(text) <= set(PersonalData)


@FAST
@given(st.integers(1, 1_000_000), st.integers(0, 99), st.booleans())
def test_amounts_written_the_dutch_way_are_not_personal_data(
    euros: int, cents: int, with_cents: bool
) -> None:
    amount = f"{euros:,}".replace(",", ".") + (f",{cents:02d}" if with_cents else "")
    for text in (amount, f"€ {amount}", f"{amount} euro", f"ongeveer € {amount} voor de bankjes"):
        assert personal_data_in(text) == frozenset(), text


@FAST
@given(st.dates(date(1900, 1, 1), date(2099, 12, 31)), st.integers(0, 23), st.integers(0, 59))
def test_dates_and_times_are_not_personal_data(day: date, hour: int, minute: int) -> None:
    for written in (
        f"{day:%d-%m-%Y} om {hour:02d}:{minute:02d}",
        f"{day.day}-{day.month}-{day.year} {hour}:{minute:02d}",
        f"{day:%d/%m/%Y} {hour:02d}.{minute:02d} uur",
        f"{day:%d.%m.%Y}",
        f"{day:%Y-%m-%d} {hour:02d}:{minute:02d}",
    ):
        assert personal_data_in(written) == frozenset(), written


@FAST
@given(st.integers(1000, 9999), st.sampled_from(["AB", "XY", "", "ab"]), st.integers(1, 999))
def test_postcodes_and_house_numbers_are_not_personal_data(digits: int, letters: str, house: int) -> None:
    assert personal_data_in(f"{digits} {letters} {house}".replace("  ", " ")) == frozenset()
    assert personal_data_in(f"Dorpsstraat {house}, {digits}{letters} Zutphen") == frozenset()


@FAST
@given(
    st.text("0123456789", min_size=8, max_size=8),
    st.sampled_from(["06{}", "06-{}", "06 {}", "+316{}", "+31 6 {}", "0031 6{}", "+31(0)6{}"]),
    st.sampled_from(["{}", "Bel me: {}.", "Mijn nummer is {} (na vijf uur)"]),
)
def test_every_dutch_mobile_number_is_found(subscriber: str, form: str, sentence: str) -> None:
    assert PHONE in personal_data_in(sentence.format(form.format(subscriber)))


# --- what the resident hears --------------------------------------------------------------------------


def test_the_refusal_names_what_was_found_and_asks_to_send_the_text_again() -> None:
    phone = TR.render(personal_data_refusal(frozenset({PHONE}), during_intake=True), "nl")
    assert phone.startswith("Ik zie een telefoonnummer in je tekst.")
    assert "contactgegevens vraag ik apart" in phone
    assert phone.endswith("Wil je je tekst nog een keer sturen, zonder het nummer?")
    email = TR.render(personal_data_refusal(frozenset({EMAIL}), during_intake=True), "nl")
    assert "e-mailadres" in email and email.endswith("zonder het e-mailadres?")
    both = TR.render(personal_data_refusal(frozenset({PHONE, EMAIL}), during_intake=True), "en")
    assert both.startswith("I see a phone number and an e-mail address in your text.")
    assert both.endswith("without these details.")


def test_a_bsn_is_called_a_burgerservicenummer_and_never_to_be_shared_in_a_chat() -> None:
    text = TR.render(personal_data_refusal(frozenset({BSN}), during_intake=True), "nl")
    assert "burgerservicenummer" in text
    assert "Dat heeft de gemeente hier niet nodig. Deel je BSN nooit in een chat." in text
    assert "contactgegevens" not in text


def test_outside_the_intake_the_refusal_says_the_broker_can_reach_the_resident_here() -> None:
    text = TR.render(personal_data_refusal(frozenset({PHONE}), during_intake=False), "en")
    assert "Your initiative broker can reach you here in the chat." in text
    assert "separately" not in text


def test_the_guard_checks_the_cleaned_text_after_the_validator() -> None:
    title = without_personal_data(validate_title)
    assert title("Bankjes in het park") == "Bankjes in het park"
    too_short = title("06")
    assert isinstance(too_short, Invalid) and "too short" in too_short.reason.msgid
    refused = title("Bel 06-12345678")
    assert isinstance(refused, Invalid)
    assert "phone number" in TR.render(refused.reason, "en")
    # Hidden characters do not hide a number.
    assert isinstance(
        without_personal_data(validate_description)("Mijn idee, bel 06\u200b1234\u200b5678 voor meer"),
        Invalid,
    )


# --- in the intake --------------------------------------------------------------------------------------

NUMBER = "06-12345678"
IDEA = "Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten."  # what answer_until answers
DIGITS = "0612345678"


def said(chat: Chat, since: int) -> str:
    """Everything the bot said since reply number ``since``, in the chat's language."""
    return "\n".join(
        TR.render(m, chat.language) for reply in chat.replies[since:] for m in (reply.text, *reply.extra)
    )


def assert_not_echoed(text: str) -> None:
    assert DIGITS not in re.sub(r"\D", "", text), text


@pytest.mark.parametrize(
    ("step", "with_data", "clean", "key"),
    [
        ("title", f"Bel {NUMBER}", "Bankjes in het park", "title"),
        (
            "idea",
            f"Drie bankjes bij de speeltuin. Mail me op anna@example.nl of bel {NUMBER}.",
            "Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten.",
            "description",
        ),
        ("own", "Ik verf de bankjes. Mijn BSN is 1234.56.782.", "Ik verf de bankjes.", "own_contribution"),
    ],
)
def test_an_intake_answer_with_personal_data_is_refused_and_asked_again(
    step: str, with_data: str, clean: str, key: str
) -> None:
    chat = Chat()
    answer_until(chat, step)
    before = len(chat.replies)
    chat.text(with_data)
    assert chat.step == step
    assert chat.conv.draft is not None and key not in chat.conv.draft.answers
    heard = said(chat, before)
    assert "I see " in heard and "Please send your text again" in heard
    assert_not_echoed(heard)
    assert "anna@example.nl" not in heard and "1234.56.782" not in heard
    chat.text(clean)
    assert chat.step != step and chat.conv.draft.answers[key] == clean


def test_a_bsn_in_the_idea_gets_the_bsn_message() -> None:
    chat = Chat(language="nl")
    chat.command("nieuw")
    chat.text("Bankjes in het park")
    before = len(chat.replies)
    chat.text("Mijn burgerservicenummer is 111222333, ik wil een bankje in het park.")
    heard = said(chat, before)
    assert "burgerservicenummer (BSN)" in heard and "Deel je BSN nooit in een chat." in heard
    assert "111222333" not in heard and chat.step == "idea"


def test_changing_the_idea_from_the_summary_to_one_with_a_number_keeps_the_old_idea() -> None:
    chat = Chat()
    answer_until(chat, "confirm")
    chat.press("Change something")
    chat.press("Your idea")
    chat.text(f"Drie bankjes bij de speeltuin, bel {NUMBER} voor meer informatie.")
    assert chat.step == "idea"
    assert chat.conv.draft is not None
    assert (
        chat.conv.draft.answers["description"]
        == "Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten."
    )
    chat.text("Vier bankjes bij de speeltuin, zodat ouderen kunnen rusten.")
    assert chat.step == "confirm"


def test_name_and_contact_questions_are_not_guarded() -> None:
    chat = Chat()
    answer_until(chat, "contact")
    chat.text(NUMBER)  # the contact question is where a phone number belongs
    assert chat.step == "name"
    assert chat.conv.draft is not None and chat.conv.draft.answers["contact_phone"] == "+31612345678"


def test_amounts_and_neighbours_are_not_refused() -> None:
    chat = Chat()
    answer_until(chat, "neighbours")
    chat.text("ongeveer 120")
    assert chat.step == "needs"
    answer_until(chat, "amount")
    chat.text("€ 12.500")
    assert chat.step == "photo"


# --- messages to the broker and the reason to stop ----------------------------------------------------

MOMENT = datetime(2026, 11, 25, tzinfo=UTC)
CASE = CaseView(
    id=1,
    reference="INI-2026-0001",
    title="Bankjes in het park",
    description="Drie bankjes bij de speeltuin.",
    theme_code="groen",
    wijk_code=None,
    own_contribution=None,
    needs=(),
    amount_cents=None,
    neighbours=None,
    photo_file_id=None,
    contact_name="Anna",
    contact_phone=None,
    contact_email=None,
    status="in_gesprek",
    status_changed_at=MOMENT,
    created_at=MOMENT,
    resident_user_id=7,
    resident_chat_id=7,
)


def send_case_text(chat: Chat, pending: Pending, text: str) -> resident.Outcome:
    chat.conv = resident.Conversation(pending=pending)
    event = Event(kind=EventKind.TEXT, user_id=7, chat_id=7, language_code="en", text=text)
    return resident.handle(chat.conv, event, chat.ctx, CASE)


@pytest.mark.parametrize("action", ["message_broker", "withdraw"])
@pytest.mark.parametrize("text", ["Bel me op 06-12345678", "Mijn BSN is 1234.56.782", "anna@example.nl"])
def test_a_message_or_reason_with_personal_data_is_not_sent_and_can_be_sent_again(
    action: str, text: str
) -> None:
    chat = Chat()
    pending = Pending(action, CASE.reference)
    refused = send_case_text(chat, pending, text)
    assert refused.commands == ()
    assert refused.conversation.pending == pending  # still waiting for the text
    heard = "\n".join(TR.render(m, "en") for r in refused.replies for m in (r.text, *r.extra))
    assert "Please send your text again" in heard
    assert_not_echoed(heard)
    assert "1234.56.782" not in heard and "anna@example.nl" not in heard
    buttons = [TR.render(b.label, "en") for r in refused.replies for row in r.buttons for b in row]
    assert buttons == (["Cancel"] if action == "message_broker" else ["No, go on"])  # a way out stays
    sent = send_case_text(chat, pending, "Graag na vijf uur.")
    expected = MessageBroker if action == "message_broker" else ChangeStatus
    assert [type(c) for c in sent.commands] == [expected]
