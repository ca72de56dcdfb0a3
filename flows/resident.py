"""What a resident can do in the chat: the menu, language, help, and the intake flow with its draft."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from flows import engine, lifecycle
from flows import resident_messages as messages
from flows.cases import (
    RESIDENT_PREFIX,
    STAFF_COMMANDS,
    CaseView,
    Notification,
    Pending,
    case_button,
    page_offset,
    parse_case_button,
)
from flows.commands import (
    ChangeStatus,
    Command,
    ErasePerson,
    ExplainErasure,
    ExportMyData,
    MessageBroker,
    RedeemInvite,
    SetLanguage,
    ShowMyInitiatives,
    ShowTimeline,
    SubmitInitiative,
)
from flows.engine import FlowContext, FlowState
from flows.events import Button, Event, EventKind, Notice, Reply
from flows.intake import INTAKE, RENAMED_STEPS, draft_from_answers
from flows.lifecycle import Actor, Refused, Role, Status, status_label
from flows.pii import personal_data_in, personal_data_refusal
from flows.privacy import FORGET_CANCEL, FORGET_PREFIX, forget_choice
from flows.resident_messages import HeldMessage, Talk
from flows.text import Msg, t, tn, verbatim
from flows.understanding import intent_of
from flows.validators import clean_text

HOME, INTAKE_MODE = "home", "intake"
_STEP_NAMES = frozenset(step.name for step in INTAKE.steps)
# What can begin an idea outside any question: words, a voice message, a photo.
IDEA_KINDS = frozenset({EventKind.TEXT, EventKind.VOICE, EventKind.PHOTO})
# After this long away, a returning resident is asked whether to go on with their draft.
RESUME_AFTER = timedelta(hours=12)
# The languages a resident can choose, each named in itself (on the /taal buttons and in the confirmation).
LANGUAGES: dict[str, str] = {
    "nl": "Nederlands",
    "en": "English",
    "tr": "Türkçe",
    "ar": "العربية",
    "pl": "Polski",
    "uk": "Українська",
}
DEFAULT_LANGUAGE = "nl"


@dataclass(frozen=True)
class Conversation:
    """A resident's chat state: where they are, and their unfinished draft (kept while they are away)."""

    mode: str = HOME
    draft: FlowState | None = None
    updated_at: datetime | None = None
    pending: Pending | None = None  # free text the bot waits for (a message, a note, a reason)
    # Messages kept while the resident is asked whom they are for (``flows.resident_messages``).
    held: tuple[HeldMessage, ...] = ()

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "draft": self.draft.to_json() if self.draft else None,
            "pending": self.pending.to_json() if self.pending else None,
        }
        if self.held:
            data["held"] = [m.to_json() for m in self.held]
        return data

    @classmethod
    def from_row(cls, mode: str, data: dict[str, object] | None, updated_at: datetime | None) -> Conversation:
        raw = (data or {}).get("draft")
        draft = FlowState.from_json(raw) if isinstance(raw, dict) else None
        if draft is not None and draft.step not in _STEP_NAMES:
            # A draft saved by an older version, at a step that was merged into another.
            draft = replace(draft, step=RENAMED_STEPS.get(draft.step, INTAKE.first.name), editing=False)
        pending = Pending.from_json((data or {}).get("pending"))
        held = messages.held_from_json((data or {}).get("held"))
        mode = mode if mode in (HOME, INTAKE_MODE) else HOME
        return cls(mode=mode, draft=draft, updated_at=updated_at, pending=pending, held=held)


@dataclass(frozen=True)
class Context:
    now: datetime
    flow: FlowContext
    first_steps_days: int  # working days until a broker makes contact, said after submitting
    bot_username: str = ""
    is_staff: bool = False  # a staff member's chat: free text does not start an idea


