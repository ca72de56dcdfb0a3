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

from flows.events import Button, Event, EventKind, Location, Notice, Reply
from flows.text import Msg, t
from flows.validators import Invalid

JSON = Any  # str | int | float | bool | None | list[JSON] | dict[str, JSON]
Answers = Mapping[str, JSON]

# Callback data is "<flow>:<step>:<value>"; values starting with "!" are navigation.
BACK, SKIP, STOP, DONE = "!back", "!skip", "!stop", "!done"
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


Next = str | Branch
# Targets that leave the flow; the caller decides what they mean.
EXIT_PREFIX = "@"


@dataclass(frozen=True)
class FlowContext:
    """What a step may look at besides the answers: data, never I/O."""

    options: Mapping[str, Sequence[Option]] = field(default_factory=dict)  # per step name, from config
    text_parsers: Mapping[str, Callable[[str], str | Invalid | None]] = field(default_factory=dict)
    location_parsers: Mapping[str, Callable[[Location], str | Invalid]] = field(default_factory=dict)
    prompt_params: Mapping[str, Any] = field(default_factory=dict)


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
    store: Callable[[Any], dict[str, JSON]] | None = None
    counted: bool = True  # part of "question n of m"
    follow_up: bool = False  # asked right after its parent, also when editing from the summary
    hint: Msg | None = None  # shown under the question (e.g. "or share your location")

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

    def number_of(self, step: Step) -> tuple[int, int]:
        counted = [s.name for s in self.steps if s.counted]
        if step.name not in counted:
            return (0, len(counted))
        return (counted.index(step.name) + 1, len(counted))

    def targets(self, step: Step) -> list[tuple[str, str]]:
        """Every (target, condition label) a step can lead to; used for diagrams and checks."""
        if isinstance(step.next, Branch):
            return [(step.next.then, step.next.label), (step.next.otherwise, f"not {step.next.label}")]
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
    """The message that asks the current step's question, with its buttons."""
    step = flow.step(state.step)
    parts: list[Msg] = list(before)
    number, total = flow.number_of(step)
    if number:
        parts.append(t("Question {number} of {total}", number=number, total=total))
    text = _prompt(step, state.answers, ctx)
    extra = [*parts[1:], text] if parts else []
    if step.hint is not None:
        extra.append(step.hint)
    head = parts[0] if parts else text
    return Reply(text=head, buttons=_buttons(flow, step, state, ctx), extra=tuple(extra))


def _buttons(flow: Flow, step: Step, state: FlowState, ctx: FlowContext) -> tuple[tuple[Button, ...], ...]:
    rows: list[tuple[Button, ...]] = []
    if step.kind in (Kind.CHOICE, Kind.MULTI):
        opts = list(options_for(step, ctx))
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
    if event.kind in (EventKind.UNSUPPORTED, EventKind.VOICE, EventKind.DOCUMENT, EventKind.CONTACT):
        return _reask(flow, state, ctx, t("Sorry, I cannot use that here."))
    if event.kind is EventKind.PHOTO:
        if step.kind is Kind.PHOTO and event.photo is not None:
            return _accept(flow, step, state, event.photo.file_id, ctx, ack=t("Thanks for the photo."))
        return _reask(flow, state, ctx, t("Sorry, I cannot use a photo here."))
    if event.kind is EventKind.LOCATION:
        parser = ctx.location_parsers.get(step.name)
        if parser is None or event.location is None:
            return _reask(flow, state, ctx, t("Sorry, I cannot use a location here."))
        return _accept_option(flow, step, state, parser(event.location), ctx)
    if event.kind is EventKind.TEXT:
        return _on_text(flow, step, state, event.text or "", ctx)
    return _reask(flow, state, ctx, t("Sorry, I did not understand that."))


def _on_text(flow: Flow, step: Step, state: FlowState, text: str, ctx: FlowContext) -> StepResult:
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
        return _reask(flow, state, ctx, t("Please choose one of the buttons."))
    return _reask(flow, state, ctx, t("Sorry, I did not understand that."))


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
) -> StepResult:
    answers = dict(state.answers)
    if step.store is not None:
        answers.update(step.store(value))
    else:
        answers[step.key] = value
    target = resolve(step.next, answers)
    replies: list[Reply] = []
    if edit and chosen is not None:
        # Replace the buttons of the answered question by the answer, so old buttons can't be pressed.
        replies.append(
            Reply(text=_prompt(step, state.answers, ctx), extra=(Msg("✔ {c}", {"c": chosen}),), edit=True)
        )
    if state.editing and not (target.startswith(EXIT_PREFIX) or flow.step(target).follow_up):
        target = "@summary"
    before = (ack,) if ack is not None else ()
    new = FlowState(
        step=state.step, answers=answers, history=(*state.history, step.name), editing=state.editing
    )
    if target.startswith(EXIT_PREFIX):
        if ack is not None:
            replies.append(Reply(text=ack))
        return StepResult(new, tuple(replies), notice=Notice() if edit else None, exit=target, accepted=True)
    new = replace(new, step=target, selected=_selection(flow.step(target), new))
    replies.append(question(flow, new, ctx, before=before))
    return StepResult(new, tuple(replies), notice=Notice() if edit else None, accepted=True)


def resolve(next_: Next, answers: Answers) -> str:
    if isinstance(next_, Branch):
        return next_.then if next_.when(answers) else next_.otherwise
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
