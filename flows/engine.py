"""Declarative conversation flows and their pure runner.

A flow is a tuple of steps. Each step names its input kind, its question, how the answer is
validated and stored, and where to go next. ``advance`` takes the stored state and one event and
returns the new state and the replies; it does no I/O, so it is tested without Telegram or a database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from flows.events import Button, Event, EventKind, KeyButton, Location, Notice, Reply
from flows.text import Msg, t, verbatim
from flows.validators import Invalid

JSON = Any  # str | int | float | bool | None | list[JSON] | dict[str, JSON]
Answers = Mapping[str, JSON]

# Callback data is "<flow>:<step>:<value>"; values starting with "!" are navigation.
BACK, SKIP, STOP, DONE = "!back", "!skip", "!stop", "!done"
SUGGESTED, KEEP = "!ok", "!keep"  # take the suggested answer; keep the answer given before
PAGE_PREFIX = "!p"
CALLBACK_MAX_BYTES = 64


class Kind(StrEnum):
    TEXT = "text"  # free text, checked by ``validate``
    CHOICE = "choice"  # one button (or typed label, postcode, location through the parsers)
    MULTI = "multi"  # toggle buttons, then "Done"
    PHOTO = "photo"  # a photo


@dataclass(frozen=True)
class Option:
    code: str
    label: Msg


@dataclass(frozen=True)
class Branch:
    """Go to ``then`` when ``when(answers)`` holds, else to ``otherwise``; ``label`` names the condition."""

    when: Callable[[Answers], bool]
    then: str
    otherwise: str
    label: str


@dataclass(frozen=True)
class Switch:
    """Go to ``cases[answers[key]]``, else to ``default``: a choice that leads to one of several steps."""

    key: str
    cases: Mapping[str, str]
    default: str


Next = str | Branch | Switch
# Targets that leave the flow; the caller decides what they mean.
EXIT_PREFIX = "@"


@dataclass(frozen=True)
class FlowContext:
    """What a step may look at besides the answers: data, never I/O."""

    options: Mapping[str, Sequence[Option]] = field(default_factory=dict)  # per step name, from config
    text_parsers: Mapping[str, Callable[[str], str | Invalid | None]] = field(default_factory=dict)
    location_parsers: Mapping[str, Callable[[Location], str | Invalid]] = field(default_factory=dict)
    prompt_params: Mapping[str, Any] = field(default_factory=dict)
    # After a step is answered: more answers worked out from the answers (e.g. a title suggested by the
    # idea), per step name.
    derive: Mapping[str, Callable[[Answers], dict[str, JSON]]] = field(default_factory=dict)
    # A typed word that means a button ("stoppen", "terug", "help"): "stop", "back", "help" or None.
    intent: Callable[[str], str | None] | None = None


Updater = Callable[[Any, Answers], dict[str, JSON]]
# Takes an event a step reads besides text and buttons (a voice note, a contact card): the answers it
# gives, an Invalid to say why not, or None when the step cannot use it.
OtherInput = Callable[[Event, Answers], "dict[str, JSON] | Invalid | None"]


@dataclass(frozen=True)
class Step:
    name: str
    kind: Kind
    prompt: Msg | Callable[[Answers, FlowContext], Msg]
    next: Next
    field: str = ""  # answer key; defaults to the step name
    validate: Callable[[str], Any] | None = None
    options: tuple[Option, ...] = ()  # fixed options; config-driven ones come from FlowContext.options
    optional: bool = False
    skip_label: Msg | None = None
    page_size: int = 0
    columns: int = 1
    follow_up: bool = False  # asked right after its parent, also when editing from the summary
    hint: Msg | None = None  # shown under the question (e.g. "or share your location")
    # Not asked when this holds (the answer is known already); Back and editing still reach it.
    skip_if: Callable[[Answers], bool] | None = None
    # A TEXT step's suggested answer, offered as a button labelled ``suggest_label`` ({value}).
    suggest: Callable[[Answers], str | None] | None = None
    suggest_label: Msg | None = None
    # Stores the answer (under other keys, or several), with the answers so far in view; without it the
    # answer goes under ``key``.
    update: Updater | None = None
    other: OtherInput | None = None
    # Telegram's keyboard under the text field (share my number / location), sent as a second message
    # with ``keyboard_hint`` as its text, because a message carries either inline buttons or a keyboard.
    keyboard: tuple[tuple[KeyButton, ...], ...] = ()
    keyboard_hint: Msg | None = None
    # The answer given before, as the resident reads it (shown after Back and when editing).
    show: Callable[[Answers], Msg | None] | None = None
    # A choice shows the answer given before with ✔ (not for choices that are actions, like "Send").
    mark_answer: bool = True
    # Reorders or relabels a choice's buttons for these answers (the likely theme first, a tick box).
    adjust: Callable[[Sequence[Option], Answers], Sequence[Option]] | None = None

    @property
    def key(self) -> str:
        return self.field or self.name


@dataclass(frozen=True)
class Flow:
    name: str
    steps: tuple[Step, ...]

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"{self.name} has no step {name!r}")

    @property
    def first(self) -> Step:
        return self.steps[0]

    def targets(self, step: Step) -> list[tuple[str, str]]:
        """Every (target, condition label) a step can lead to; used for diagrams and checks."""
        if isinstance(step.next, Branch):
            return [(step.next.then, step.next.label), (step.next.otherwise, f"not {step.next.label}")]
        if isinstance(step.next, Switch):
            cases = [(target, value) for value, target in step.next.cases.items()]
            return [*cases, (step.next.default, "otherwise")]
        return [(step.next, "")]


@dataclass(frozen=True)
class FlowState:
    """Where a person is in a flow: persisted as plain JSON between updates."""

    step: str
    answers: Mapping[str, JSON] = field(default_factory=dict)
    history: tuple[str, ...] = ()
    editing: bool = False  # came from the summary via "change": return there after this answer
    page: int = 0
    selected: tuple[str, ...] = ()  # current selection of a MULTI step

    def to_json(self) -> dict[str, JSON]:
        return {
            "step": self.step,
            "answers": dict(self.answers),
            "history": list(self.history),
            "editing": self.editing,
            "page": self.page,
            "selected": list(self.selected),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JSON]) -> FlowState:
        return cls(
            step=str(data["step"]),
            answers=dict(data.get("answers") or {}),
            history=tuple(data.get("history") or ()),
            editing=bool(data.get("editing", False)),
            page=int(data.get("page") or 0),
            selected=tuple(data.get("selected") or ()),
        )


@dataclass(frozen=True)
class StepResult:
    state: FlowState
    replies: tuple[Reply, ...] = ()
    notice: Notice | None = None
    exit: str | None = None  # an "@target" the caller must handle
    accepted: bool = False  # the event answered the step


def callback(flow: Flow, step: Step, value: str) -> str:
    data = f"{flow.name}:{step.name}:{value}"
    if len(data.encode()) > CALLBACK_MAX_BYTES:
        raise ValueError(f"callback data too long: {data!r}")
    return data


def parse_callback(data: str) -> tuple[str, str, str] | None:
    parts = data.split(":", 2)
    if len(parts) != 3:
        return None
    return parts[0], parts[1], parts[2]


def options_for(step: Step, ctx: FlowContext) -> Sequence[Option]:
    return ctx.options.get(step.name, step.options)


def _prompt(step: Step, answers: Answers, ctx: FlowContext) -> Msg:
    return step.prompt(answers, ctx) if callable(step.prompt) else step.prompt


def question(flow: Flow, state: FlowState, ctx: FlowContext, *, before: Sequence[Msg] = ()) -> Reply:
    """The message that asks the current step's question, with its buttons (and Telegram's keyboard)."""
    step = flow.step(state.step)
    text = _prompt(step, state.answers, ctx)
    parts: list[Msg] = [*before, text]
    given = _given(step, state.answers)
    if given is not None:
        parts.append(Msg("{label} {value}", {"label": t("Your answer now:"), "value": given}))
    if step.hint is not None:
        parts.append(step.hint)
    return Reply(
        text=parts[0],
        buttons=_buttons(flow, step, state, ctx, kept=given is not None),
        extra=tuple(parts[1:]),
        keyboard=step.keyboard,
        keyboard_hint=step.keyboard_hint,
    )


def _given(step: Step, answers: Answers) -> Msg | None:
    """The answer a step already has, shown when the resident comes back to it; None when unanswered."""
    if step.kind in (Kind.CHOICE, Kind.MULTI):
        return None  # the buttons show it
    if step.show is not None:
        return step.show(answers)
    value = answers.get(step.key)
    if value is None or value == "":
        return None
    return Msg("“{value}”", {"value": str(value)})


def _buttons(
    flow: Flow, step: Step, state: FlowState, ctx: FlowContext, *, kept: bool = False
) -> tuple[tuple[Button, ...], ...]:
    rows: list[tuple[Button, ...]] = []
    if kept:
        rows.append((Button(t("✔ Keep this answer"), callback(flow, step, KEEP)),))
    elif step.suggest is not None and step.suggest_label is not None:
        suggestion = step.suggest(state.answers)
        if suggestion:
            label = Msg(step.suggest_label.msgid, {**step.suggest_label.params, "value": suggestion})
            rows.append((Button(label, callback(flow, step, SUGGESTED)),))
    if step.kind in (Kind.CHOICE, Kind.MULTI):
        opts = list(options_for(step, ctx))
        if step.adjust is not None:
            opts = list(step.adjust(opts, state.answers))
        current = state.answers.get(step.key) if step.kind is Kind.CHOICE else None
        page_count = 1
        if step.page_size and len(opts) > step.page_size:
            page_count = (len(opts) + step.page_size - 1) // step.page_size
            page = min(max(state.page, 0), page_count - 1)
            opts = opts[page * step.page_size : (page + 1) * step.page_size]
        row: list[Button] = []
        for opt in opts:
            label = opt.label
            if step.kind is Kind.MULTI:
                mark = "✅" if opt.code in state.selected else "▫️"
                label = Msg("{mark} {label}", {"mark": mark, "label": opt.label})
            elif current is not None and opt.code == current and step.mark_answer:
                label = Msg("✔ {label}", {"label": opt.label})
            row.append(Button(label, callback(flow, step, opt.code)))
            if len(row) == step.columns:
                rows.append(tuple(row))
                row = []
        if row:
            rows.append(tuple(row))
        if page_count > 1:
            page = min(max(state.page, 0), page_count - 1)
            nav: list[Button] = []
            if page > 0:
                nav.append(Button(t("‹ Previous"), callback(flow, step, f"{PAGE_PREFIX}{page - 1}")))
            if page < page_count - 1:
                nav.append(Button(t("More ›"), callback(flow, step, f"{PAGE_PREFIX}{page + 1}")))
            rows.append(tuple(nav))
        if step.kind is Kind.MULTI:
            rows.append((Button(t("Done ✔"), callback(flow, step, DONE)),))
    if step.optional:
        rows.append((Button(step.skip_label or t("Skip"), callback(flow, step, SKIP)),))
    nav_row: list[Button] = []
    if state.history or state.editing:
        nav_row.append(Button(t("« Back"), callback(flow, step, BACK)))
    nav_row.append(Button(t("Stop"), callback(flow, step, STOP)))
    rows.append(tuple(nav_row))
    return tuple(rows)


def start(
    flow: Flow, ctx: FlowContext, answers: Answers | None = None, *, before: Sequence[Msg] = ()
) -> StepResult:
    state = FlowState(step=flow.first.name, answers=dict(answers or {}))
    return StepResult(state, (question(flow, state, ctx, before=before),))


def resume(flow: Flow, state: FlowState, ctx: FlowContext, *, before: Sequence[Msg] = ()) -> StepResult:
    return StepResult(state, (question(flow, state, ctx, before=before),))


def goto(flow: Flow, state: FlowState, step_name: str, ctx: FlowContext, *, editing: bool) -> StepResult:
    """Jump to a step (from the summary's "change"), remembering to come back."""
    new = replace(
        state, step=step_name, editing=editing, page=0, selected=_selection(flow.step(step_name), state)
    )
    return StepResult(new, (question(flow, new, ctx),))


def _selection(step: Step, state: FlowState) -> tuple[str, ...]:
    if step.kind is Kind.MULTI:
        value = state.answers.get(step.key)
        if isinstance(value, list):
            return tuple(str(v) for v in value)
    return ()


def _reask(
    flow: Flow, state: FlowState, ctx: FlowContext, reason: Msg, notice: Notice | None = None
) -> StepResult:
    return StepResult(state, (question(flow, state, ctx, before=(reason,)),), notice=notice)


def advance(flow: Flow, state: FlowState, event: Event, ctx: FlowContext) -> StepResult:
    """Apply one event to the current step: answer, navigate, or kindly re-ask."""
    step = flow.step(state.step)
    if event.kind is EventKind.BUTTON:
        return _on_button(flow, step, state, event, ctx)
    if event.kind is EventKind.EDITED:
        return _reask(flow, state, ctx, t("You changed an earlier message. I did not use the change."))
    if event.kind is EventKind.TEXT:
        return _on_text(flow, step, state, event.text or "", ctx)
    if step.other is not None and event.kind is not EventKind.UNSUPPORTED:
        taken = step.other(event, state.answers)
        if isinstance(taken, Invalid):
            return _reask(flow, state, ctx, taken.reason)
        if taken is not None:
            return _accept(flow, step, state, None, ctx, updates=taken, ack=_ACKS.get(event.kind))
    if event.kind is EventKind.PHOTO:
        if step.kind is Kind.PHOTO and event.photo is not None:
            return _accept(flow, step, state, event.photo.file_id, ctx, ack=t("Thanks for the photo."))
        return _reask(flow, state, ctx, t("Sorry, I cannot use a photo here."))
    if event.kind is EventKind.LOCATION:
        parser = ctx.location_parsers.get(step.name)
        if parser is None or event.location is None:
            return _reask(flow, state, ctx, t("Sorry, I cannot use a location here."))
        return _accept_option(flow, step, state, parser(event.location), ctx)
    if event.kind is EventKind.VOICE:
        return _reask(
            flow, state, ctx, t("Sorry, I cannot use a voice message here. Please type your answer.")
        )
    if event.kind is EventKind.CONTACT:
        return _reask(flow, state, ctx, t("Sorry, I cannot use a contact card here."))
    return _reask(flow, state, ctx, t("Sorry, I cannot use that here."))


_ACKS: dict[EventKind, Msg] = {
    EventKind.VOICE: t("Thanks for your voice message."),
    EventKind.CONTACT: t("✔ Thank you, I have your number."),
}


def _intent(ctx: FlowContext, text: str) -> str | None:
    return ctx.intent(text) if ctx.intent is not None else None


def _on_text(flow: Flow, step: Step, state: FlowState, text: str, ctx: FlowContext) -> StepResult:
    intent = _intent(ctx, text)
    if intent == "stop":
        return StepResult(state, exit="@stop", accepted=True)
    if intent == "back":
        return _back(flow, state, ctx)
    if intent == "help":
        return _reask(flow, state, ctx, step_help(step))
    if step.kind is Kind.TEXT and step.validate is not None:
        value = step.validate(text)
        if isinstance(value, Invalid):
            return _reask(flow, state, ctx, value.reason)
        return _accept(flow, step, state, value, ctx)
    if step.kind is Kind.PHOTO:
        skip = step.skip_label or t("Skip")
        return _reask(flow, state, ctx, t("Please send a photo, or choose “{skip}”.", skip=skip))
    if step.kind in (Kind.CHOICE, Kind.MULTI):
        typed = text.strip().casefold()
        for opt in options_for(step, ctx):
            if opt.label.msgid == "{text}" and _label_matches(opt.label, typed):
                if step.kind is Kind.MULTI:
                    return _toggle(flow, step, state, opt.code, ctx, edit=False)
                return _accept(flow, step, state, opt.code, ctx)
        parser = ctx.text_parsers.get(step.name)
        if parser is not None and step.kind is Kind.CHOICE:
            parsed = parser(text)
            if parsed is not None:
                return _accept_option(flow, step, state, parsed, ctx)
        if step.validate is not None and step.kind is Kind.CHOICE:
            # A choice that also takes typed text (a title instead of the suggested one).
            typed_value = step.validate(text)
            if isinstance(typed_value, Invalid):
                return _reask(flow, state, ctx, typed_value.reason)
            return _accept(flow, step, state, typed_value, ctx)
        return _reask(flow, state, ctx, t("Please choose one of the buttons."))
    return _reask(flow, state, ctx, t("Sorry, I did not understand that."))


def step_help(step: Step) -> Msg:
    """What to do at this question, for a resident who typed "help"."""
    if step.kind is Kind.TEXT:
        how = t("Type your answer in your own words.")
    elif step.kind is Kind.PHOTO:
        how = t("Send a photo with 📎, or tap a button.")
    else:
        how = t("Tap one of the buttons.")
    return Msg(
        "{how}\n{nav}",
        {
            "how": how,
            "nav": t("“« Back” goes to the previous question. “Stop” saves your answers for later."),
        },
    )


def _label_matches(label: Msg, typed: str) -> bool:
    value = label.params.get("text")
    texts = [value] if isinstance(value, str) else [txt for _, txt in getattr(value, "texts", ())]
    return any(isinstance(txt, str) and txt.casefold() == typed for txt in texts)


def _accept_option(
    flow: Flow, step: Step, state: FlowState, parsed: str | Invalid, ctx: FlowContext
) -> StepResult:
    if isinstance(parsed, Invalid):
        return _reask(flow, state, ctx, parsed.reason)
    labels = {o.code: o.label for o in options_for(step, ctx)}
    if parsed not in labels:
        return _reask(flow, state, ctx, t("Please choose one of the buttons."))
    return _accept(flow, step, state, parsed, ctx, ack=Msg("✔ {label}", {"label": labels[parsed]}))


def _on_button(flow: Flow, step: Step, state: FlowState, event: Event, ctx: FlowContext) -> StepResult:
    parsed = parse_callback(event.button or "")
    if parsed is None or parsed[0] != flow.name or parsed[1] != step.name:
        stale = Notice(t("This button no longer works. See the newest message."))
        return _reask(flow, state, ctx, t("That button belongs to an earlier question."), notice=stale)
    value = parsed[2]
    if value == STOP:
        return StepResult(state, exit="@stop", accepted=True)
    if value == BACK:
        return _back(flow, state, ctx)
    if value == KEEP:
        given = _given(step, state.answers)
        return _accept(
            flow, step, state, None, ctx, updates={}, chosen=given or t("Keep this answer"), edit=True
        )
    if value == SUGGESTED and step.suggest is not None and step.validate is not None:
        suggestion = step.suggest(state.answers)
        checked = step.validate(suggestion) if suggestion else None
        if checked is not None and not isinstance(checked, Invalid):
            return _accept(flow, step, state, checked, ctx, chosen=verbatim(str(suggestion)), edit=True)
    if value == SKIP and step.optional:
        return _accept(flow, step, state, None, ctx, chosen=step.skip_label or t("Skip"), edit=True)
    if value.startswith(PAGE_PREFIX) and step.page_size:
        try:
            page = int(value[len(PAGE_PREFIX) :])
        except ValueError:
            page = -1
        pages = (len(options_for(step, ctx)) + step.page_size - 1) // step.page_size
        if 0 <= page < pages:
            new = replace(state, page=page)
            q = question(flow, new, ctx)
            return StepResult(new, (replace(q, edit=True, markup_only=True),), notice=Notice())
    if step.kind is Kind.MULTI and value == DONE:
        if not state.selected:
            return StepResult(state, notice=Notice(t("Choose at least one, then press “Done ✔”.")))
        codes = [o.code for o in options_for(step, ctx) if o.code in state.selected]
        labels = [o.label for o in options_for(step, ctx) if o.code in state.selected]
        return _accept(flow, step, state, codes, ctx, chosen=_join(labels), edit=True)
    codes = {o.code: o.label for o in options_for(step, ctx)}
    if step.kind in (Kind.CHOICE, Kind.MULTI) and value in codes:
        if step.kind is Kind.MULTI:
            return _toggle(flow, step, state, value, ctx, edit=True)
        return _accept(flow, step, state, value, ctx, chosen=codes[value], edit=True)
    return _reask(flow, state, ctx, t("That button does not work here."), notice=Notice(t("Not possible.")))


def _join(labels: Sequence[Msg]) -> Msg:
    params: dict[str, Any] = {f"l{i}": label for i, label in enumerate(labels)}
    return Msg(", ".join(f"{{l{i}}}" for i in range(len(labels))), params)


def _toggle(
    flow: Flow, step: Step, state: FlowState, code: str, ctx: FlowContext, *, edit: bool
) -> StepResult:
    selected = (
        tuple(c for c in state.selected if c != code) if code in state.selected else (*state.selected, code)
    )
    new = replace(state, selected=selected)
    q = question(flow, new, ctx)
    return StepResult(new, (replace(q, edit=edit, markup_only=edit),), notice=Notice() if edit else None)


def _back(flow: Flow, state: FlowState, ctx: FlowContext) -> StepResult:
    if state.editing:
        return StepResult(replace(state, editing=False, page=0, selected=()), exit="@summary", accepted=True)
    if not state.history:
        return _reask(flow, state, ctx, t("This is the first question."))
    previous = state.history[-1]
    new = replace(state, step=previous, history=state.history[:-1], page=0)
    new = replace(new, selected=_selection(flow.step(previous), new))
    return StepResult(new, (question(flow, new, ctx),), notice=Notice(), accepted=True)


def _accept(
    flow: Flow,
    step: Step,
    state: FlowState,
    value: Any,
    ctx: FlowContext,
    *,
    ack: Msg | None = None,
    chosen: Msg | None = None,
    edit: bool = False,
    updates: dict[str, JSON] | None = None,
) -> StepResult:
    """Store the answer (``updates`` instead, when given: {} keeps the answers as they are) and ask the
    next question; leaving a step that showed Telegram's keyboard takes the keyboard away."""
    answers = dict(state.answers)
    if updates is not None:
        answers.update(updates)
    elif step.update is not None:
        answers.update(step.update(value, answers))
    else:
        answers[step.key] = value
    derive = ctx.derive.get(step.name)
    if derive is not None and updates != {}:
        answers.update(derive(answers))
    target = next_step(flow, step, answers)
    replies: list[Reply] = []
    if edit and chosen is not None:
        # Replace the buttons of the answered question by the answer, so old buttons can't be pressed.
        replies.append(Reply(text=_prompt(step, state.answers, ctx), extra=(_ticked(chosen),), edit=True))
    if state.editing and not (target.startswith(EXIT_PREFIX) or flow.step(target).follow_up):
        target = "@summary"
    before: tuple[Msg, ...] = (ack,) if ack is not None else ()
    if step.keyboard:
        # Telegram's keyboard stays until a message takes it away: this short one does.
        said = ack if ack is not None else _ticked(chosen or t("Thank you."))
        replies.append(Reply(text=said, remove_keyboard=True))
        before = ()
    if target == step.name:
        # A choice that changes the question itself (a tick box): the same message shows the change.
        again = replace(state, answers=answers)
        shown = question(flow, again, ctx)
        return StepResult(
            again, (replace(shown, edit=edit),), notice=Notice() if edit else None, accepted=True
        )
    new = FlowState(
        step=state.step, answers=answers, history=(*state.history, step.name), editing=state.editing
    )
    if target.startswith(EXIT_PREFIX):
        if before:
            replies.append(Reply(text=before[0]))
        return StepResult(new, tuple(replies), notice=Notice() if edit else None, exit=target, accepted=True)
    new = replace(new, step=target, selected=_selection(flow.step(target), new))
    replies.append(question(flow, new, ctx, before=before))
    return StepResult(new, tuple(replies), notice=Notice() if edit else None, accepted=True)


def _ticked(answer: Msg) -> Msg:
    """The answer as it stands under its question: with ✔, unless its label carries its own mark."""
    return answer if answer.msgid.startswith(("✔", "✏️")) else Msg("✔ {c}", {"c": answer})


def next_step(flow: Flow, step: Step, answers: Answers) -> str:
    """Where the flow goes after ``step``: past every step whose answer is known already (``skip_if``)."""
    target = resolve(step.next, answers)
    seen: set[str] = set()
    while not target.startswith(EXIT_PREFIX) and target not in seen:
        following = flow.step(target)
        if following.skip_if is None or not following.skip_if(answers):
            return target
        seen.add(target)
        target = resolve(following.next, answers)
    return target


def resolve(next_: Next, answers: Answers) -> str:
    if isinstance(next_, Branch):
        return next_.then if next_.when(answers) else next_.otherwise
    if isinstance(next_, Switch):
        return next_.cases.get(str(answers.get(next_.key)), next_.default)
    return next_


def mermaid(flow: Flow) -> str:
    """Draw a flow as a Mermaid state diagram."""
    lines = ["stateDiagram-v2", f"    [*] --> {flow.first.name}"]
    names = {s.name for s in flow.steps}
    for step in flow.steps:
        for target, label in flow.targets(step):
            if target.startswith(EXIT_PREFIX):
                # Leaving the flow; a step whose options name steps jumps to the chosen one.
                jumps = [o.code for o in step.options if o.code in names]
                lines.extend(f"    {step.name} --> {code} : {target[1:]}" for code in jumps)
                if not jumps:
                    lines.append(f"    {step.name} --> [*] : {label or target[1:]}")
                continue
            suffix = f" : {label}" if label else ""
            lines.append(f"    {step.name} --> {target}{suffix}")
        if step.optional:
            lines.append(f"    note right of {step.name} : optional")
    return "\n".join(lines) + "\n"


def check(flow: Flow) -> None:
    """Raise ValueError if a step points at a step that does not exist."""
    names = {s.name for s in flow.steps}
    if len(names) != len(flow.steps):
        raise ValueError(f"{flow.name}: duplicate step names")
    for step in flow.steps:
        for target, _ in flow.targets(step):
            if not target.startswith(EXIT_PREFIX) and target not in names:
                raise ValueError(f"{flow.name}.{step.name}: unknown next step {target!r}")
