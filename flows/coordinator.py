"""What coordinators see: the picture per wijk, stalled and unassigned initiatives, and the brokers' load."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta

from flows import stalls
from flows.bidi import isolate
from flows.cases import STAFF_PREFIX, BrokerOption, HandBack, case_button
from flows.events import Button, Reply
from flows.lifecycle import Status, is_final, staff_label
from flows.municipality import Municipality
from flows.stalls import AMSTERDAM, StallFacts, working_days_between
from flows.text import Msg, t, tn, verbatim

LIST_LIMIT = 15


@dataclass(frozen=True)
class CaseLine:
    """One initiative as the coordinators' pictures need it."""

    reference: str
    title: str
    wijk_code: str | None
    status: str
    status_changed_at: datetime
    department: str | None
    broker_id: int | None
    broker_name: str | None
    broker_absent_until: date | None
    assigned_at: datetime | None
    last_broker_action_at: datetime | None
    created_at: datetime
    first_contact_at: datetime | None

    @classmethod
    def of(cls, row: object) -> CaseLine:
        """From any row with the same field names (storage.reports.OverviewRow)."""
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})

    @property
    def facts(self) -> StallFacts:
        return StallFacts.of(self)


def _join(lines: Sequence[Msg], separator: str = "\n") -> Msg:
    return Msg(
        separator.join(f"{{l{i}}}" for i in range(len(lines))), {f"l{i}": x for i, x in enumerate(lines)}
    )


def _wijk(m: Municipality, code: str | None) -> str:
    wijk = m.wijk(code) if code else None
    return wijk.name if wijk else "?"


def _by_wijk(lines: Sequence[CaseLine], m: Municipality) -> list[tuple[str | None, list[CaseLine]]]:
    """Lines grouped per wijk, in the configuration's order, the unknown wijk last."""
    groups: dict[str | None, list[CaseLine]] = defaultdict(list)
    for line in lines:
        groups[line.wijk_code].append(line)
    order = [w.code for w in m.wijken if w.code in groups] + ([None] if None in groups else [])
    return [(code, groups[code]) for code in order]


def _wijk_label(m: Municipality, code: str | None) -> Msg:
    return verbatim(_wijk(m, code)) if code else t("Wijk unknown")


def overview(lines: Sequence[CaseLine], m: Municipality, now: datetime) -> Reply:
    """Per wijk: initiatives per status, how many are stalled, and the median days to first contact."""
    if not lines:
        return Reply(t("There are no initiatives yet."))
    parts: list[Msg] = [t("Overview per wijk")]
    for code, group in _by_wijk(lines, m):
        counts = Counter(line.status for line in group)
        statuses = [
            t("{status}: {count}", status=staff_label(s), count=counts[s]) for s in Status if counts.get(s)
        ]
        stalled = sum(1 for line in group if stalls.is_stalled(line.facts, m, now))
        contact = [
            working_days_between(line.created_at, line.first_contact_at, m.closing_days)
            for line in group
            if line.first_contact_at is not None
        ]
        median = (
            t("{days} working days", days=round(statistics.median(contact)))
            if contact
            else t("no first contact yet")
        )
        name = _wijk_label(m, code)
        parts.append(
            t(
                "{wijk} ({total})\n{statuses}\nStalled: {stalled} · Median to first contact: {median}",
                wijk=name,
                total=len(group),
                statuses=_join(statuses, " · "),
                stalled=stalled,
                median=median,
            )
        )
    return Reply(parts[0], extra=tuple(parts[1:]))


def _buttons(line: CaseLine, *, remind: bool) -> tuple[Button, ...]:
    row = [Button(t("Open"), case_button(STAFF_PREFIX, line.reference, "open"))]
    if remind and line.broker_id is not None:
        row.append(Button(t("Remind broker"), case_button(STAFF_PREFIX, line.reference, "remind")))
    row.append(Button(t("Assign"), case_button(STAFF_PREFIX, line.reference, "as")))
    return tuple(row)


STEP_LABELS = {
    stalls.Level.REMINDER: t("step: reminder"),
    stalls.Level.ESCALATION: t("step: escalation"),
    stalls.Level.URGENT: t("step: urgent escalation"),
}


def standing_text(standing: stalls.Standing) -> Msg:
    """A clock past its norm, as the coordinators' list of stalled initiatives says it (also on the web)."""
    assert standing.level is not None
    step = STEP_LABELS[standing.level]
    if standing.track is stalls.Track.SILENCE:
        return tn(
            "No sign of life for {n} working day (norm {norm}) · {step}",
            "No sign of life for {n} working days (norm {norm}) · {step}",
            standing.days,
            norm=standing.norm,
            step=step,
        )
    return tn(
        "{n} working day over the norm of {norm} · {step}",
        "{n} working days over the norm of {norm} · {step}",
        standing.over,
        norm=standing.norm,
        step=step,
    )


