"""The overview per wijk (GET /dashboard): seven figures, each a chart with its numbers in a table beside it.

The figures about a period count the initiatives submitted in it (by default the last 12 calendar
months, this month included); realised initiatives count by the day they were realised, departments'
answers by the day they answered. Open cases, stalled cases and open questions to departments are about
now, whatever the period. The database adds everything up
(``storage.reports``); ``flows.reports`` turns the sums into figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.web.charts import Chart, bar_chart
from bot.web.site import SITE, VIEWER, Viewer
from flows import reports
from flows.lifecycle import Status, staff_label
from flows.municipality import Municipality
from flows.stalls import AMSTERDAM, Level, Track
from flows.text import Msg, t
from storage import reports as reports_store
from storage.reports import CaseFilter, Scope, parse_filter

# How many stalled cases the page lists; the case list shows them all.
STALLED_LIMIT = 20
# The calendar of working days reaches this far ahead of today, so it is written about once a year.
CALENDAR_AHEAD = timedelta(days=366)


@dataclass
class Calendar:
    """Up to which day this process has written the working-day calendar (None: not yet). Written on
    the first overview a process serves, so it follows the municipality's closing days as configured."""

    through: date | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def ensure(self, sessions: async_sessionmaker[AsyncSession], m: Municipality, today: date) -> None:
        if self.through is not None and self.through >= today:
            return
        async with self.lock:
            if self.through is not None and self.through >= today:
                return
            last = today + CALENDAR_AHEAD
            async with sessions() as session, session.begin():
                first = await reports_store.calendar_starts(session) or today
                await reports_store.refresh_calendar(session, m, min(first, today) - timedelta(days=1), last)
            self.through = last


CALENDAR = web.AppKey("overview_calendar", Calendar)


def add_routes(app: web.Application) -> None:
    app[CALENDAR] = Calendar()
    app.router.add_get("/dashboard", overview)


@dataclass(frozen=True, slots=True)
class Period:
    """The days the period figures cover, and how they were chosen."""

    first: date
    last: date
    chosen: str  # "default" (the last 12 months), "all" (since the first submission), "picked"


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything the overview shows, for one viewer's scope and filter."""

    period: Period
    open: list[reports.StatusCount]
    new: list[reports.PeriodCount]
    first_contact: reports.FirstContact
    stalled: list[reports.StalledCase]
    waits: list[reports.Wait]
    realised: list[reports.PeriodCount]
    departments: list[reports.DepartmentFigures]


def choose_period(f: CaseFilter, whole: bool, today: date, first_submitted: date | None) -> Period:
    """The period the filter asks for; without dates, the last 12 months, or all of it with ``whole``."""
    if f.since is not None or f.until is not None:
        return Period(f.since or first_submitted or today, min(f.until or today, today), "picked")
    if whole:
        return Period(first_submitted or today, today, "all")
    since, until = reports.default_period(today)
    return Period(since, until, "default")