@dataclass(frozen=True)
class Outcome:
    conversation: Conversation
    replies: tuple[Reply, ...] = ()
    notice: Notice | None = None
    commands: tuple[Command, ...] = field(default_factory=tuple)
    notifications: tuple[Notification, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class InitiativeLine:
    """One initiative in "My initiatives"."""

    reference: str
    title: str
    status: str
    changed_on: date


def looks_like_invite(payload: str) -> bool:
    """Whether a /start payload has the form of an invitation code (Telegram allows A–Z a–z 0–9 _ -)."""
    return 16 <= len(payload) <= 64 and all(c.isascii() and (c.isalnum() or c in "-_") for c in payload)


def language_for(explicit: str | None, telegram_code: str | None) -> str:
    """The resident's language: their own choice, else Telegram's ("tr", "pt-br": the part before the
    dash), else Dutch."""
    if explicit in LANGUAGES:
        return explicit
    base = (telegram_code or "").replace("_", "-").split("-")[0].strip().lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def menu_buttons(conv: Conversation) -> tuple[tuple[Button, ...], ...]:
    rows: list[tuple[Button, ...]] = []
    if conv.draft is not None:
        title = conv.draft.answers.get("title")
        label = t("Continue “{title}”", title=str(title)) if title else t("Continue my idea")
        rows.append((Button(label, "menu:continue"),))
    rows.append((Button(t("New initiative"), "menu:new"),))
    rows.append((Button(t("My initiatives"), "menu:mine"), Button(t("Help"), "menu:help")))
    return tuple(rows)


def _menu(conv: Conversation, text: Msg, *extra: Msg) -> Reply:
    return Reply(text=text, buttons=menu_buttons(conv), extra=extra)


def _home(conv: Conversation, *msgs: Msg) -> Outcome:
    home = replace(conv, mode=HOME)
    text = msgs[0] if msgs else t("What do you want to do?")
    return Outcome(home, (_menu(home, text, *msgs[1:]),))


def needs_talk(conv: Conversation, event: Event) -> bool:
    """Whether routing this event needs the resident's cases (``Talk``): a message outside any question,
    or a swipe-reply (which may answer a broker even in the middle of the intake)."""
    if not event.private_chat or event.kind not in messages.MESSAGE_KINDS:
        return False
    if conv.pending is not None and conv.pending.action in _RESIDENT_INPUTS:
        return False
    in_intake = conv.mode == INTAKE_MODE and conv.draft is not None
    return not in_intake or event.reply_to_message_id is not None


def handle(
    conv: Conversation,
    event: Event,
    ctx: Context,
    case: CaseView | None = None,
    talk: Talk | None = None,
) -> Outcome:
    """One event in a private chat with a resident; ``case`` is the initiative a button or reply is about,
    ``talk`` what routing a message needs (``needs_talk``)."""
    if not event.private_chat:
        return Outcome(
            conv, (Reply(t("I only work in a private chat. Send me a direct message to share your idea.")),)
        )
    held, conv = conv.held, replace(conv, held=())  # kept only while asking whom they are for
    if event.kind is EventKind.COMMAND:
        return _command(replace(conv, pending=None), event, ctx)
    if event.kind is EventKind.BUTTON and (parsed := parse_case_button(event.button or "")):
        if parsed[0] == RESIDENT_PREFIX and parsed[2] == "send":
            return _send_held(replace(conv, pending=None), held, event, case)
        if parsed[0] == RESIDENT_PREFIX:
            return _case_button(replace(conv, pending=None), parsed[2], parsed[3], event, case)
        return Outcome(
            conv,
            (Reply(t("This button is only for staff of the municipality.")),),
            Notice(t("Not possible.")),
        )
    if event.kind is EventKind.BUTTON and event.button == messages.NEW_IDEA_BUTTON:
        return _held_as_idea(replace(conv, pending=None), held, event, ctx)
    pending = conv.pending
    if pending is not None and pending.action in _RESIDENT_INPUTS:
        if event.kind is EventKind.TEXT or (
            pending.action == "message_broker" and event.kind in messages.MESSAGE_KINDS
        ):
            return _case_text(replace(conv, pending=None), pending, event, case)
    if conv.pending is not None:
        conv = replace(conv, pending=None)  # anything else than the awaited text cancels it
    if talk is not None and event.kind in messages.MESSAGE_KINDS:
        if (routed := _route_message(conv, held, event, ctx, talk)) is not None:
            return routed
    if event.kind is EventKind.BUTTON and (event.button or "").startswith(("menu:", "lang:")):
        return _menu_button(conv, event, ctx)
    if event.kind is EventKind.BUTTON and (event.button or "").startswith(FORGET_PREFIX):
        return _forget_button(conv, event.button or "")
    if conv.mode == INTAKE_MODE and conv.draft is not None:
        away = conv.updated_at is not None and ctx.now - conv.updated_at > RESUME_AFTER
        if away and event.kind is not EventKind.BUTTON:
            return _offer_resume(conv, t("Welcome back!"))
        return _intake(conv, conv.draft, event, ctx)
    if event.kind is EventKind.BUTTON:
        return Outcome(
            conv,
            (_menu(conv, t("That button no longer works. What do you want to do?")),),
            notice=Notice(t("This button no longer works. See the newest message.")),
        )
    return start_with_idea(conv, event, ctx)


def may_start_an_idea(conv: Conversation, event: Event) -> bool:
    """Whether this event, outside any question, would start an idea (the dispatcher then checks that
    the sender is not staff)."""
    in_intake = conv.mode == INTAKE_MODE and conv.draft is not None
    return event.kind in IDEA_KINDS and conv.pending is None and not in_intake and event.private_chat


def start_with_idea(conv: Conversation, event: Event, ctx: Context) -> Outcome:
    """Something typed (or a voice note, or a photo) outside any question, that is not for a broker: an
    idea starts the intake with it as the answer to the first question; a greeting gets the menu."""
    if ctx.is_staff:
        return _home(conv, t("What do you want to do?"))
    intent = intent_of(event.text or "") if event.kind is EventKind.TEXT else None
    if intent == "help":
        return _help(conv, ctx)
    if intent is not None:  # "stop" or "back" with nothing going on
        return _home(conv, t("There is nothing to stop. What do you want to do?"))
    if conv.draft is not None:
        return _offer_resume(conv, t("You have already started an idea."))
    if event.kind is EventKind.TEXT and not looks_like_an_idea(event.text or ""):
        return _home(
            conv,
            t("Hello! Do you have an idea for your neighbourhood? Type it here in a few sentences."),
            t("What do you want to do?"),
        )
    if event.kind not in IDEA_KINDS:
        return _home(
            conv, t("Hello! I help you share an idea for your neighbourhood. What do you want to do?")
        )
    answers = _first_answers(event)
    if event.kind is EventKind.PHOTO and event.photo is not None:
        started = engine.start(
            INTAKE, ctx.flow, {**answers, "photo": event.photo.file_id}, before=(t("Thanks for the photo!"),)
        )
        return Outcome(Conversation(INTAKE_MODE, started.state), started.replies)
    state = engine.start(INTAKE, ctx.flow, answers).state
    # Accepted, the suggestion comes next; not usable as an idea (too short, with a phone number), the
    # first question says why, and the intake has begun either way.
    result = engine.advance(INTAKE, state, event, ctx.flow)
    return Outcome(Conversation(INTAKE_MODE, result.state), result.replies)


_GREETINGS = frozenset(
    {
        "hoi",
        "hallo",
        "hey",
        "hi",
        "hello",
        "goedemorgen",
        "goedemiddag",
        "goedenavond",
        "dag",
        "start",
        "menu",
    }
)


def looks_like_an_idea(text: str) -> bool:
    """Whether text typed into the menu reads as an idea (a few words), not a greeting or a slip."""
    words = [w for w in text.replace("!", " ").replace("?", " ").split() if w]
    if not words or " ".join(words).casefold() in _GREETINGS:
        return False
    return len(words) >= 4


def _first_answers(event: Event) -> dict[str, engine.JSON]:
    """What the intake knows before its first question: the name on the Telegram profile."""
    name = (event.first_name or "").strip()
    return {"profile_name": name} if name else {}


def _command(conv: Conversation, event: Event, ctx: Context) -> Outcome:
    name = event.command or ""
    in_intake = conv.mode == INTAKE_MODE and conv.draft is not None
    payload = event.command_args.split()[0] if event.command_args.split() else ""
    if name == "start" and looks_like_invite(payload):
        # A deep link https://t.me/<bot>?start=<code> from a staff invitation.
        return Outcome(conv, commands=(RedeemInvite(payload),))
    if name == "start":
        if in_intake or conv.draft is not None:
            return _offer_resume(conv, t("Welcome back!"))
        return _home(
            conv,
            t(
                "Hello! Do you have an idea for your neighbourhood? Type it here, in your own words. "
                "I help you share it with the municipality."
            ),
            t("What do you want to do?"),
        )
    if name in ("nieuw", "new"):
        return _new(conv, ctx, event)
    if name in ("mijn", "mine"):
        return Outcome(conv, commands=(ShowMyInitiatives(),))
    if name in ("help", "hulp"):
        return _help(conv, ctx)
    if name in ("mijngegevens", "mydata"):
        return Outcome(conv, commands=(ExportMyData(),))
    if name in ("stop", "stoppen"):
        if in_intake:
            return _pause(conv)
        return _home(conv, t("There is nothing to stop. What do you want to do?"))
    if name in ("taal", "language"):
        return Outcome(conv, (_language_question(),))
    if name in ("vergeetmij", "forgetme"):
        return Outcome(conv, commands=(ExplainErasure(),))
    again = _current_question(conv, ctx)
    if name in STAFF_COMMANDS:
        return Outcome(conv, (Reply(t("This command is only for staff of the municipality.")), *again))
    return Outcome(conv, (Reply(t("I do not know that command. Send /help to see what I can do.")), *again))


def _language_question() -> Reply:
    """Every language by its own name, two to a row: a resident who cannot read the current one still
    finds theirs."""
    buttons = [Button(verbatim(name), f"lang:{code}") for code, name in LANGUAGES.items()]
    rows = tuple(tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2))
    return Reply(t("Which language do you want?"), buttons=rows)