def stalled(lines: Sequence[CaseLine], m: Municipality, now: datetime) -> Reply:
    """Every initiative the watchdog has alerted on by ``now``, worst first: per clock past its norm, the
    working days and the ladder step it reached (the step the watchdog sends)."""
    found = [(stalls.stalled_standings(line.facts, m, now), line) for line in lines]
    found = [(standings, line) for standings, line in found if standings]
    if not found:
        return Reply(t("No initiative is stalled. 🎉"))

    def worst(pair: tuple[tuple[stalls.Standing, ...], CaseLine]) -> tuple[int, int, datetime]:
        standings, line = pair
        top = max(int(s.level or 0) for s in standings)
        return (-top, -max(s.over for s in standings), line.status_changed_at)

    found.sort(key=worst)
    parts: list[Msg] = [
        tn("{n} stalled initiative, worst first:", "{n} stalled initiatives, worst first:", len(found))
    ]
    rows: list[tuple[Button, ...]] = []
    for standings, line in found[:LIST_LIMIT]:
        parts.append(
            t(
                "{reference} · {title}\n{status} · {broker}\n{clocks}",
                reference=line.reference,
                title=isolate(line.title),
                status=staff_label(line.status),
                broker=line.broker_name or t("no initiatiefmakelaar"),
                clocks=_join([standing_text(s) for s in standings]),
            )
        )
        rows.append(_buttons(line, remind=True))
    if len(found) > LIST_LIMIT:
        parts.append(t("… and {count} more.", count=len(found) - LIST_LIMIT))
    return Reply(parts[0], extra=tuple(parts[1:]), buttons=tuple(rows))


def unassigned(lines: Sequence[CaseLine], m: Municipality, now: datetime) -> Reply:
    """Open initiatives without a broker, oldest first."""
    found = sorted(
        (line for line in lines if line.broker_id is None and not is_final(line.status)),
        key=lambda line: line.created_at,
    )
    if not found:
        return Reply(t("Every open initiative has an initiatiefmakelaar."))
    parts: list[Msg] = [
        tn(
            "{n} initiative without an initiatiefmakelaar:",
            "{n} initiatives without an initiatiefmakelaar:",
            len(found),
        )
    ]
    rows: list[tuple[Button, ...]] = []
    for line in found[:LIST_LIMIT]:
        waiting = working_days_between(line.created_at, now, m.closing_days)
        parts.append(
            t(
                "{reference} · {title}\nWijk: {wijk} · waiting {days} working days",
                reference=line.reference,
                title=isolate(line.title),
                wijk=_wijk(m, line.wijk_code),
                days=waiting,
            )
        )
        rows.append(_buttons(line, remind=False))
    if len(found) > LIST_LIMIT:
        parts.append(t("… and {count} more.", count=len(found) - LIST_LIMIT))
    return Reply(parts[0], extra=tuple(parts[1:]), buttons=tuple(rows))


def brokers(
    options: Sequence[BrokerOption], wijken: dict[int, tuple[str, ...]], m: Municipality, now: datetime
) -> Reply:
    """Open initiatives per broker, and who is absent."""
    if not options:
        return Reply(t("There are no initiatiefmakelaars yet. Invite one with: initiatiefbot staff invite"))
    today = now.astimezone(AMSTERDAM).date()
    parts: list[Msg] = [t("Initiatiefmakelaars and their open initiatives:")]
    for option in sorted(options, key=lambda o: (-o.open_cases, o.name)):
        names = ", ".join(_wijk(m, code) for code in wijken.get(option.staff_id, ())) or "—"
        if option.absent_until is not None and option.absent_until >= today:
            parts.append(
                t(
                    "{name}: {open} open · {wijken} · absent until {date}",
                    name=option.name,
                    open=option.open_cases,
                    wijken=names,
                    date=option.absent_until,
                )
            )
        else:
            parts.append(
                t("{name}: {open} open · {wijken}", name=option.name, open=option.open_cases, wijken=names)
            )
    return Reply(parts[0], extra=tuple(parts[1:]))


def reminder_from_coordinator(coordinator: str, reference: str) -> Msg:
    return t(
        "{coordinator} asks you to look at {reference} soon.", coordinator=coordinator, reference=reference
    )


