"""The case list, the case page with its photo, and the coordinator's actions on it (assign, remind).

The actions run through the same ``Casework`` as in Telegram, in one transaction, and their messages go
to the outbox for the sweep to send: the broker gets what a coordinator's button in Telegram sends.
After a form the browser is sent back to the case page with a short code (``?done=assigned``) that the
page turns into a sentence; the link carries no personal data.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Mapping
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram.error import TelegramError

from bot.casework import OPEN
from bot.notifications import enqueue_for_sweep
from bot.web.department_questions import department_section
from bot.web.site import SITE, VIEWER, Site, Viewer
from flows.broker import event_text, merged  # the bot's own sentences for its timeline
from flows.cases import CaseView, Notification, TimelineItem
from flows.commands import Assign, Handover, RemindBroker
from flows.coordinator import standing_text
from flows.events import Event, EventKind, Reply
from flows.intake import NEEDS
from flows.lifecycle import is_final
from flows.municipality import Municipality
from flows.resident import LANGUAGES, Conversation, Outcome
from flows.stalls import (
    AMSTERDAM,
    Level,
    StallFacts,
    stalled_standings,
    status_standing,
    working_days_between,
)
from flows.text import Msg, t, verbatim
from flows.validators import clean_text
from storage import audit
from storage import case_list as store
from storage import departments as departments_store
from storage import staff as staff_store
from storage.case_list import Holder, Sort, SortKey
from storage.db import reading
from storage.initiatives import CaseRow, TimelineEntry, TimelineKind, load_case, timeline
from storage.reports import Scope, parse_filter, scope_clause
from storage.tables import initiatives

log = logging.getLogger(__name__)

CASES = "/dashboard/cases"
NOTE_MAX = 2000


def add_routes(app: web.Application) -> None:
    app.router.add_get(CASES, case_list)
    app.router.add_get(CASES + "/{reference}", case_page)
    app.router.add_get(CASES + "/{reference}/photo", case_photo)
    app.router.add_post(CASES + "/{reference}/assign", assign)
    app.router.add_post(CASES + "/{reference}/remind", remind)
    app.router.add_post(CASES + "/{reference}/links/{link}/revoke", revoke_link)


def _url(path: str, params: Mapping[str, str | int]) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in ("", None)})
    return f"{path}?{query}" if query else path


# --- the list ----------------------------------------------------------------------------------------

# Column order of the table, with the sort key of each sortable column.
COLUMNS: tuple[tuple[Msg, SortKey | None], ...] = (
    (t("Reference"), SortKey.REFERENCE),
    (t("Title"), None),
    (t("Wijk"), SortKey.WIJK),
    (t("Theme"), SortKey.THEME),
    (t("Status"), SortKey.STATUS),
    (t("Working days in this status"), SortKey.DAYS),
    (t("Initiatiefmakelaar"), SortKey.BROKER),
    (t("Submitted"), SortKey.SUBMITTED),
)


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and len(raw) < 7 else 1


async def case_list(request: web.Request) -> web.Response:
    site: Site = request.app[SITE]
    viewer: Viewer = request[VIEWER]
    m = site.municipality
    now = site.clock()
    f, problems = parse_filter(request.query, m)
    sort = Sort.parse(request.query.get("sort"))
    wijk_order = [w.code for w in sorted(m.wijken, key=lambda w: w.name.lower())]
    theme_order = [x.code for x in sorted(m.themes, key=lambda x: x.label(viewer.language).lower())]
    async with reading(site.sessions) as session:
        page = await store.case_page(
            session,
            viewer.scope,
            f,
            m,
            sort=sort,
            page=_page_number(request.query.get("page")),
            now=now,
            wijk_order=wijk_order,
            theme_order=theme_order,
        )
    lines = [
        {
            "row": row,
            "days": working_days_between(row.status_changed_at, now, m.closing_days),
            "clock": status_standing(row.facts, m, now),
            "stalled": stalled_standings(row.facts, m, now),
        }
        for row in page.rows
    ]
    keep = f.query()
    headers = []
    for msg, key in COLUMNS:
        label = site.translator.render(msg, viewer.language)
        if key is None:
            headers.append({"label": label, "url": None, "aria_sort": None, "key": None})
            continue
        current = sort.key is key
        # A click on the current column turns it round; on another it starts at the natural direction.
        descending = not sort.descending if current else key in (SortKey.SUBMITTED, SortKey.DAYS)
        headers.append(
            {
                "label": label,
                "key": key.value,
                "url": _url(CASES, {**keep, "sort": Sort(key, descending).param}),
                "aria_sort": ("descending" if sort.descending else "ascending") if current else None,
            }
        )
    keep_sort = {**keep, "sort": sort.param}
    context = {
        "f": f,
        "problems": [site.translator.render(p, viewer.language) for p in problems],
        "page": page,
        "lines": lines,
        "headers": headers,
        "sort": sort,
        "prev_url": _url(CASES, {**keep_sort, "page": page.page - 1}) if page.page > 1 else None,
        "next_url": _url(CASES, {**keep_sort, "page": page.page + 1}) if page.page < page.pages else None,
        "exports": {
            name: _url(f"/dashboard/export/{name}", keep)
            for name in ("cases.csv", "cases.xlsx", "council.csv", "council.xlsx")
        },
        "filtered": bool(keep),
    }
    return aiohttp_jinja2.render_template("cases.html", request, context)


# --- the case page -----------------------------------------------------------------------------------


async def _visible_case(session: AsyncSession, scope: Scope, reference: str) -> CaseRow | None:
    """The case when it exists and the viewer may see it; None for both other cases (never say which)."""
    case = await load_case(session, reference)
    if case is None:
        return None
    conn = await session.connection()
    seen = await conn.execute(
        select(initiatives.c.id).where(initiatives.c.id == case.id, scope_clause(scope))
    )
    return case if seen.first() is not None else None


def _reference(request: web.Request) -> str:
    return request.match_info["reference"].strip().upper()[:40]


def _not_found(request: web.Request, reference: str) -> web.Response:
    return aiohttp_jinja2.render_template(
        "case.html", request, {"missing": True, "reference": reference}, status=404
    )


# The messages behind ``?done=`` and ``?error=`` after a form (no names in the link, only codes).
DONE: Mapping[str, Msg] = {
    "assigned": t("The initiative is assigned. The initiatiefmakelaar gets a message in Telegram."),
    "handed_over": t("The initiative has a new initiatiefmakelaar. They get a message in Telegram."),
    "reminded": t("Reminder sent. The initiatiefmakelaar gets it in Telegram."),
    "link_revoked": t("The link is revoked. It no longer opens the initiative."),
}
ERRORS: Mapping[str, Msg] = {
    "choose": t("Choose another initiatiefmakelaar."),
    "not_broker": t("That initiatiefmakelaar cannot take initiatives (any more)."),
    "unreachable": t(
        "The bot cannot reach this initiatiefmakelaar: they have not opened the bot yet, or they "
        "blocked it. Choose someone else."
    ),
    "no_broker": t("This initiative has no initiatiefmakelaar yet."),
    "closed": t("This initiative is closed."),
    "note": t("Please write between 1 and {max} characters.", max=NOTE_MAX),
    "link": t("That link was revoked already."),
}


async def case_page(request: web.Request) -> web.Response:
    site: Site = request.app[SITE]
    viewer: Viewer = request[VIEWER]
    m = site.municipality
    now = site.clock()
    reference = _reference(request)
    async with reading(site.sessions) as session:
        case = await _visible_case(session, viewer.scope, reference)
        if case is None:
            return _not_found(request, reference)
        broker = await staff_store.staff_by_id(session, case.broker_id) if case.broker_id else None
        entries = await timeline(session, case.id, resident_view=False)
        may_act = viewer.may_act_on(case.broker_id, case.wijk_code)
        can_manage = may_act and viewer.staff.is_coordinator and not is_final(case.status)
        loads = await staff_store.broker_loads(session, open_statuses=OPEN) if can_manage else []
        departments = await department_section(session, m, case, broker.name if broker else None, now)
    show_contact = may_act and request.query.get("contact") == "1"
    if show_contact:
        async with site.sessions() as session, session.begin():
            await audit.record(
                session, staff_id=viewer.staff.id, action="view_contact", initiative_id=case.id, now=now
            )
    unassigned_at = next((e.at for e in reversed(entries) if e.kind == TimelineKind.UNASSIGNED.value), None)
    facts = StallFacts.of(case)
    norm = store.norm_date(facts, m, now)

    def render(msg: Msg) -> str:
        return site.translator.render(msg, viewer.language)

    done = DONE.get(request.query.get("done", ""))
    error = ERRORS.get(request.query.get("error", ""))
    context = {
        "missing": False,
        "case": case,
        "broker": broker,
        "responsible": store.responsible(
            case.status,
            case.status_changed_at,
            case.created_at,
            broker_id=case.broker_id,
            broker_name=broker.name if broker else None,
            assigned_at=case.assigned_at,
            department=case.department,
            unassigned_at=unassigned_at,
        ),
        "holders": Holder,
        "norm": norm,
        "stalled": [render(standing_text(s)) for s in (norm.stalled if norm else ())],
        "next_step": render(LEVEL_NAMES[norm.next_step[0]]) if norm and norm.next_step else None,
        "next_step_at": norm.next_step[1] if norm and norm.next_step else None,
        "needs": [render(NEED_LABELS.get(code) or verbatim(code)) for code in case.needs],
        "days_in_status": working_days_between(case.status_changed_at, now, m.closing_days),
        "timeline": [_entry(item) for item in reversed(merged([_item(e, m) for e in entries]))],
        "may_act": may_act,
        "can_manage": can_manage,
        "show_contact": show_contact,
        "contact_url": _url(f"{CASES}/{case.reference}", {"contact": 1}) + "#contact",
        "brokers": [b for b in loads if b.reachable and b.staff_id != case.broker_id],
        "today": now.astimezone(AMSTERDAM).date(),
        "photo": bool(case.photo_file_id),
        "photo_online": bool(case.photo_file_id) and site.bot is not None,
        "message": site.translator.render(done or error, viewer.language) if (done or error) else None,
        "message_ok": done is not None,
        "amount": case.amount_cents / 100 if case.amount_cents is not None else None,
        "language_name": LANGUAGES.get(case.language, case.language),
        "departments": departments,
    }
    return aiohttp_jinja2.render_template("case.html", request, context)


NEED_LABELS: Mapping[str, Msg] = {option.code: option.label for option in NEEDS}
LEVEL_NAMES: Mapping[Level, Msg] = {
    Level.REMINDER: t("a reminder to the initiatiefmakelaar"),
    Level.ESCALATION: t("an escalation to the coordinators"),
    Level.URGENT: t("an urgent escalation"),
}


def _item(e: TimelineEntry, m: Municipality) -> TimelineItem:
    """A stored timeline entry as the bot's timeline sees it (``flows.broker.merged`` joins an assignment
    and the status it caused into one)."""
    who_name = e.staff_name or e.to_staff_name if e.kind != "status" else e.staff_name
    department = m.department(e.department) if e.department else None
    shown = department.name if department else e.department
    return TimelineItem(
        e.at,
        e.kind,
        e.status,
        who_name,
        e.actor_role,
        e.note,
        shown,
        to_name=e.to_staff_name,
        internal=not e.visible_to_resident,
        media_kind=e.media_kind,
        media_name=e.media_name,
        media_seconds=e.media_seconds,
    )


def _entry(item: TimelineItem) -> dict[str, object]:
    """A timeline entry for the template, in the words of the bot's timeline."""
    if item.staff_name:
        who: Msg = verbatim(item.staff_name)
    elif item.actor_role == "resident":
        who = t("the initiator")
    elif item.actor_role == "system":
        who = t("the bot")
    else:
        who = t("the municipality")
    return {"at": item.at, "who": who, "what": event_text(item, False), "internal": item.internal}