def _current_question(conv: Conversation, ctx: Context) -> tuple[Reply, ...]:
    if conv.mode == INTAKE_MODE and conv.draft is not None:
        return (engine.question(INTAKE, conv.draft, ctx.flow),)
    return ()


def _help(conv: Conversation, ctx: Context) -> Outcome:
    text = t(
        "I help you share an idea for your neighbourhood with the municipality.\n"
        "/nieuw – share a new idea\n"
        "/mijn – see your initiatives\n"
        "/taal – choose your language\n"
        "/stop – stop for now (your answers are saved)\n"
        "/mijngegevens – see what we store about you\n"
        "/vergeetmij – delete all your data\n"
        "/help – show this help"
    )
    if conv.mode == INTAKE_MODE and conv.draft is not None:
        hint = t(
            "You are sharing an idea now. Answer the question below. “Back” goes to the previous question."
        )
        help_ = Reply(text, extra=(hint,), buttons=_help_buttons())
        return Outcome(conv, (help_, *_current_question(conv, ctx)))
    return Outcome(conv, (Reply(text, buttons=(*menu_buttons(conv), *_help_buttons())),))


def _help_buttons() -> tuple[tuple[Button, ...], ...]:
    """The buttons under the help text, for what a resident may do about their data."""
    return ((Button(t("My data"), "menu:data"),), (Button(t("Delete my data"), "menu:forget"),))


