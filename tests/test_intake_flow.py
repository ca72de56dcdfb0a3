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
from flows.events import Event, EventKind, Location, Photo, Reply
from flows.intake import INTAKE, intake_context
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
        "title": lambda: chat.text("Bankjes in het park"),
        "idea": lambda: chat.text("Drie bankjes bij de speeltuin, zodat ouderen kunnen rusten."),
        "theme": lambda: chat.press("Greenery"),
        "wijk": lambda: chat.press("Waterkwartier"),
        "own": lambda: chat.text("Wij verven de bankjes en houden ze schoon."),
        "needs": lambda: (chat.press("Money"), chat.press("Done")),
        "amount": lambda: chat.text("€ 1.250"),
        "neighbours": lambda: chat.text("ongeveer 12"),
        "photo": lambda: chat.photo(),
        "name": lambda: chat.text("Anna"),
        "contact": lambda: chat.text("06-12345678"),
        "publish": lambda: chat.press("Yes"),
        "consent": lambda: chat.press("I agree"),
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
    answer_until(chat, "summary")
    summary = chat.last()
    assert "Bankjes in het park" in summary
    assert "Waterkwartier" in summary
    assert "€1,250" in summary
    assert "+31612345678" in summary
    chat.press("Submit")
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


def test_questions_say_how_far_along_the_resident_is() -> None:
    chat = Chat()
    chat.command("nieuw")
    assert "Question 1 of 12" in chat.last()


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
    assert chat.step == "idea"
    assert chat.conv.draft is not None
    assert chat.conv.draft.answers["title"] == "Bankjes in het park"


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
    assert chat.step == "title"
    assert chat.conv.draft is not None and "title" not in chat.conv.draft.answers


def test_declining_consent_deletes_the_draft() -> None:
    chat = Chat()
    answer_until(chat, "consent")
    chat.press("I do not agree")
    assert chat.conv.draft is None
    assert "deleted your answers" in chat.last()
    assert not chat.commands


def test_change_from_the_summary_returns_to_the_summary() -> None:
    chat = Chat()
    answer_until(chat, "summary")
    chat.press("Change something")
    chat.press("Title")
    assert chat.step == "title"
    chat.text("Bloembakken in de straat")
    assert chat.step == "summary"
    assert "Bloembakken in de straat" in chat.last()


def test_choosing_money_while_changing_needs_asks_the_amount_then_returns() -> None:
    chat = Chat()
    answer_until(chat, "needs")
    chat.press("Materials")
    chat.press("Done")
    answer_until(chat, "summary")
    chat.press("Change something")
    chat.press("What you need")
    chat.press("Money")
    chat.press("Done")
    assert chat.step == "amount"
    chat.text("300")
    assert chat.step == "summary"
    assert "€300" in chat.last()


def test_back_while_changing_returns_to_the_summary() -> None:
    chat = Chat()
    answer_until(chat, "summary")
    chat.press("Change something")
    chat.press("Your name")
    chat.press("Back")
    assert chat.step == "summary"


def _submitted_draft(chat: Chat) -> SubmitInitiative:
    chat.press("Submit")
    command = chat.commands[-1]
    assert isinstance(command, SubmitInitiative)
    return command


def test_the_resident_is_asked_whether_the_idea_may_be_shown_without_their_name() -> None:
    chat = Chat()
    answer_until(chat, "publish")
    shown = chat.last()
    assert "Question 11 of 12" in shown
    assert "May the municipality show your idea without your name?" in shown
    assert "Never your name or contact details" in shown
    assert [label for label, _ in chat.buttons()] == ["Yes", "No", "« Back", "Stop"]


def test_yes_to_publishing_is_on_the_summary_and_in_the_draft() -> None:
    chat = Chat()
    answer_until(chat, "publish")
    chat.press("Yes")
    assert chat.step == "consent"
    answer_until(chat, "summary")
    assert "Show without your name: yes, with your description" in chat.last()
    assert _submitted_draft(chat).draft.publish_consent is True


def test_no_to_publishing_keeps_the_description_private() -> None:
    chat = Chat()
    answer_until(chat, "publish")
    chat.press("No")
    answer_until(chat, "summary")
    assert "Show without your name: no, only the title, theme and neighbourhood" in chat.last()
    assert _submitted_draft(chat).draft.publish_consent is False


def test_back_from_the_publish_question_goes_to_the_contact_question_and_back_again() -> None:
    chat = Chat()
    answer_until(chat, "publish")
    chat.press("Back")
    assert chat.step == "contact"
    chat.press("Telegram is fine")
    assert chat.step == "publish"
    chat.press("Yes")
    chat.press("Back")
    assert chat.step == "publish"
    assert chat.conv.draft is not None and chat.conv.draft.answers["publish"] == "ja"


def test_publishing_can_be_changed_from_the_summary() -> None:
    chat = Chat()
    answer_until(chat, "summary")
    chat.press("Change something")
    chat.press("Show without your name")
    assert chat.step == "publish"
    chat.press("No")
    assert chat.step == "summary"
    assert "Show without your name: no" in chat.last()
    assert _submitted_draft(chat).draft.publish_consent is False


def test_a_draft_from_before_the_question_submits_without_an_answer() -> None:
    chat = Chat()
    answer_until(chat, "summary")
    assert chat.conv.draft is not None
    answers = {k: v for k, v in chat.conv.draft.answers.items() if k != "publish"}
    chat.conv = replace(chat.conv, draft=replace(chat.conv.draft, answers=answers))
    assert _submitted_draft(chat).draft.publish_consent is None


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
    answer_until(chat, "summary")
    chat.press("Submit")
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
    while chat.step not in ("summary", None):
        step = chat.step
        seen.add(step)
        for kind in (EventKind.UNSUPPORTED, EventKind.EDITED):
            chat.other(kind)
            assert chat.step == step
            assert "?" in chat.last() or "Done" in chat.last()
        if step != "photo":
            chat.photo()
            assert chat.step == step
        answer_until(chat, INTAKE.steps[[s.name for s in INTAKE.steps].index(step) + 1].name)
    assert {"title", "theme", "wijk", "needs", "photo", "consent"} <= seen


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
    assert "What do you want?" in chat.last()
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