# --- the photo ---------------------------------------------------------------------------------------


async def case_photo(request: web.Request) -> web.Response:
    """The case's photo, fetched from Telegram (the bot keeps only its file id)."""
    site: Site = request.app[SITE]
    viewer: Viewer = request[VIEWER]
    async with reading(site.sessions) as session:
        case = await _visible_case(session, viewer.scope, _reference(request))
    return await telegram_photo(site, case.photo_file_id if case is not None else None)


async def telegram_photo(site: Site, file_id: str | None) -> web.Response:
    """A photo the bot keeps only the Telegram file id of, fetched now; 404 without one (or without a bot)."""
    missing = web.Response(status=404, text="The photo is in Telegram.", content_type="text/plain")
    if not file_id or site.bot is None:
        return missing
    try:
        file = await site.bot.get_file(file_id)
        data = await file.download_as_bytearray()
    except (TelegramError, OSError) as exc:
        # The exception's text may hold the file's URL, and with it the bot token: only its type is logged.
        log.warning(
            "staff web: the photo of a case could not be fetched from Telegram (%s)", type(exc).__name__
        )
        return missing
    guessed, _ = mimetypes.guess_type(file.file_path or "")
    content_type = guessed if guessed and guessed.startswith("image/") else "image/jpeg"
    return web.Response(body=bytes(data), content_type=content_type, headers={"Cache-Control": "private"})