def _forget_button(conv: Conversation, data: str) -> Outcome:
    """The answer to the erasure question: cancel, or erase (the dispatcher checks it is still true)."""
    if data == FORGET_CANCEL:
        return Outcome(conv, (_menu(conv, t("OK. I deleted nothing.")),), Notice())
    choice = forget_choice(data)
    if choice is None:
        return Outcome(conv, notice=Notice(t("This button no longer works. See the newest message.")))
    action, open_seen = choice
    return Outcome(conv, notice=Notice(), commands=(ErasePerson(action == "stop", open_seen),))


def _menu_button(conv: Conversation, event: Event, ctx: Context) -> Outcome:
    data = event.button or ""
    if data.startswith("lang:"):
        code = data.removeprefix("lang:")
        if code not in LANGUAGES:
            return Outcome(conv, notice=Notice(t("Not possible.")))
        # Rendered in the chosen language: the dispatcher switches before it writes the replies.
        done = Reply(t("OK. From now on I write in {language}.", language=LANGUAGES[code]))
        return Outcome(conv, (done, *_current_question(conv, ctx)), Notice(), (SetLanguage(code),))
    action = data.removeprefix("menu:")
    if action == "new":
        return _new(conv, ctx, event, notice=Notice())
    if action == "continue" and conv.draft is not None:
        resumed = engine.resume(INTAKE, conv.draft, ctx.flow, before=(t("Let's continue where you were."),))
        return Outcome(replace(conv, mode=INTAKE_MODE), resumed.replies, Notice())
    if action == "restart":
        started = engine.start(
            INTAKE,
            ctx.flow,
            _first_answers(event),
            before=(t("OK, we start again. I deleted your earlier answers."),),
        )
        return Outcome(Conversation(INTAKE_MODE, started.state), started.replies, Notice())
    if action == "discard":  # the retention sweep's reminder of an untouched draft
        home = Conversation(HOME, None)
        deleted = t("OK, I deleted your answers. You can start a new idea at any time.")
        return replace(_home(home, deleted), notice=Notice())
    if action == "mine":
        return Outcome(conv, notice=Notice(), commands=(ShowMyInitiatives(),))
    if action == "forget":
        return Outcome(conv, notice=Notice(), commands=(ExplainErasure(),))
    if action == "data":
        return Outcome(conv, notice=Notice(), commands=(ExportMyData(),))
    if action == "help":
        out = _help(conv, ctx)
        return replace(out, notice=Notice())
    if action == "menu":
        return replace(_home(conv), notice=Notice())
    return Outcome(conv, notice=Notice(t("This button no longer works. See the newest message.")))


