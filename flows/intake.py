"""The intake flow: one question at a time from idea to a submitted initiative."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flows.engine import Answers, Branch, Flow, FlowContext, Kind, Option, Step, check
from flows.events import Location
from flows.municipality import Municipality, wijk_for_location, wijk_for_postcode
from flows.pii import without_personal_data
from flows.text import Money, Msg, localized, t, tn, verbatim
from flows.validators import (
    ContactDetail,
    Invalid,
    looks_like_postcode,
    validate_amount,
    validate_contact,
    validate_description,
    validate_name,
    validate_neighbours,
    validate_own_contribution,
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

CONSENT_YES, CONSENT_NO = "ja", "nee"
PUBLISH_YES, PUBLISH_NO = "ja", "nee"
SUBMIT, CHANGE = "indienen", "aanpassen"

# The steps a resident can change from the summary, in the order they were asked.
EDITABLE = (
    ("title", t("Title")),
    ("idea", t("Your idea")),
    ("theme", t("Theme")),
    ("wijk", t("Neighbourhood")),
    ("own", t("What you do yourself")),
    ("needs", t("What you need")),
    ("neighbours", t("Neighbours taking part")),
    ("photo", t("Photo")),
    ("name", t("Your name")),
    ("contact", t("Phone or e-mail")),
    ("publish", t("Show without your name")),
)


def _store_contact(value: ContactDetail | None) -> dict[str, Any]:
    return {
        "contact_phone": value.value if value is not None and value.kind == "phone" else None,
        "contact_email": value.value if value is not None and value.kind == "email" else None,
    }


def _consent_prompt(answers: Answers, ctx: FlowContext) -> Msg:
    return t(
        "Before you send your idea: what happens with your data?\n"
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
        "• Questions? Send an e-mail to {contact}.\n"
        "Do you agree?",
        municipality=ctx.prompt_params["municipality"],
        retention=tn("{n} month", "{n} months", int(ctx.prompt_params["retention_months"])),
        draft_days=tn("{n} day", "{n} days", int(ctx.prompt_params["draft_days"])),
        message_days=tn("{n} day", "{n} days", int(ctx.prompt_params["message_days"])),
        contact=ctx.prompt_params["privacy_contact"],
    )


def _summary_prompt(answers: Answers, ctx: FlowContext) -> Msg:
    return summary(answers, ctx)


STEPS = (
    Step(
        "title",
        Kind.TEXT,
        t("What is the title of your idea? Use a few words, for example: “Benches in the park”."),
        next="idea",
        validate=without_personal_data(validate_title),
    ),
    Step(
        "idea",
        Kind.TEXT,
        t("What do you want? Tell us your idea, and why it is good for the neighbourhood."),
        next="theme",
        field="description",
        validate=without_personal_data(validate_description),
    ),
    Step("theme", Kind.CHOICE, t("Which theme fits your idea best?"), next="wijk", columns=2),
    Step(
        "wijk",
        Kind.CHOICE,
        t("In which neighbourhood is your idea?"),
        next="own",
        page_size=8,
        columns=2,
        optional=True,
        skip_label=t("I don't know"),
        hint=t("You can also type your postcode, or share your location with 📎."),
    ),
    Step(
        "own",
        Kind.TEXT,
        t(
            "What can you do yourself? "
            "For example: talk to neighbours, organise the work, look after it later."
        ),
        next="needs",
        field="own_contribution",
        validate=without_personal_data(validate_own_contribution),
        optional=True,
    ),
    Step(
        "needs",
        Kind.MULTI,
        t("What do you need? Choose one or more, then press “Done ✔”."),
        next=Branch(lambda a: MONEY in (a.get("needs") or ()), "amount", "neighbours", "money needed"),
        options=NEEDS,
    ),
    Step(
        "amount",
        Kind.TEXT,
        t(
            "About how much money do you need? Write an amount in euros, for example {example}.",
            example="1250",
        ),
        next="neighbours",
        field="amount_cents",
        validate=validate_amount,
        optional=True,
        skip_label=t("I don't know yet"),
        counted=False,
        follow_up=True,
    ),
    Step(
        "neighbours",
        Kind.TEXT,
        t("How many neighbours take part? Write a number."),
        next="photo",
        validate=validate_neighbours,
        optional=True,
        skip_label=t("I don't know yet"),
    ),
    Step(
        "photo",
        Kind.PHOTO,
        t("Do you have a photo of the place or of your idea? Send it here."),
        next="name",
        optional=True,
        skip_label=t("No photo"),
    ),
    Step("name", Kind.TEXT, t("What name may we use for you?"), next="contact", validate=validate_name),
    Step(
        "contact",
        Kind.TEXT,
        t(
            "Your initiatiefmakelaar will contact you here on Telegram. "
            "Do you also want to give a phone number or e-mail address?"
        ),
        next="publish",
        validate=validate_contact,
        store=_store_contact,
        optional=True,
        skip_label=t("Telegram is fine"),
    ),
    Step(
        "publish",
        Kind.CHOICE,
        t("May the municipality show your idea without your name?"),
        next="consent",
        options=(Option(PUBLISH_YES, t("Yes")), Option(PUBLISH_NO, t("No"))),
        hint=t(
            "On its open data page the municipality shows the title, theme and neighbourhood of ideas. "
            "If you say yes, it also shows your description. Never your name or contact details."
        ),
    ),
    Step(
        "consent",
        Kind.CHOICE,
        _consent_prompt,
        next=Branch(lambda a: a.get("consent") == CONSENT_YES, "summary", "@discard", "agrees"),
        options=(Option(CONSENT_YES, t("I agree")), Option(CONSENT_NO, t("I do not agree"))),
    ),
    Step(
        "summary",
        Kind.CHOICE,
        _summary_prompt,
        next=Branch(lambda a: a.get("summary") == SUBMIT, "@submit", "change", "submit"),
        options=(Option(SUBMIT, t("Submit")), Option(CHANGE, t("Change something"))),
        counted=False,
    ),
    Step(
        "change",
        Kind.CHOICE,
        t("What do you want to change?"),
        next="@edit",
        options=tuple(Option(name, label) for name, label in EDITABLE),
        columns=2,
        counted=False,
    ),
)

INTAKE = Flow("intake", STEPS)
check(INTAKE)


def intake_context(municipality: Municipality) -> FlowContext:
    """Options and parsers of the intake that come from the municipality's configuration."""
    themes = tuple(Option(th.code, localized(nl=th.label_nl, en=th.label_en)) for th in municipality.themes)
    wijken = tuple(Option(w.code, verbatim(w.name)) for w in municipality.wijken)

    def postcode(text: str) -> str | Invalid | None:
        if not looks_like_postcode(text):
            return None
        wijk = wijk_for_postcode(municipality, text)
        if wijk is None:
            return Invalid(t("I don't know that postcode. Please choose your neighbourhood with a button."))
        return wijk.code

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

    return FlowContext(
        options={"theme": themes, "wijk": wijken},
        text_parsers={"wijk": postcode},
        location_parsers={"wijk": location},
        prompt_params={
            "municipality": municipality.name,
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
    amount = answers.get("amount_cents")
    if MONEY in (answers.get("needs") or ()) and isinstance(amount, int):
        lines.append(t("Amount: about {amount}", amount=Money(amount)))
    neighbours = answers.get("neighbours")
    if isinstance(neighbours, int):
        lines.append(t("Neighbours taking part: {count}", count=neighbours))
    lines.append(t("Photo: {value}", value=t("yes") if answers.get("photo") else t("no")))
    lines.append(t("Your name: {value}", value=str(answers.get("name", ""))))
    contact = answers.get("contact_phone") or answers.get("contact_email")
    lines.append(t("Contact: {value}", value=str(contact) if contact else t("only via Telegram")))
    publish = answers.get("publish")
    if publish is not None:
        shown = (
            t("yes, with your description")
            if publish == PUBLISH_YES
            else t("no, only the title, theme and neighbourhood")
        )
        lines.append(t("Show without your name: {value}", value=shown))
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


def draft_from_answers(answers: Answers, consent_at: datetime) -> InitiativeDraft:
    needs = tuple(str(n) for n in answers.get("needs") or ())
    wijk = answers.get("wijk")
    amount = answers.get("amount_cents")
    neighbours = answers.get("neighbours")
    publish = answers.get("publish")
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
        publish_consent=None if publish is None else publish == PUBLISH_YES,
    )