async def figures(
    sessions: async_sessionmaker[AsyncSession],
    m: Municipality,
    scope: Scope,
    f: CaseFilter,
    now: datetime,
    *,
    whole: bool = False,
    calendar: Calendar | None = None,
) -> tuple[Figures, CaseFilter]:
    """Add up the overview for ``scope`` and ``f`` at ``now``; returns the filter with its period set."""
    today = now.astimezone(AMSTERDAM).date()
    calendar = calendar or Calendar()
    await calendar.ensure(sessions, m, today)
    async with sessions() as session:
        first = await reports_store.calendar_starts(session)
    period = choose_period(f, whole, today, first)
    f = replace(f, since=period.first, until=period.last)
    # The whole period needs no clause on the day of submission.
    counted = replace(f, since=None, until=None) if period.chosen == "all" else f
    now_filter = replace(f, since=None, until=None)  # open and stalled cases: now, whatever the period

    async def read(query: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        async with sessions() as session, session.begin():
            return await query(session)

    queries: list[Callable[[AsyncSession], Awaitable[Any]]] = [
        lambda s: reports_store.open_counts(s, scope, now_filter),
        lambda s: reports_store.submitted_per_day(s, scope, counted),
        lambda s: reports_store.first_contact_histogram(s, scope, counted, m),
        lambda s: reports_store.stall_candidates(s, scope, now_filter, m, now),
        lambda s: reports_store.spell_totals(s, scope, counted, m, today),
        lambda s: reports_store.realised_per_day(s, scope, counted, period.first, period.last),
        lambda s: reports_store.department_answers(s, scope, counted),
        lambda s: reports_store.open_department_questions(s, scope, now_filter),
    ]
    if sessions.kw["bind"].dialect.name == "postgresql":
        # Each on a connection of its own, at the same time: the server answers them side by side.
        answers = await asyncio.gather(*(read(q) for q in queries))
    else:  # SQLite answers in this process, one after the other anyway: one transaction
        async with sessions() as session, session.begin():
            answers = [await q(session) for q in queries]
    open_counts, per_day, (histogram, waiting), candidates, totals, realised, answered, asked = answers
    result = Figures(
        period=period,
        open=reports.open_by_status(open_counts),
        new=reports.per_month(per_day, period.first, period.last),
        first_contact=reports.first_contact(histogram, waiting, m),
        stalled=reports.stalled(candidates, m, now),
        waits=reports.waits(totals),
        realised=reports.per_quarter(realised, period.first, period.last),
        departments=reports.department_figures(m, answered, asked, now),
    )
    return result, f


async def overview(request: web.Request) -> web.Response:
    site = request.app[SITE]
    viewer: Viewer = request[VIEWER]
    m = site.municipality
    f, problems = parse_filter(request.query, m)
    whole = request.query.get("period") == "all"
    found, f = await figures(
        site.sessions, m, viewer.scope, f, site.clock(), whole=whole, calendar=request.app[CALENDAR]
    )
    lang = viewer.language

    def render(msg: Msg) -> str:
        return site.translator.render(msg, lang)

    context = _page(found, f, whole, m, render, lang)
    context["problems"] = [render(p) for p in problems]
    context["scope_wijken"] = ", ".join(_wijk_name(m, code) for code in viewer.staff.wijken)
    return aiohttp_jinja2.render_template("overview.html", request, context)


def cases_link(f: CaseFilter, **changes: Any) -> str:
    """The case list with the same filter, changed where asked (None drops a field)."""
    params = {**f.query(), **{k: v for k, v in changes.items() if v is not None}}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
    query = urlencode(params)
    return "/dashboard/cases" + (f"?{query}" if query else "")


def _wijk_name(m: Municipality, code: str) -> str:
    wijk = m.wijk(code)
    return wijk.name if wijk else code


def _quarter(start: date, render: Callable[[Msg], str]) -> str:
    return render(t("Q{quarter} {year}", quarter=(start.month - 1) // 3 + 1, year=str(start.year)))


def _department_name(m: Municipality, code: str) -> str:
    """The department's name in the configuration; a code it does not know (any more) as it is."""
    department = m.department(code)
    return department.name if department is not None else code


def _waiter_name(w: reports.Waiter, m: Municipality, render: Callable[[Msg], str]) -> str:
    if w.party is reports.Party.RESIDENT:
        return render(t("The initiators (residents)"))
    if w.party is reports.Party.BROKER:
        return render(t("The initiatiefmakelaar"))
    name = _department_name(m, w.department) if w.department else render(t("not recorded"))
    return render(t("Department: {department}", department=name))


LEVELS: dict[Level, Msg] = {
    Level.REMINDER: t("Reminder"),
    Level.ESCALATION: t("Escalation"),
    Level.URGENT: t("Urgent escalation"),
}
TRACKS: dict[Track, Msg] = {
    Track.STATUS: t("Too long in the status"),
    Track.SILENCE: t("No sign of life from the initiatiefmakelaar"),
    Track.DEPARTMENT: t("A department has not answered in time"),
}


def _page(
    found: Figures,
    f: CaseFilter,
    whole: bool,
    m: Municipality,
    render: Callable[[Msg], str],
    lang: str,
) -> dict[str, Any]:
    """The template's context: per figure a chart and the rows of its table."""
    period = found.period
    status_names = {s.value: render(staff_label(s.value)) for s in Status}
    open_rows = [(c.status, status_names[c.status], c.count) for c in found.open]
    months = [(format_date(p.start, "MMMM y", locale=lang), p.count) for p in found.new]
    quarters = [(_quarter(p.start, render), p.count) for p in found.realised]
    fc = found.first_contact
    contact_bars = reports.contact_buckets(fc)
    wait_rows = [(_waiter_name(w.waiter, m, render), w) for w in found.waits]
    levels = reports.level_counts(found.stalled)
    department_rows = [(_department_name(m, d.department), d) for d in found.departments]
    judged = [(name, d.within_norm_share) for name, d in department_rows if d.within_norm_share is not None]
    n = render(t("Initiatives"))
    charts: dict[str, Chart] = {
        "open": bar_chart(
            render(t("Open cases by status")),
            [name for _, name, _ in open_rows],
            [count for _, _, count in open_rows],
            horizontal=True,
            value_title=n,
            language=lang,
        ),
        "new": bar_chart(
            render(t("New initiatives per month")),
            [format_date(p.start, "MMM y", locale=lang) for p in found.new],
            [p.count for p in found.new],
            value_title=n,
            language=lang,
        ),
        "contact": bar_chart(
            render(t("Working days from submission to first contact")),
            [label for label, _ in contact_bars],
            [count for _, count in contact_bars],
            value_title=n,
            language=lang,
        ),
        "stalled": bar_chart(
            render(t("Stalled cases by the step they reached")),
            [render(LEVELS[level]) for level, _ in levels],
            [count for _, count in levels],
            horizontal=True,
            value_title=n,
            language=lang,
        ),
        "waits": bar_chart(
            render(t("Average working days a case waited, per party")),
            [name for name, _ in wait_rows],
            [round(w.average, 1) for _, w in wait_rows],
            horizontal=True,
            value_title=render(t("Working days")),
            language=lang,
        ),
        "departments": bar_chart(
            render(t("Final answers within the norm, per department (%)")),
            [name for name, _ in judged],
            [share for _, share in judged],
            horizontal=True,
            value_title=render(t("Percent within the norm")),
            language=lang,
        ),
        "realised": bar_chart(
            render(t("Initiatives realised per quarter")),
            [label for label, _ in quarters],
            [count for _, count in quarters],
            value_title=n,
            language=lang,
        ),
    }
    return {
        "f": f,
        "whole": whole,
        "period": period,
        "charts": charts,
        "open_rows": open_rows,
        "open_total": sum(count for _, _, count in open_rows),
        "months": months,
        "new_total": sum(count for _, count in months),
        "fc": fc,
        "contact_bars": contact_bars,
        "stalled": found.stalled[:STALLED_LIMIT],
        "stalled_total": len(found.stalled),
        "levels": [(render(LEVELS[level]), count) for level, count in levels],
        "level_names": {level: render(LEVELS[level]) for level in Level},
        "track_names": {track: render(TRACKS[track]) for track in Track},
        "wait_rows": wait_rows,
        "department_rows": department_rows,
        "quarters": quarters,
        "realised_total": sum(count for _, count in quarters),
        "cases_link": lambda **changes: cases_link(f, **changes),
        "now_link": lambda **changes: cases_link(f, since=None, until=None, **changes),
        "all_link": "/dashboard?" + urlencode({**_without_period(f), "period": "all"}),
    }


def _without_period(f: CaseFilter) -> dict[str, str]:
    return {key: value for key, value in f.query().items() if key not in ("since", "until")}