def _new(conv: Conversation, ctx: Context, event: Event, notice: Notice | None = None) -> Outcome:
    if conv.draft is not None:
        return replace(_offer_resume(conv, t("You have already started an idea.")), notice=notice)
    started = engine.start(
        INTAKE,
        ctx.flow,
        _first_answers(event),
        before=(t("Great that you have an idea! I ask a few short questions. It takes about 3 minutes."),),
    )
    return Outcome(Conversation(INTAKE_MODE, started.state), started.replies, notice)


def _offer_resume(conv: Conversation, greeting: Msg) -> Outcome:
    assert conv.draft is not None
    title = conv.draft.answers.get("title")
    question = (
        t("You were working on your idea “{title}”. Do you want to continue?", title=str(title))
        if title
        else t("You were working on a new idea. Do you want to continue?")
    )
    buttons = (
        (Button(t("Continue"), "menu:continue"),),
        (Button(t("Start again (delete my answers)"), "menu:restart"),),
        (Button(t("Main menu"), "menu:menu"),),
    )
    return Outcome(replace(conv, mode=HOME), (Reply(greeting, buttons=buttons, extra=(question,)),))


def _pause(conv: Conversation) -> Outcome:
    return _home(
        replace(conv, mode=HOME),
        t("You stopped. I saved your answers. You can continue later from this menu."),
    )


def _intake(conv: Conversation, state: FlowState, event: Event, ctx: Context) -> Outcome:
    result = engine.advance(INTAKE, state, event, ctx.flow)
    replies = result.replies
    new = replace(conv, draft=result.state, mode=INTAKE_MODE)
    if result.exit == "@stop":
        out = _pause(new)
        return replace(out, replies=(*replies, *out.replies), notice=result.notice or Notice())
    if result.exit == "@summary":
        moved = engine.goto(INTAKE, result.state, "confirm", ctx.flow, editing=False)
        shown = _with_photo(moved.state, moved.replies)
        return Outcome(replace(new, draft=moved.state), (*replies, *shown), result.notice)
    if result.exit == "@edit":
        target = str(result.state.answers.get("change"))
        moved = engine.goto(INTAKE, result.state, target, ctx.flow, editing=True)
        return Outcome(replace(new, draft=moved.state), (*replies, *moved.replies), result.notice)
    if result.exit == "@discard":
        home = Conversation(HOME, None)
        out = _home(home, t("OK. I deleted your answers. You can start again at any time."))
        return replace(out, replies=(*replies, *out.replies), notice=result.notice)
    if result.exit == "@submit":
        # Consent was given in this sitting and confirmed by submitting, so it dates from now.
        draft = draft_from_answers(result.state.answers, consent_at=ctx.now)
        return Outcome(Conversation(HOME, None), replies, result.notice, (SubmitInitiative(draft),))
    if result.state.step == "confirm" and state.step != "confirm":
        replies = (*replies[:-1], *_with_photo(result.state, replies[-1:]))
    return Outcome(new, replies, result.notice)


