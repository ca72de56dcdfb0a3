"""The resident's conversation as pure logic: no Telegram, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.i18n import Translator
from bot.settings import load_municipality, resolve_config_path
from flows import engine, resident
from flows.commands import SetLanguage, ShowMyInitiatives, SubmitInitiative
from flows.events import Contact, Event, EventKind, Location, Media, Photo, Reply
from flows.intake import INTAKE, InitiativeDraft, intake_context
from flows.resident import Context, Conversation

ZUTPHEN = load_municipality(resolve_config_path("zutphen"))
DEVENTER = load_municipality(resolve_config_path("deventer"))
TR = Translator(("nl", "en"))
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


class Chat:
    """A resident talking to the pure flows; renders replies in English to assert on them."""

    def __init__(self, municipality=ZUTPHEN, language: str = "en") -> None:
        self.conv = Conversation()
        self.now = T0
        self.language = language
        self.ctx = Context(now=T0, flow=intake_context(municipality), first_steps_days=7)
        self.replies: list[Reply] = []
        self.commands: list[object] = []
        self.notices: list[object] = []
        self._message_ids = 0

    def _event(self, kind: EventKind, **kw: object) -> resident.Outcome:
        kw.setdefault("first_name", None)
        event = Event(kind=kind, user_id=7, chat_id=7, language_code=self.language, **kw)  # type: ignore[arg-type]
        ctx = replace(self.ctx, now=self.now)
        out = resident.handle(self.conv, event, ctx)
        self.conv = replace(out.conversation, updated_at=self.now)
        self.replies.extend(out.replies)
        self.commands.extend(out.commands)
        self.notices.append(out.notice)
        return out

    def text(self, text: str) -> resident.Outcome:
        return self._event(EventKind.TEXT, text=text)

    def command(self, name: str) -> resident.Outcome:
        return self._event(EventKind.COMMAND, command=name, text=f"/{name}")

    def location(self, lat: float, lon: float) -> resident.Outcome:
        return self._event(EventKind.LOCATION, location=Location(lat, lon))

    def photo(self) -> resident.Outcome:
        return self._event(EventKind.PHOTO, photo=Photo("file-1", "uniq-1", 1280, 960, 1000))

    def other(self, kind: EventKind = EventKind.UNSUPPORTED) -> resident.Outcome:
        return self._event(kind)

    def data(self, data: str) -> resident.Outcome:
        return self._event(EventKind.BUTTON, button=data, message_id=1, callback_query_id="q")

    def buttons(self) -> list[tuple[str, str]]:
        for reply in reversed(self.replies):
            if reply.buttons:
                return [(TR.render(b.label, self.language), b.data) for row in reply.buttons for b in row]
        return []

    def press(self, label: str) -> resident.Outcome:
        matches = [data for text, data in self.buttons() if label.lower() in text.lower()]
        assert matches, f"no button {label!r} in {self.buttons()}"
        return self.data(matches[0])

    def last(self) -> str:
        reply = self.replies[-1]
        return "\n\n".join(TR.render(m, self.language) for m in (reply.text, *reply.extra))

    @property
    def step(self) -> str | None:
        in_intake = self.conv.draft is not None and self.conv.mode == resident.INTAKE_MODE
        return self.conv.draft.step if in_intake and self.conv.draft else None


def answer_until(chat: Chat, step: str) -> None:
    """Give valid answers until the chat reaches ``step``."""
    answers = {
        "idea": lambda: chat.text("Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten."),
        "check": lambda: chat.press("Other title"),
        "title": lambda: chat.text("Bankjes in het park"),
        "theme": lambda: chat.press("Greenery"),
        "wijk": lambda: chat.press("Waterkwartier"),
        "own": lambda: chat.text("Wij verven de bankjes en houden ze schoon."),
        "needs": lambda: (chat.press("Money"), chat.press("Done")),
        "amount": lambda: chat.text("€ 1.250"),
        "neighbours": lambda: chat.text("ongeveer 12"),
        "photo": lambda: chat.photo(),
        "contact": lambda: chat.text("06-12345678"),
        "name": lambda: chat.text("Anna"),
    }
    if chat.step is None:
        chat.command("nieuw")
    while chat.step != step:
        before = chat.step
        answers[chat.step]()  # type: ignore[index]
        assert chat.step != before, f"stuck at {before}: {chat.last()}"


def test_start_greets_and_offers_the_three_choices() -> None:
    chat = Chat()
    chat.command("start")
    labels = [label for label, _ in chat.buttons()]
    assert labels == ["New initiative", "My initiatives", "Help"]


def test_dutch_is_the_default_language() -> None:
    assert resident.language_for(None, None) == "nl"
    assert resident.language_for(None, "de") == "nl"
    assert resident.language_for(None, "en-GB") == "en"
    assert resident.language_for("nl", "en") == "nl"


def test_full_intake_submits_a_complete_draft() -> None:
    chat = Chat()
    answer_until(chat, "confirm")
    summary = chat.last()
    assert "Bankjes in het park" in summary
    assert "Waterkwartier" in summary
    assert "€1,250" in summary
    assert "+31612345678" in summary
    chat.press("I agree, send my idea")
    (command,) = chat.commands
    assert isinstance(command, SubmitInitiative)
    draft = command.draft
    assert draft.wijk_code == "WK030101"
    assert draft.amount_cents == 125_000
    assert draft.needs == ("geld",)
    assert draft.neighbours == 12
    assert draft.photo_file_id == "file-1"
    assert draft.contact_phone == "+31612345678"
    assert chat.conv.draft is None


def test_the_first_question_asks_for_the_idea_and_says_a_voice_message_is_fine() -> None:
    chat = Chat()
    chat.command("nieuw")
    assert chat.step == "idea"
    assert "What is your idea?" in chat.last() and "voice message" in chat.last()


def test_invalid_answer_is_explained_and_the_question_asked_again() -> None:
    chat = Chat()
    answer_until(chat, "title")
    chat.text("Hoi")
    assert chat.step == "title"
    assert "too short" in chat.last()
    assert "What is the title" in chat.last()


def test_back_returns_to_the_previous_question_with_the_answer_kept() -> None:
    chat = Chat()
    answer_until(chat, "theme")
    chat.press("Back")
    assert chat.step == "title"
    assert chat.conv.draft is not None
    assert chat.conv.draft.answers["title"] == "Bankjes in het park"
    # The earlier answer is shown, with a button to keep it instead of typing it again.
    assert "Your answer now: “Bankjes in het park”" in chat.last()
    chat.press("Keep this answer")
    assert chat.step == "theme"
    assert chat.conv.draft is not None and chat.conv.draft.answers["title"] == "Bankjes in het park"


def test_stop_keeps_the_draft_and_the_menu_offers_to_continue() -> None:
    chat = Chat()
    answer_until(chat, "wijk")
    chat.press("Stop")
    assert chat.conv.mode == resident.HOME
    assert "saved your answers" in chat.last()
    chat.press("Continue")
    assert chat.conv.mode == resident.INTAKE_MODE
    assert chat.step == "wijk"


def test_stop_command_works_like_the_stop_button() -> None:
    chat = Chat()
    answer_until(chat, "idea")
    chat.command("stop")
    assert chat.conv.mode == resident.HOME and chat.conv.draft is not None


def test_coming_back_after_days_offers_to_continue() -> None:
    chat = Chat()
    answer_until(chat, "needs")
    chat.now = T0 + timedelta(days=3)
    chat.text("hallo")
    assert "Bankjes in het park" in chat.last()
    assert chat.conv.draft is not None and chat.conv.draft.step == "needs"
    chat.press("Continue")
    assert chat.step == "needs"
    assert "What do you need" in chat.last()


def test_start_again_deletes_the_old_answers() -> None:
    chat = Chat()
    answer_until(chat, "theme")
    chat.command("start")
    chat.press("Start again")
    assert chat.step == "idea"
    assert chat.conv.draft is not None and "title" not in chat.conv.draft.answers


def test_declining_consent_asks_once_more_then_deletes_the_draft() -> None:
    chat = Chat()
    answer_until(chat, "confirm")
    chat.press("I do not agree")
    assert chat.step == "decline" and "Are you sure?" in chat.last()
    chat.press("No, back to my idea")
    assert chat.step == "confirm" and "Please check your initiative" in chat.last()
    chat.press("I do not agree")
    chat.press("Yes, delete everything")
    assert chat.conv.draft is None
    assert "deleted your answers" in chat.last()
    assert not chat.commands


def test_change_from_the_summary_shows_the_answer_and_returns_to_the_summary() -> None:
    chat = Chat()
    answer_until(chat, "confirm")
    chat.press("Change something")
    chat.press("Title")
    assert chat.step == "title"
    assert "Your answer now: “Bankjes in het park”" in chat.last()
    chat.text("Bloembakken in de straat")
    assert chat.step == "confirm"
    assert "Bloembakken in de straat" in chat.last()


def test_choosing_money_while_changing_needs_asks_the_amount_then_returns() -> None:
    chat = Chat()
    answer_until(chat, "needs")
    chat.press("Materials")
    chat.press("Done")
    answer_until(chat, "confirm")
    chat.press("Change something")
    chat.press("What you need")
    chat.press("Money")
    chat.press("Done")
    assert chat.step == "amount"
    chat.text("300")
    assert chat.step == "confirm"
    assert "€300" in chat.last()


def test_back_while_changing_returns_to_the_summary() -> None:
    chat = Chat()
    answer_until(chat, "confirm")
    chat.press("Change something")
    chat.press("Your name")
    chat.press("Back")
    assert chat.step == "confirm"


def _submitted_draft(chat: Chat) -> SubmitInitiative:
    chat.press("I agree, send my idea")
    command = chat.commands[-1]
    assert isinstance(command, SubmitInitiative)
    return command


def test_the_description_is_not_published_unless_the_resident_ticks_it() -> None:
    chat = Chat()
    answer_until(chat, "confirm")
    assert "☐ Also show my idea on the open data page (without my name)" in [
        label for label, _ in chat.buttons()
    ]
    assert _submitted_draft(chat).draft.publish_consent is False


def test_ticking_publication_on_the_summary_changes_the_same_message_and_the_draft() -> None:
    chat = Chat()
    answer_until(chat, "confirm")
    chat.press("Also show my idea")
    assert chat.replies[-1].edit and chat.step == "confirm"
    assert "☑ Also show my idea on the open data page (without my name)" in [
        label for label, _ in chat.buttons()
    ]
    chat.press("Also show my idea")
    assert "☐ Also show my idea" in " ".join(label for label, _ in chat.buttons())
    chat.press("Also show my idea")
    assert _submitted_draft(chat).draft.publish_consent is True


def test_the_whole_privacy_text_is_one_tap_away_on_the_summary() -> None:
    chat = Chat()
    answer_until(chat, "confirm")
    assert "We delete them 24 months after your initiative has ended." in chat.last()
    assert "privacy@zutphen.nl" not in chat.last()
    chat.press("Read more about your data")
    assert "privacy@zutphen.nl" in chat.last() and "Telegram, a company outside the EU" in chat.last()
    assert "Read more about your data" not in [label for label, _ in chat.buttons()]


def test_a_draft_saved_at_a_step_that_no_longer_exists_continues_at_the_summary() -> None:
    chat = Chat()
    answer_until(chat, "confirm")
    assert chat.conv.draft is not None
    old = {**chat.conv.draft.to_json(), "step": "consent"}
    chat.conv = resident.Conversation.from_row("intake", {"draft": old}, T0)
    assert chat.conv.draft is not None and chat.conv.draft.step == "confirm"
    assert _submitted_draft(chat).draft.title == "Bankjes in het park"


def test_wijk_from_a_postcode() -> None:
    chat = Chat()
    answer_until(chat, "wijk")
    chat.text("7231 AB")
    assert chat.conv.draft is not None and chat.conv.draft.answers["wijk"] == "WK030105"


def test_unknown_postcode_asks_for_a_button() -> None:
    chat = Chat()
    answer_until(chat, "wijk")
    chat.text("1012 AB")
    assert chat.step == "wijk"
    assert "postcode" in chat.last()


def test_wijk_from_a_shared_location() -> None:
    chat = Chat()
    answer_until(chat, "wijk")
    warnsveld = ZUTPHEN.wijk("WK030105")
    assert warnsveld is not None
    chat.location(warnsveld.centre.lat, warnsveld.centre.lon)
    assert chat.conv.draft is not None and chat.conv.draft.answers["wijk"] == "WK030105"


def test_location_outside_the_municipality_is_refused_kindly() -> None:
    chat = Chat()
    answer_until(chat, "wijk")
    chat.location(52.3676, 4.9041)  # Amsterdam
    assert chat.step == "wijk"
    assert "not in the municipality" in chat.last()


def test_i_dont_know_the_wijk_is_allowed() -> None:
    chat = Chat()
    answer_until(chat, "wijk")
    chat.press("I don't know")
    answer_until(chat, "confirm")
    chat.press("I agree, send my idea")
    command = chat.commands[-1]
    assert isinstance(command, SubmitInitiative) and command.draft.wijk_code is None


def test_many_wijken_are_paged() -> None:
    chat = Chat(DEVENTER)
    answer_until(chat, "theme")
    chat.press("Greenery")
    first_page = [label for label, _ in chat.buttons()]
    assert "Bathmen" not in first_page
    chat.press("More")
    assert "Bathmen" in [label for label, _ in chat.buttons()]
    chat.press("Bathmen")
    assert chat.step == "own"


def test_optional_steps_can_be_skipped() -> None:
    chat = Chat()
    answer_until(chat, "own")
    chat.press("Skip")
    assert chat.step == "neighbours"
    chat.press("I don't know yet")
    assert chat.step == "needs"


def test_needs_require_at_least_one_choice() -> None:
    chat = Chat()
    answer_until(chat, "needs")
    out = chat.press("Done")
    assert chat.step == "needs"
    assert out.notice is not None and out.notice.text is not None


def test_a_button_of_an_earlier_question_is_refused() -> None:
    chat = Chat()
    answer_until(chat, "theme")
    old = next(data for _, data in chat.buttons())
    chat.press("Greenery")
    chat.data(old)
    assert chat.step == "wijk"
    assert "earlier question" in chat.last()


@pytest.mark.parametrize(
    "forged",
    ["", "x", "intake:theme:nope", "intake:nosuchstep:1", "menu:rm -rf", "lang:xx", ":::", "intake::"],
)
def test_forged_callback_data_changes_nothing(forged: str) -> None:
    chat = Chat()
    answer_until(chat, "theme")
    before = chat.conv
    chat.data(forged)
    assert chat.conv.draft == before.draft


def test_wrong_kind_of_input_at_every_step_gets_a_kind_reply_and_the_question_again() -> None:
    chat = Chat()
    chat.command("nieuw")
    seen = set()
    order = [s.name for s in INTAKE.steps]
    while chat.step not in ("confirm", None):
        step = chat.step
        seen.add(step)
        for kind in (EventKind.UNSUPPORTED, EventKind.EDITED, EventKind.DOCUMENT):
            chat.other(kind)
            assert chat.step == step
            assert "?" in chat.last() or "Done" in chat.last()
        if step != "photo":
            chat.photo()
            assert chat.step == step
        later = [name for name in order[order.index(step) + 1 :] if name != "amount"]
        answer_until(chat, later[0] if later[0] != "neighbours" else "needs")
    assert {"idea", "check", "title", "theme", "wijk", "needs", "photo", "contact", "name"} <= seen


def test_group_chats_are_told_to_use_a_private_chat() -> None:
    chat = Chat()
    event = Event(kind=EventKind.TEXT, user_id=7, chat_id=-100, text="hoi", private_chat=False)
    out = resident.handle(Conversation(), event, chat.ctx)
    assert "private chat" in TR.render(out.replies[0].text, "en")


def test_language_choice_becomes_a_command() -> None:
    chat = Chat()
    chat.command("taal")
    chat.press("English")
    assert any(isinstance(c, SetLanguage) and c.language == "en" for c in chat.commands)


def test_my_initiatives_is_a_command_and_lists_with_status_and_date() -> None:
    chat = Chat()
    chat.command("start")
    chat.press("My initiatives")
    assert any(isinstance(c, ShowMyInitiatives) for c in chat.commands)
    line = resident.InitiativeLine("INI-2026-0042", "Bankjes", "ingediend", T0.date())
    reply = resident.my_initiatives(chat.conv, [line])
    text = "\n".join(TR.render(m, "nl") for m in (reply.text, *reply.extra))
    assert "INI-2026-0042" in text and "Bankjes" in text and "25 november 2026" in text


def test_help_in_the_middle_of_the_intake_repeats_the_question() -> None:
    chat = Chat()
    answer_until(chat, "idea")
    chat.command("help")
    assert "What is your idea?" in chat.last()
    assert chat.step == "idea"


def test_every_flow_step_leads_somewhere_that_exists() -> None:
    engine.check(INTAKE)
    diagram = engine.mermaid(INTAKE)
    assert diagram.startswith("stateDiagram-v2")
    assert "needs --> amount" in diagram


def test_callback_data_fits_telegram_limit_for_every_button() -> None:
    for municipality in (ZUTPHEN, DEVENTER):
        ctx = intake_context(municipality)
        for step in INTAKE.steps:
            state = engine.FlowState(step=step.name, history=("x",))
            for page in range(3):
                reply = engine.question(INTAKE, replace(state, page=page), ctx)
                for row in reply.buttons:
                    for button in row:
                        assert len(button.data.encode()) <= 64


events = st.one_of(
    st.builds(lambda s: ("text", s), st.text(max_size=300)),
    st.builds(lambda s: ("data", s), st.text(max_size=70)),
    st.sampled_from([("photo", ""), ("other", ""), ("edited", ""), ("cmd", "start"), ("cmd", "stop")]),
    st.sampled_from([("press", i) for i in range(12)]),
    st.builds(lambda a, b: ("loc", (a, b)), st.floats(-90, 90), st.floats(-180, 180)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, max_size=40))
def test_no_sequence_of_input_crashes_the_flow_or_loses_the_draft(seq: list[tuple[str, object]]) -> None:
    chat = Chat()
    chat.command("nieuw")
    for kind, value in seq:
        had_draft = chat.conv.draft is not None
        if kind == "text":
            chat.text(str(value))
        elif kind == "data":
            chat.data(str(value))
        elif kind == "photo":
            chat.photo()
        elif kind == "other":
            chat.other()
        elif kind == "edited":
            chat.other(EventKind.EDITED)
        elif kind == "cmd":
            chat.command(str(value))
        elif kind == "press":
            buttons = chat.buttons()
            if buttons:
                chat.data(buttons[int(value) % len(buttons)][1])  # type: ignore[call-overload]
        elif kind == "loc":
            lat, lon = value  # type: ignore[misc]
            chat.location(lat, lon)
        # Every reply renders in both languages, and a draft only disappears by consent or submission.
        for reply in chat.replies[-3:]:
            for lang in ("nl", "en"):
                TR.render(reply.text, lang)
        if had_draft and chat.conv.draft is None:
            pressed = chat.replies and chat.commands
            assert pressed or "deleted" in chat.last() or "start again" in chat.last().lower()


# --- the resident's own words and Telegram's own buttons ----------------------------------------------


def test_an_idea_typed_into_the_menu_starts_the_intake_with_it_and_a_greeting_does_not() -> None:
    chat = Chat()
    chat.command("start")
    chat.text("hoi")
    assert chat.step is None and "Type it here in a few sentences" in chat.last()
    chat.text("Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten.")
    assert chat.step == "check"
    assert chat.conv.draft is not None
    assert (
        chat.conv.draft.answers["description"]
        == "Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten."
    )
    assert "“Drie bankjes bij de speeltuin”" in chat.last()


@pytest.mark.parametrize(
    ("typed", "step", "said"),
    [
        ("stoppen", None, "saved your answers"),
        ("Terug", "title", "What is the title"),
        ("help?", "theme", "Tap"),
    ],
)
def test_stop_back_and_help_typed_as_words_work_like_the_buttons(
    typed: str, step: str | None, said: str
) -> None:
    chat = Chat()
    answer_until(chat, "theme")
    chat.text(typed)
    assert chat.step == step and said in chat.last()
    assert chat.conv.draft is not None and chat.conv.draft.answers.get("own_contribution") is None


def test_stoppen_is_not_stored_as_the_answer_to_what_you_do_yourself() -> None:
    chat = Chat()
    answer_until(chat, "own")
    chat.text("stoppen")
    assert chat.conv.mode == resident.HOME
    assert chat.conv.draft is not None and "own_contribution" not in chat.conv.draft.answers


def test_a_voice_message_can_be_the_idea_and_the_title_is_then_asked() -> None:
    chat = Chat()
    chat.command("nieuw")
    chat._event(EventKind.VOICE, media=Media("voice-1", "uv-1", duration=75, mime_type="audio/ogg"))
    assert chat.step == "title" and "Thanks for your voice message." in chat.last()
    answer_until(chat, "confirm")
    assert "Voice message: yes" in chat.last()
    draft = _submitted(chat)
    assert draft.idea_voice_file_id == "voice-1" and draft.description.startswith("🎤")


def test_the_own_contribution_with_a_count_answers_the_neighbours_question_too() -> None:
    chat = Chat()
    answer_until(chat, "own")
    chat.text("We doen het samen met 6 buren uit de straat.")
    assert chat.step == "needs"
    assert chat.conv.draft is not None and chat.conv.draft.answers["neighbours"] == 6


def test_the_own_contact_card_gives_number_and_name_and_skips_the_name_question() -> None:
    chat = Chat()
    answer_until(chat, "contact")
    assert chat.replies[-1].keyboard[0][0].request == "contact"
    chat._event(EventKind.CONTACT, contact=Contact("31612345678", "Fatima", "Amrani", user_id=7))
    assert chat.step == "confirm"
    assert any(reply.remove_keyboard for reply in chat.replies[-3:])
    draft = _submitted(chat)
    assert (draft.contact_phone, draft.contact_name) == ("+31612345678", "Fatima Amrani")


def test_someone_elses_contact_card_gives_the_number_and_the_name_is_still_asked() -> None:
    chat = Chat()
    answer_until(chat, "contact")
    chat._event(EventKind.CONTACT, contact=Contact("+31 6 87654321", "Kees"))
    assert chat.step == "name"
    assert "Yes, call me" not in " ".join(label for label, _ in chat.buttons())  # no Telegram name here


def test_the_name_on_the_telegram_profile_is_offered() -> None:
    chat = Chat()
    chat._event(EventKind.COMMAND, command="nieuw", text="/nieuw", first_name="Fatima")
    answer_until(chat, "name")
    chat.press("Yes, call me Fatima")
    assert _submitted(chat).contact_name == "Fatima"


def test_an_amount_range_in_words_is_kept_as_a_range() -> None:
    chat = Chat()
    answer_until(chat, "amount")
    chat.text("ongeveer 800 à 1000 euro")
    answer_until(chat, "confirm")
    assert "Amount: €800 to €1,000" in chat.last()
    draft = _submitted(chat)
    assert (draft.amount_cents, draft.amount_max_cents) == (80_000, 100_000)


def test_a_postcode_with_a_letter_o_is_read_and_one_the_table_lacks_is_said_honestly() -> None:
    chat = Chat()
    answer_until(chat, "wijk")
    chat.text("7299 AB")  # Zutphen's, but not in its postcode table
    assert chat.step == "wijk" and "I don't know in which neighbourhood that postcode is" in chat.last()
    chat.text("72O1 AB")
    assert chat.step == "own"
    assert chat.conv.draft is not None and chat.conv.draft.answers["wijk"] == "WK030100"


def _submitted(chat: Chat) -> InitiativeDraft:
    return _submitted_draft(chat).draft