# --- the actions -------------------------------------------------------------------------------------


def _back(reference: str, **params: str | int) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(_url(f"{CASES}/{reference}", params))


def _event(viewer: Viewer) -> Event:
    """The form post as the event the case rules expect (a coordinator's button in their own chat)."""
    user = viewer.staff.telegram_user_id
    return Event(EventKind.BUTTON, user_id=user, chat_id=user, private_chat=True)


async def _case_to_act_on(
    session: AsyncSession, site: Site, viewer: Viewer, reference: str
) -> CaseView | None:
    """The case, row-locked, for a coordinator who covers it; None when the viewer may not see it.
    Raises 403 for a viewer who sees it but may not act (a broker), and back to the page when it is closed."""
    if await _visible_case(session, viewer.scope, reference) is None:
        return None
    case = await site.casework.case(session, reference)
    assert case is not None
    if not (viewer.staff.is_coordinator and viewer.staff.covers(case.wijk_code)):
        raise web.HTTPForbidden()
    if is_final(case.status):
        raise _back(reference, error="closed")
    return case


async def assign(request: web.Request) -> web.Response:
    """Assign a case without a broker (``Assign``), or give it to another broker (``Handover``, with
    an optional note for the new broker), as a coordinator does in Telegram."""
    site: Site = request.app[SITE]
    viewer: Viewer = request[VIEWER]
    form = await request.post()
    reference = _reference(request)
    raw = str(form.get("broker", ""))
    to = int(raw) if raw.isdigit() and len(raw) < 10 else None
    note = clean_text(str(form.get("note", "")), keep_newlines=True) or None
    now = site.clock()
    async with site.sessions() as session, session.begin():
        case = await _case_to_act_on(session, site, viewer, reference)
        if case is None:
            return _not_found(request, reference)
        if to is None or to == case.broker_id:
            raise _back(reference, error="choose")
        if note is not None and len(note) > NOTE_MAX:
            raise _back(reference, error="note")
        command = Assign(reference, to) if case.broker_id is None else Handover(reference, to, note)
        out = await site.casework.run(
            session,
            command,
            Outcome(Conversation()),
            event=_event(viewer),
            staff=viewer.staff,
            case=case,
            now=now,
        )
        target = await staff_store.staff_by_id(session, to)
        if not out.notifications or target is None:
            usable = target is not None and target.active and target.role == "broker"
            raise _back(reference, error="unreachable" if usable else "not_broker")
        notes = list(out.notifications)
        if isinstance(command, Handover) and case.broker_telegram_id:
            # In Telegram a hand-over comes from the broker themself; from here the broker it leaves hears.
            moved = Reply(t("{reference} now goes to {broker}.", reference=reference, broker=target.name))
            notes.append(Notification(case.broker_telegram_id, case.broker_telegram_id, moved))
        await enqueue_for_sweep(session, notes, site.translator, now)
    raise _back(reference, done="assigned" if isinstance(command, Assign) else "handed_over")