def _with_photo(state: FlowState, summary: tuple[Reply, ...]) -> tuple[Reply, ...]:
    """The resident's photo goes just above the summary, so they check it too."""
    photo = state.answers.get("photo")
    if not photo:
        return summary
    return (Reply(t("Your photo"), photo_file_id=str(photo)), *summary)


def submitted(reference: str, ctx: Context) -> Outcome:
    """What the resident hears right after submitting."""
    text = t(
        "Thank you! Your initiative has been submitted. Your reference is {reference}.",
        reference=reference,
    )
    status = t("Status: {status}.", status=status_label("ingediend"))
    next_ = tn(
        "What happens next: an initiatiefmakelaar of the municipality "
        "will contact you within {n} working day.",
        "What happens next: an initiatiefmakelaar of the municipality "
        "will contact you within {n} working days.",
        ctx.first_steps_days,
    )
    conv = Conversation(HOME, None)
    return Outcome(conv, (_menu(conv, text, status, next_),))


def my_initiatives(conv: Conversation, lines: Sequence[InitiativeLine]) -> Reply:
    """The list shown under "My initiatives"."""
    if not lines:
        return _menu(conv, t("You have not submitted an initiative yet."))
    parts: list[Msg] = [t("Your initiatives:")]
    for line in lines:
        parts.append(
            t(
                "{reference} · {title}\nStatus: {status} (since {date})",
                reference=line.reference,
                title=line.title,
                status=status_label(line.status),
                date=line.changed_on,
            )
        )
    views = tuple(
        (
            Button(
                t("View {reference}", reference=line.reference),
                case_button(RESIDENT_PREFIX, line.reference, "tl"),
            ),
        )
        for line in lines[:20]
    )
    return Reply(parts[0], buttons=(*views, *menu_buttons(conv)), extra=tuple(parts[1:]))


def mermaid() -> str:
    """The resident's conversation around the intake flow, as a Mermaid state diagram."""
    return (
        "stateDiagram-v2\n"
        "    [*] --> home : /start\n"
        "    home --> intake : New initiative\n"
        "    intake --> home : Stop or /stop (draft kept)\n"
        "    intake --> resume : /start, or back after 12 hours\n"
        "    resume --> intake : Continue\n"
        "    resume --> intake : Start again (draft deleted)\n"
        "    home --> intake : Continue my idea\n"
        "    intake --> home : submitted, or consent refused (draft deleted)\n"
        "    home --> home : My initiatives, Help, /taal, My data\n"
        # A message outside any question (``flows.resident_messages``).
        "    home --> broker : a message while a case's broker spoke lately, or a swipe-reply\n"
        "    home --> ask : a message when it is unclear whom it is for (kept)\n"
        "    ask --> broker : To the broker of a case\n"
        "    ask --> intake : It is a new idea\n"
        "    broker --> home : ✔ Sent to the broker\n"
    )


_RESIDENT_INPUTS = frozenset({"message_broker", "withdraw"})


def case_buttons(reference: str, status: str) -> tuple[tuple[Button, ...], ...]:
    rows: list[tuple[Button, ...]] = [
        (Button(t("Message to my initiatiefmakelaar"), case_button(RESIDENT_PREFIX, reference, "msg")),),
        (Button(t("Timeline"), case_button(RESIDENT_PREFIX, reference, "tl")),),
    ]
    if not lifecycle.is_final(status):
        rows.append((Button(t("Stop my initiative"), case_button(RESIDENT_PREFIX, reference, "stop")),))
    return tuple(rows)


def _case_button(
    conv: Conversation, action: str, argument: str, event: Event, case: CaseView | None
) -> Outcome:
    if case is None or case.resident_user_id != event.user_id:
        return Outcome(conv, (Reply(t("I cannot find that initiative.")),), Notice(t("Not possible.")))
    if action == "tl":
        show = ShowTimeline(case.reference, for_resident=True, offset=page_offset(argument))
        return Outcome(conv, notice=Notice(), commands=(show,))
    if action == "msg":
        cancel = (Button(t("Cancel"), case_button(RESIDENT_PREFIX, case.reference, "cancel")),)
        ask = t("Write your message to your initiatiefmakelaar about {reference}.", reference=case.reference)
        return Outcome(
            replace(conv, pending=Pending("message_broker", case.reference)),
            (Reply(ask, buttons=(cancel,)),),
            Notice(),
        )
    if action == "stop":
        if lifecycle.is_final(case.status):
            return Outcome(
                conv, (Reply(t("This initiative has already ended.")),), Notice(t("Not possible."))
            )
        cancel = (Button(t("No, go on"), case_button(RESIDENT_PREFIX, case.reference, "cancel")),)
        ask = t(
            "Do you want to stop “{title}”? Write in a few words why. We tell your initiatiefmakelaar.",
            title=case.title,
        )
        return Outcome(
            replace(conv, pending=Pending("withdraw", case.reference)),
            (Reply(ask, buttons=(cancel,)),),
            Notice(),
        )
    if action == "cancel":
        return Outcome(conv, (_menu(conv, t("OK. Nothing was sent.")),), Notice())
    return Outcome(conv, (Reply(t("That button does not work here.")),), Notice(t("Not possible.")))


