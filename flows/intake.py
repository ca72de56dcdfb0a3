"""The intake flow: one question at a time from idea to a submitted initiative."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flows.engine import (
    JSON,
    Answers,
    Branch,
    Flow,
    FlowContext,
    Kind,
    Option,
    OtherInput,
    Step,
    Switch,
    check,
)
from flows.events import Event, EventKind, KeyButton, Location
from flows.municipality import Municipality, wijk_for_location, wijk_for_postcode
from flows.pii import personal_data_in, personal_data_refusal, without_personal_data
from flows.text import Money, Msg, t, tn, verbatim
from flows.understanding import (
    Amount,
    guess_themes,
    intent_of,
    match_wijk,
    neighbours_in,
    normalise_postcode,
    read_amount,
    read_count,
    suggest_title,
)
from flows.validators import (
    AMOUNT_MAX_CENTS,
    AMOUNT_MIN_CENTS,
    ContactDetail,
    Invalid,
    validate_amount,
    validate_contact,
    validate_description,
    validate_name,
    validate_neighbours,
    validate_own_contribution,
    validate_phone,
    validate_title,
)

MONEY = "geld"

NEEDS = (
    Option(MONEY, t("Money or a grant")),
    Option("vergunning", t("A permit or permission")),
    Option("plek", t("A place")),
    Option("materiaal", t("Materials")),
    Option("contact", t("Contact with the municipality")),
    Option("vrijwilligers", t("Help from volunteers")),
    Option("anders", t("Something else")),
)

CHECK_OK, CHECK_TITLE, CHECK_THEME, CHECK_TYPED = "ok", "titel", "thema", "getypt"
SUBMIT, CHANGE, PUBLISH, PRIVACY, DECLINE = "indienen", "aanpassen", "tonen", "privacy", "nee"
DISCARD, KEEP_DRAFT = "wissen", "terug"
# The open-data tick box's answer (as drafts from before it stored "publish" too).
PUBLISH_YES, PUBLISH_NO = "ja", "nee"

# The steps a resident can change from the summary, in the order they were asked.
EDITABLE = (
    ("idea", t("Your idea")),
    ("title", t("Title")),
    ("theme", t("Theme")),
    ("wijk", t("Neighbourhood")),
    ("own", t("What you do yourself")),
    ("needs", t("What you need")),
    ("neighbours", t("Neighbours taking part")),
    ("photo", t("Photo")),
    ("contact", t("Phone or e-mail")),
    ("name", t("Your name")),
)

VOICE_MARK = "🎤"


def _voice_text(seconds: int | None) -> str:
    """What stands for a voice note where text is expected, in no language ("🎤 0:42"): the summary
    shows it to the resident in theirs, the card to staff, and the broker gets the voice note itself."""
    if seconds is None:
        return VOICE_MARK
    return f"{VOICE_MARK} {seconds // 60}:{seconds % 60:02d}"


def _voice(text_key: str, voice_key: str) -> OtherInput:
    """A voice note as the answer: the note is kept (by file id) and a short mark stands for the text."""

    def take(event: Event, answers: Answers) -> dict[str, JSON] | Invalid | None:
        if event.kind is not EventKind.VOICE or event.media is None:
            return None
        caption = (event.text or "").strip()
        if caption and (found := personal_data_in(caption)):
            return Invalid(personal_data_refusal(found, during_intake=True))
        text = _voice_text(event.media.duration) + (f" {caption}" if caption else "")
        return {text_key: text, voice_key: event.media.file_id}

    return take


def _contact_card(event: Event, answers: Answers) -> dict[str, JSON] | Invalid | None:
    """A contact card (Telegram's share-my-number button, or one sent with 📎): its number, and the
    name on it when it is the resident's own card and no name was given yet."""
    if event.kind is not EventKind.CONTACT or event.contact is None:
        return None
    number = event.contact.phone_number.strip()
    if number[:1].isdigit() and not number.startswith("0"):
        number = "+" + number  # Telegram gives the international form without "+"
    phone = validate_phone(number)
    if isinstance(phone, Invalid):
        return phone
    found: dict[str, JSON] = {"contact_phone": phone, "contact_email": None}
    own = event.contact.user_id is not None and event.contact.user_id == event.user_id
    name = " ".join(p for p in (event.contact.first_name, event.contact.last_name) if p).strip()
    if own and name and not answers.get("name"):
        checked = validate_name(name)
        if not isinstance(checked, Invalid):
            found["name"] = checked
    return found


def _store_contact(value: ContactDetail | None, answers: Answers) -> dict[str, JSON]:
    return {
        "contact_phone": value.value if value is not None and value.kind == "phone" else None,
        "contact_email": value.value if value is not None and value.kind == "email" else None,
    }


def _show_contact(answers: Answers) -> Msg | None:
    contact = answers.get("contact_phone") or answers.get("contact_email")
    return verbatim(str(contact)) if contact else None


def _own(value: str | None, answers: Answers) -> dict[str, JSON]:
    """What the resident does themselves; a count of people in it ("met 4 buren") answers the next
    question too."""
    found: dict[str, JSON] = {"own_contribution": value}
    count = neighbours_in(value or "")
    if count is not None and "neighbours" not in answers:
        found["neighbours"] = count
    return found


def _amount(value: Amount | None, answers: Answers) -> dict[str, JSON]:
    if value is None:
        return {"amount_cents": None, "amount_max_cents": None}
    return {"amount_cents": value.low_cents, "amount_max_cents": value.high_cents}


def _show_amount(answers: Answers) -> Msg | None:
    low, high = answers.get("amount_cents"), answers.get("amount_max_cents")
    if not isinstance(low, int):
        return None
    if isinstance(high, int) and high != low:
        return t("{low} to {high}", low=Money(low), high=Money(high))
    return t("about {amount}", amount=Money(low))


def validate_amount_words(raw: str) -> Amount | Invalid:
    """An amount as people say it ("ongeveer 800 euro", "800 à 1000", "een paar honderd euro"); when no
    amount can be read, the strict reader's message says how to write one."""
    amount = read_amount(raw)
    if amount is None:
        strict = validate_amount(raw)
        if isinstance(strict, Invalid):
            return strict
        return Amount(strict)
    for cents in (amount.low_cents, amount.high_cents):
        if cents is not None and not AMOUNT_MIN_CENTS <= cents <= AMOUNT_MAX_CENTS:
            return Invalid(t("Please write an amount between 1 euro and 1 million euro."))
    return amount


def validate_count_words(raw: str) -> int | Invalid:
    """A number of people as people say it ("vijf", "een stuk of tien"), else the strict reader."""
    count = read_count(raw)
    return count if count is not None else validate_neighbours(raw)


def _check(value: str, answers: Answers) -> dict[str, JSON]:
    """The resident's answer to the suggested title and theme: a button, or a title of their own."""
    if value not in (CHECK_OK, CHECK_TITLE, CHECK_THEME):
        return {"check": CHECK_TYPED, "title": value}
    found: dict[str, JSON] = {"check": value}
    if value in (CHECK_OK, CHECK_THEME):
        found["title"] = answers.get("title_suggestion")
    if value == CHECK_OK and answers.get("theme_guess"):
        found["theme"] = answers.get("theme_guess")
    return found


def _check_prompt(answers: Answers, ctx: FlowContext) -> Msg:
    title = str(answers.get("title_suggestion") or "")
    guess = answers.get("theme_guess")
    if guess:
        return t(
            "Nice idea! I will call it:\n“{title}”\nTheme: {theme}\nIs that right? Or type another title.",
            title=title,
            theme=_label(ctx, "theme", guess),
        )
    return t("Nice idea! I will call it:\n“{title}”\nIs that right? Or type another title.", title=title)


def _themes_first(options: Sequence[Option], answers: Answers) -> Sequence[Option]:
    """The themes the idea's words point to come first."""
    guessed = answers.get("theme_guesses") or ()
    ranked = [o for code in guessed for o in options if o.code == code]
    return [*ranked, *(o for o in options if o not in ranked)]


def _confirm(value: str, answers: Answers) -> dict[str, JSON]:
    found: dict[str, JSON] = {"confirm": value}
    if value == PUBLISH:
        found["publish"] = PUBLISH_NO if answers.get("publish") == PUBLISH_YES else PUBLISH_YES
    if value == PRIVACY:
        found["privacy_shown"] = True
    return found


def _confirm_options(options: Sequence[Option], answers: Answers) -> Sequence[Option]:
    shown = answers.get("publish") == PUBLISH_YES
    out = []
    for option in options:
        if option.code == PUBLISH:
            mark = "☑" if shown else "☐"
            option = Option(PUBLISH, Msg("{mark} {label}", {"mark": mark, "label": option.label}))
        if option.code == PRIVACY and answers.get("privacy_shown"):
            continue
        out.append(option)
    return out


def _confirm_prompt(answers: Answers, ctx: FlowContext) -> Msg:
    parts: list[Msg] = [summary(answers, ctx)]
    if answers.get("privacy_shown"):
        parts.append(_consent_prompt(answers, ctx))
    else:
        parts.append(
            t(
                "Your data: the municipality uses them only for your idea. "
                "We delete them {retention} after your initiative has ended. "
                "Do you agree? Then your idea is sent.",
                retention=tn("{n} month", "{n} months", int(ctx.prompt_params["retention_months"])),
            )
        )
    return Msg(
        "\n\n".join(f"{{p{i}}}" for i in range(len(parts))), {f"p{i}": part for i, part in enumerate(parts)}
    )


def _consent_prompt(answers: Answers, ctx: FlowContext) -> Msg:
    return t(
        "What happens with your data?\n"
        "• We store your answers, your name, your contact details and your Telegram chat.\n"
        "• We use them only to help you with this initiative.\n"
        "• The initiatiefmakelaars and coordinators of the municipality of {municipality} can see them. "
        "A department of the municipality that your idea needs sees your idea, not your name or contact "
        "details. The title and theme of your idea can be shown in open data, without your name.\n"
        "• Telegram, a company outside the EU, carries this chat.\n"
        "• We delete them {retention} after your initiative has ended.\n"
        "• If you do not finish your idea, we delete your answers after {draft_days}. "
        "You get one reminder before that.\n"
        "• We delete our copies of the messages the bot sends after {message_days}.\n"
        "• /mijngegevens shows what we keep about you. /vergeetmij deletes it.\n"
        "• Questions? Send an e-mail to {contact}.",
        municipality=ctx.prompt_params["municipality"],
        retention=tn("{n} month", "{n} months", int(ctx.prompt_params["retention_months"])),
        draft_days=tn("{n} day", "{n} days", int(ctx.prompt_params["draft_days"])),
        message_days=tn("{n} day", "{n} days", int(ctx.prompt_params["message_days"])),
        contact=ctx.prompt_params["privacy_contact"],
    )


def _wijk_prompt(answers: Answers, ctx: FlowContext) -> Msg:
    if ctx.prompt_params.get("postcodes"):
        return t("In which neighbourhood is your idea? Tap it, or type the name or the postcode.")
    return t("In which neighbourhood is your idea? Tap it, or type the name.")


STEPS = (
    Step(
        "idea",
        Kind.TEXT,
        t(
            "What is your idea? Tell it in a few sentences: what do you want, and why is it good "
            "for the neighbourhood? You can also send a voice message."
        ),
        next="check",
        field="description",
        validate=without_personal_data(validate_description),
        other=_voice("description", "idea_voice"),
    ),
    Step(
        "check",
        Kind.CHOICE,
        _check_prompt,
        next=Switch(
            "check",
            {CHECK_OK: "theme", CHECK_TITLE: "title", CHECK_THEME: "theme", CHECK_TYPED: "theme"},
            "title",
        ),
        validate=without_personal_data(validate_title),
        options=(
            Option(CHECK_OK, t("✔ Yes, that is right")),
            Option(CHECK_TITLE, t("✏️ Other title")),
            Option(CHECK_THEME, t("✏️ Other theme")),
        ),
        update=_check,
        skip_if=lambda a: not a.get("title_suggestion"),
        mark_answer=False,
    ),
    Step(
        "title",
        Kind.TEXT,
        t("What is the title of your idea? Use a few words, for example: “Benches in the park”."),
        next="theme",
        validate=without_personal_data(validate_title),
        suggest=lambda a: a.get("title_suggestion"),
        suggest_label=t("✔ “{value}”"),
    ),
    Step(
        "theme",
        Kind.CHOICE,
        t("Which theme fits your idea best?"),
        next="wijk",
        columns=2,
        skip_if=lambda a: bool(a.get("theme")),
        adjust=_themes_first,
    ),
    Step(
        "wijk",
        Kind.CHOICE,
        _wijk_prompt,
        next="own",
        page_size=8,
        columns=2,
        optional=True,
        skip_label=t("I don't know"),
        keyboard=((KeyButton(t("📍 Share my location"), request="location"),),),
        keyboard_hint=t("Are you at the place? Tap “📍 Share my location” below."),
    ),
    Step(
        "own",
        Kind.TEXT,
        t(
            "What can you do yourself, and with how many neighbours? "
            "For example: “With 4 neighbours I water the plants.”"
        ),
        next="neighbours",
        field="own_contribution",
        validate=without_personal_data(validate_own_contribution),
        update=_own,
        other=_voice("own_contribution", "own_voice"),
        optional=True,
    ),
    Step(
        "neighbours",
        Kind.TEXT,
        t("How many neighbours take part? Write a number."),
        next="needs",
        validate=validate_count_words,
        optional=True,
        skip_label=t("I don't know yet"),
        skip_if=lambda a: "neighbours" in a,
    ),
    Step(
        "needs",
        Kind.MULTI,
        t("What do you need? Choose one or more, then tap “Done ✔”."),
        next=Branch(lambda a: MONEY in (a.get("needs") or ()), "amount", "photo", "money needed"),
        options=NEEDS,
    ),
    Step(
        "amount",
        Kind.TEXT,
        t("About how much money do you need? For example: “about 800 euro”."),
        next="photo",
        field="amount_cents",
        validate=validate_amount_words,
        update=_amount,
        show=_show_amount,
        optional=True,
        skip_label=t("I don't know yet"),
        follow_up=True,
    ),
    Step(
        "photo",
        Kind.PHOTO,
        t("Do you have a photo of the place or of your idea? Send it here."),
        next="contact",
        optional=True,
        skip_label=t("No photo"),
        skip_if=lambda a: bool(a.get("photo")),
        show=lambda a: t("You sent a photo.") if a.get("photo") else None,
    ),
    Step(
        "contact",
        Kind.TEXT,
        t(
            "Your initiatiefmakelaar will contact you here on Telegram. "
            "May they also call or e-mail you? Type your phone number or e-mail address."
        ),
        next="name",
        validate=validate_contact,
        update=_store_contact,
        other=_contact_card,
        show=_show_contact,
        optional=True,
        skip_label=t("Only via Telegram"),
        keyboard=((KeyButton(t("📱 Share my number"), request="contact"),),),
        keyboard_hint=t("Or tap “📱 Share my number” below."),
    ),
    Step(
        "name",
        Kind.TEXT,
        t("What name may we use for you?"),
        next="confirm",
        validate=validate_name,
        suggest=lambda a: a.get("profile_name"),
        suggest_label=t("Yes, call me {value}"),
        skip_if=lambda a: bool(a.get("name")),
    ),
    Step(
        "confirm",
        Kind.CHOICE,
        _confirm_prompt,
        next=Switch(
            "confirm",
            {SUBMIT: "@submit", CHANGE: "change", DECLINE: "decline", PUBLISH: "confirm", PRIVACY: "confirm"},
            "confirm",
        ),
        options=(
            Option(SUBMIT, t("✔ I agree, send my idea")),
            Option(PUBLISH, t("Also show my idea on the open data page (without my name)")),
            Option(CHANGE, t("✏️ Change something")),
            Option(PRIVACY, t("Read more about your data")),
            Option(DECLINE, t("I do not agree")),
        ),
        update=_confirm,
        adjust=_confirm_options,
        mark_answer=False,
    ),
    Step(
        "decline",
        Kind.CHOICE,
        t("Are you sure? Then I delete all your answers, and your idea is not sent."),
        next=Switch("decline", {DISCARD: "@discard"}, "confirm"),
        options=(
            Option(KEEP_DRAFT, t("No, back to my idea")),
            Option(DISCARD, t("Yes, delete everything")),
        ),
        mark_answer=False,
    ),
    Step(
        "change",
        Kind.CHOICE,
        t("What do you want to change?"),
        next="@edit",
        options=tuple(Option(name, label) for name, label in EDITABLE),
        columns=2,
    ),
)

INTAKE = Flow("intake", STEPS)
check(INTAKE)

# Old step names of drafts saved before this version, and where they continue now.
RENAMED_STEPS = {"summary": "confirm", "consent": "confirm", "publish": "confirm"}


def intake_context(municipality: Municipality) -> FlowContext:
    """Options and parsers of the intake that come from the municipality's configuration."""
    themes = tuple(Option(th.code, th.localized()) for th in municipality.themes)
    wijken = tuple(Option(w.code, verbatim(w.name)) for w in municipality.wijken)

    def wijk_typed(text: str) -> str | Invalid | None:
        postcode = normalise_postcode(text)
        if postcode is not None:
            wijk = wijk_for_postcode(municipality, postcode)
            if wijk is not None:
                return wijk.code
            if municipality.owns_postcode(postcode):
                return Invalid(t("I don't know in which neighbourhood that postcode is. Please tap it."))
            return Invalid(
                t(
                    "That postcode is not in the municipality of {municipality}. "
                    "Please tap the neighbourhood.",
                    municipality=municipality.name,
                )
            )
        wijk = match_wijk(text, municipality.wijken)
        return wijk.code if wijk is not None else None

    def location(loc: Location) -> str | Invalid:
        wijk = wijk_for_location(municipality, loc.latitude, loc.longitude)
        if wijk is None:
            return Invalid(
                t(
                    "That place is not in the municipality of {municipality}. "
                    "Please choose your neighbourhood with a button.",
                    municipality=municipality.name,
                )
            )
        return wijk.code

    def from_idea(answers: Answers) -> dict[str, JSON]:
        """A title and themes suggested by the idea's words (not for a voice message)."""
        if answers.get("idea_voice"):
            return {"title_suggestion": None, "theme_guess": None, "theme_guesses": []}
        idea = str(answers.get("description") or "")
        guesses = list(guess_themes(idea, municipality.themes))
        return {
            "title_suggestion": suggest_title(idea),
            "theme_guess": guesses[0] if guesses else None,
            "theme_guesses": guesses,
        }

    return FlowContext(
        options={"theme": themes, "wijk": wijken},
        text_parsers={"wijk": wijk_typed},
        location_parsers={"wijk": location},
        derive={"idea": from_idea},
        intent=intent_of,
        prompt_params={
            "municipality": municipality.name,
            "postcodes": bool(municipality.postcodes),
            "retention_months": municipality.retention.retention_months,
            # An unfinished idea: one reminder after draft_reminder_days, deleted draft_delete_days later.
            "draft_days": municipality.retention.draft_reminder_days
            + municipality.retention.draft_delete_days,
            "message_days": municipality.retention.sent_message_days,
            "privacy_contact": municipality.privacy_contact,
        },
    )


def _label(ctx: FlowContext, step: str, code: Any) -> Msg:
    for opt in ctx.options.get(step, INTAKE.step(step).options):
        if opt.code == code:
            return opt.label
    return t("(not given)")


def summary(answers: Answers, ctx: FlowContext) -> Msg:
    """The whole draft, for checking before it is submitted."""
    lines: list[Msg] = [t("Please check your initiative:")]
    lines.append(t("Title: {value}", value=str(answers.get("title", ""))))
    lines.append(t("Your idea: {value}", value=str(answers.get("description", ""))))
    lines.append(t("Theme: {value}", value=_label(ctx, "theme", answers.get("theme"))))
    wijk = answers.get("wijk")
    lines.append(t("Neighbourhood: {value}", value=_label(ctx, "wijk", wijk) if wijk else t("I don't know")))
    own = answers.get("own_contribution")
    lines.append(t("What you do yourself: {value}", value=str(own) if own else t("(not given)")))
    needs = [_label(ctx, "needs", code) for code in answers.get("needs") or ()]
    joined = Msg(", ".join(f"{{n{i}}}" for i in range(len(needs))), {f"n{i}": n for i, n in enumerate(needs)})
    lines.append(t("What you need: {value}", value=joined))
    amount = _show_amount(answers)
    if MONEY in (answers.get("needs") or ()) and amount is not None:
        lines.append(t("Amount: {amount}", amount=amount))
    neighbours = answers.get("neighbours")
    if isinstance(neighbours, int):
        lines.append(t("Neighbours taking part: {count}", count=neighbours))
    lines.append(t("Photo: {value}", value=t("yes") if answers.get("photo") else t("no")))
    if answers.get("idea_voice") or answers.get("own_voice"):
        lines.append(t("Voice message: yes, your initiatiefmakelaar hears it"))
    lines.append(t("Your name: {value}", value=str(answers.get("name", ""))))
    contact = answers.get("contact_phone") or answers.get("contact_email")
    lines.append(t("Contact: {value}", value=str(contact) if contact else t("only via Telegram")))
    return Msg(
        "\n".join(f"{{l{i}}}" for i in range(len(lines))), {f"l{i}": line for i, line in enumerate(lines)}
    )


@dataclass(frozen=True)
class InitiativeDraft:
    """A complete, consented intake, ready to be stored."""

    title: str
    description: str
    theme_code: str
    wijk_code: str | None
    own_contribution: str | None
    needs: tuple[str, ...]
    amount_cents: int | None
    neighbours: int | None
    photo_file_id: str | None
    contact_name: str
    contact_phone: str | None
    contact_email: str | None
    consent_at: datetime
    # May the description be published without the name (open data)? None: not asked (an older draft).
    publish_consent: bool | None
    amount_max_cents: int | None = None  # the top of a range; None for one amount
    idea_voice_file_id: str | None = None
    own_voice_file_id: str | None = None


def draft_from_answers(answers: Answers, consent_at: datetime) -> InitiativeDraft:
    needs = tuple(str(n) for n in answers.get("needs") or ())
    wijk = answers.get("wijk")
    amount = answers.get("amount_cents")
    neighbours = answers.get("neighbours")
    publish = answers.get("publish")
    max_amount = answers.get("amount_max_cents")
    return InitiativeDraft(
        title=str(answers["title"]),
        description=str(answers["description"]),
        theme_code=str(answers["theme"]),
        wijk_code=str(wijk) if wijk else None,
        own_contribution=answers.get("own_contribution") or None,
        needs=needs,
        amount_cents=amount if MONEY in needs and isinstance(amount, int) else None,
        neighbours=neighbours if isinstance(neighbours, int) else None,
        photo_file_id=answers.get("photo") or None,
        contact_name=str(answers["name"]),
        contact_phone=answers.get("contact_phone") or None,
        contact_email=answers.get("contact_email") or None,
        consent_at=consent_at,
        # Not shown unless the resident ticked it (privacy by default).
        publish_consent=publish == PUBLISH_YES,
        amount_max_cents=max_amount if MONEY in needs and isinstance(max_amount, int) else None,
        idea_voice_file_id=answers.get("idea_voice") or None,
        own_voice_file_id=answers.get("own_voice") or None,
    )