async def remind(request: web.Request) -> web.Response:
    """Send the case's broker a reminder with the case card, as the coordinator's button in Telegram."""
    site: Site = request.app[SITE]
    viewer: Viewer = request[VIEWER]
    reference = _reference(request)
    now = site.clock()
    async with site.sessions() as session, session.begin():
        case = await _case_to_act_on(session, site, viewer, reference)
        if case is None:
            return _not_found(request, reference)
        if case.broker_telegram_id is None:
            raise _back(reference, error="no_broker")
        out = await site.casework.run(
            session,
            RemindBroker(reference),
            Outcome(Conversation()),
            event=_event(viewer),
            staff=viewer.staff,
            case=case,
            now=now,
        )
        await enqueue_for_sweep(session, out.notifications, site.translator, now)
    raise _back(reference, done="reminded")


async def revoke_link(request: web.Request) -> web.Response:
    """End one personal link of a department contact (the case's broker, or a coordinator who covers it)."""
    site: Site = request.app[SITE]
    viewer: Viewer = request[VIEWER]
    reference = _reference(request)
    raw = request.match_info["link"]
    link_id = int(raw) if raw.isdigit() and len(raw) < 12 else 0
    async with site.sessions() as session, session.begin():
        case = await _visible_case(session, viewer.scope, reference)
        if case is None:
            return _not_found(request, reference)
        if not viewer.may_act_on(case.broker_id, case.wijk_code):
            raise web.HTTPForbidden()
        revoked = await departments_store.revoke_links(
            session, case.id, now=site.clock(), reason="staff", staff_id=viewer.staff.id, link_id=link_id
        )
    raise _back(reference, done="link_revoked") if revoked else _back(reference, error="link")