def _case_text(conv: Conversation, pending: Pending, event: Event, case: CaseView | None) -> Outcome:
    if case is None or case.resident_user_id != event.user_id or case.reference != pending.reference:
        return Outcome(conv, (_menu(conv, t("I cannot find that initiative.")),))
    text = clean_text(event.text or "", keep_newlines=True)
    attachment = messages.Attachment.of(event) if pending.action == "message_broker" else None
    if (not text and attachment is None) or len(text) > messages.MAX_TEXT:
        again = t("Please write between 1 and {max} characters.", max=messages.MAX_TEXT)
        return Outcome(replace(conv, pending=pending), (Reply(again),))
    if found := personal_data_in(text):
        # Not sent and not kept; the resident is still asked for the text, so they can just send it again.
        refusal = personal_data_refusal(found, during_intake=False)
        label = t("Cancel") if pending.action == "message_broker" else t("No, go on")
        cancel = (Button(label, case_button(RESIDENT_PREFIX, case.reference, "cancel")),)
        return Outcome(replace(conv, pending=pending), (Reply(refusal, buttons=(cancel,)),))
    if pending.action == "message_broker":
        return Outcome(conv, commands=(MessageBroker(case.reference, text, attachment),))
    actor = Actor(Role.RESIDENT, is_initiator=True)
    verdict = lifecycle.check_transition(case.status, Status.GESTOPT, actor, note=text)
    if isinstance(verdict, Refused):
        return Outcome(conv, (_menu(conv, verdict.reason),))
    return Outcome(
        conv,
        commands=(ChangeStatus(case.reference, Status.GESTOPT.value, verdict.note, None, by_resident=True),),
    )


def status_notice(
    case: CaseView, target: str, note: str | None, department: str | None, broker: str | None
) -> Reply:
    """What a resident hears when their initiative changes status, in plain words."""
    name = broker or t("your initiatiefmakelaar")
    title = case.title
    texts: dict[str, Msg] = {
        Status.TOEGEWEZEN: t(
            "Good news: {broker} is your initiatiefmakelaar for “{title}”. {broker} will contact you.",
            broker=name,
            title=title,
        ),
        Status.IN_GESPREK: t(
            "You are now in conversation with {broker} about “{title}”.", broker=name, title=title
        ),
        Status.PLAN_IN_UITWERKING: t(
            "You and {broker} are working out the plan for “{title}”.", broker=name, title=title
        ),
        Status.BIJ_GEMEENTE: t(
            "Your initiative “{title}” is now with the municipality, at the department {department}.",
            title=title,
            department=department or "",
        ),
        Status.GOEDGEKEURD: t("Good news! Your initiative “{title}” has been approved.", title=title),
        Status.AFGEWEZEN: t(
            "Sorry, your initiative “{title}” was not approved. {broker} can look with you for another way.",
            title=title,
            broker=name,
        ),
        Status.IN_UITVOERING: t("Your initiative “{title}” is being carried out now.", title=title),
        Status.GEREALISEERD: t(
            "Your initiative “{title}” is done! Thank you for all your work.", title=title
        ),
        Status.GESTOPT: t("Your initiative “{title}” has been stopped.", title=title),
    }
    text = texts.get(
        target,
        t("Your initiative “{title}” has a new status: {status}.", title=title, status=status_label(target)),
    )
    extra: list[Msg] = []
    if note and target == Status.BIJ_GEMEENTE:
        extra.append(t("{broker} asked: {note}", broker=name, note=note))
    elif note and target in (Status.AFGEWEZEN, Status.GESTOPT):
        extra.append(t("The reason: {note}", note=note))
    elif note:
        extra.append(t("{broker} writes: {note}", broker=name, note=note))
    extra.append(t("Reference: {reference}", reference=case.reference))
    return Reply(text, extra=tuple(extra), buttons=case_buttons(case.reference, target))