def _reassign_list(head: Msg, cases: Sequence[tuple[str, str]], *after: Msg) -> Reply:
    """A broker's open initiatives under ``head``, each with a one-tap reassign."""
    lines = [
        t("{reference} · {title}", reference=reference, title=isolate(title))
        for reference, title in cases[:LIST_LIMIT]
    ]
    if len(cases) > LIST_LIMIT:
        lines.append(t("… and {count} more.", count=len(cases) - LIST_LIMIT))
    rows = tuple(
        (Button(t("Reassign {reference}", reference=reference), case_button(STAFF_PREFIX, reference, "as")),)
        for reference, _ in cases[:LIST_LIMIT]
    )
    return Reply(head, extra=(_join(lines), *after), buttons=rows)


def absent_broker(name: str, until: date, cases: Sequence[tuple[str, str]]) -> Reply:
    """For coordinators: a broker is away; their open initiatives, each with a one-tap reassign."""
    if not cases:
        return Reply(t("{name} is absent until {date} and has no open initiatives.", name=name, date=until))
    head = tn(
        "{name} is absent until {date} and has {n} open initiative:",
        "{name} is absent until {date} and has {n} open initiatives:",
        len(cases),
        name=name,
        date=until,
    )
    return _reassign_list(head, cases)


def handed_back(name: str, why: HandBack, cases: Sequence[tuple[str, str]]) -> Reply:
    """For coordinators: a broker dropped out (``why``), so these open initiatives have no broker now."""
    if why is HandBack.UNREACHABLE:
        head = tn(
            "The bot cannot reach {name}: they have not opened the bot yet, or they blocked it. "
            "So {n} open initiative has no initiatiefmakelaar now:",
            "The bot cannot reach {name}: they have not opened the bot yet, or they blocked it. "
            "So {n} open initiatives have no initiatiefmakelaar now:",
            len(cases),
            name=name,
        )
        ask = t("Ask {name} to open the invitation link or to send the bot a message.", name=name)
        return _reassign_list(head, cases, ask)
    head = tn(
        "{name} is no longer an initiatiefmakelaar. So {n} open initiative has no initiatiefmakelaar now:",
        "{name} is no longer an initiatiefmakelaar. So {n} open initiatives have no initiatiefmakelaar now:",
        len(cases),
        name=name,
    )
    return _reassign_list(head, cases)


def week_start(now: datetime) -> date:
    """The Monday of the Amsterdam week that ``now`` falls in."""
    today = now.astimezone(AMSTERDAM).date()
    return today - timedelta(days=today.weekday())


def digest_due(now: datetime, m: Municipality) -> bool:
    """Whether this week's digest moment (e.g. Monday 09:00 Amsterdam time) has come."""
    local = now.astimezone(AMSTERDAM)
    moment = datetime.combine(week_start(now) + timedelta(days=m.digest_weekday), m.digest_time, AMSTERDAM)
    return local >= moment


def weekly_digest(lines: Sequence[CaseLine], m: Municipality, now: datetime) -> Reply:
    """Monday's digest: last week's new, realised and stopped initiatives, and what is stuck now, per wijk."""
    end = datetime.combine(week_start(now), datetime.min.time(), AMSTERDAM)
    start = end - timedelta(days=7)

    def last_week(moment: datetime) -> bool:
        return start <= moment < end

    parts: list[Msg] = [
        t("Weekly overview, {start} to {end}", start=start.date(), end=(end - timedelta(days=1)).date())
    ]
    for code, group in _by_wijk(lines, m):
        new = sum(1 for line in group if last_week(line.created_at))
        done = sum(
            1 for line in group if line.status == Status.GEREALISEERD and last_week(line.status_changed_at)
        )
        stopped = sum(
            1 for line in group if line.status == Status.GESTOPT and last_week(line.status_changed_at)
        )
        stuck = sum(1 for line in group if stalls.is_stalled(line.facts, m, now))
        waiting = sum(1 for line in group if line.broker_id is None and not is_final(line.status))
        if not (new or done or stopped or stuck or waiting):
            continue
        name = _wijk_label(m, code)
        parts.append(
            t(
                "{wijk}: {new} new · {done} realised · {stopped} stopped · {stuck} stalled now · "
                "{waiting} without an initiatiefmakelaar",
                wijk=name,
                new=new,
                done=done,
                stopped=stopped,
                stuck=stuck,
                waiting=waiting,
            )
        )
    if len(parts) == 1:
        parts.append(t("Nothing new, nothing stalled. 🎉"))
    parts.append(t("Details: /vastgelopen, /onverdeeld, /overzicht, /makelaars"))
    return Reply(parts[0], extra=tuple(parts[1:]))