def message_from_broker(case: CaseView, broker: str, text: str) -> Reply:
    head = t(
        "Message from your initiatiefmakelaar {broker} about “{title}” ({reference}):",
        broker=broker,
        title=case.title,
        reference=case.reference,
    )
    reply = (Button(t("Reply"), case_button(RESIDENT_PREFIX, case.reference, "msg")),)
    return Reply(head, extra=(verbatim(text),), buttons=(reply,))


def new_broker_soon(reference: str, title: str, status: str) -> Reply:
    """What a resident hears when their initiatiefmakelaar drops out and the coordinators take over."""
    text = t(
        "Your initiative “{title}” gets a new initiatiefmakelaar soon. We will tell you who.", title=title
    )
    extra = (t("Reference: {reference}", reference=reference),)
    return Reply(text, extra=extra, buttons=case_buttons(reference, status))


# --- messages to the broker, outside any question (``flows.resident_messages``) ---------------------


def _route_message(
    conv: Conversation, held: tuple[HeldMessage, ...], event: Event, ctx: Context, talk: Talk
) -> Outcome | None:
    """A message to the broker of one of the resident's cases, or the question whom it is for; None when
    it is not for a broker. In the middle of the intake only a swipe-reply to a case's message is."""
    in_intake = conv.mode == INTAKE_MODE and conv.draft is not None
    if event.kind is EventKind.TEXT and intent_of(event.text or "") is not None:
        return None  # a typed "help", "stop" or "back" is answered as such, not passed on
    if in_intake:
        decision: messages.Route = messages.Forward(talk.answered) if talk.answered else None
    else:
        decision = messages.route(talk, ctx.now)
    message = messages.held_message(event)
    if decision is None or message is None:
        return None
    if messages.too_long(message):
        again = t("Please write between 1 and {max} characters.", max=messages.MAX_TEXT)
        return Outcome(replace(conv, held=held), (Reply(again),))
    if found := personal_data_in(message.text):
        # Not sent and not kept, as after "Reply": the resident sends it again without those details.
        return Outcome(replace(conv, held=held), (Reply(personal_data_refusal(found, during_intake=False)),))
    if isinstance(decision, messages.Forward):
        sends = tuple(MessageBroker(decision.reference, m.text, m.attachment) for m in (*held, message))
        return Outcome(conv, commands=sends)
    kept = (*held, message)[-messages.MAX_HELD :]
    return Outcome(replace(conv, held=kept), (messages.question(decision.cases, len(kept)),))


_CLOSE_QUESTION = Reply(t("Who is this for? Or is it a new idea?"), edit=True, markup_only=True)


def _send_held(
    conv: Conversation, held: tuple[HeldMessage, ...], event: Event, case: CaseView | None
) -> Outcome:
    """The answer "to Anna" to the question whom the kept messages are for: they are sent."""
    if not held:
        gone = t("This button no longer works. See the newest message.")
        return Outcome(conv, (_CLOSE_QUESTION,), Notice(gone))
    if case is None or case.resident_user_id != event.user_id:
        return Outcome(conv, (Reply(t("I cannot find that initiative.")),), Notice(t("Not possible.")))
    sends = tuple(MessageBroker(case.reference, m.text, m.attachment) for m in held)
    return Outcome(conv, (_CLOSE_QUESTION,), Notice(), sends)


def _held_as_idea(conv: Conversation, held: tuple[HeldMessage, ...], event: Event, ctx: Context) -> Outcome:
    """The answer "It is a new idea": the kept messages start the idea."""
    if not held:
        gone = t("This button no longer works. See the newest message.")
        return Outcome(conv, (_CLOSE_QUESTION,), Notice(gone))
    out = start_with_idea(conv, messages.as_idea_event(held, event), ctx)
    return replace(out, replies=(_CLOSE_QUESTION, *out.replies), notice=out.notice or Notice())
