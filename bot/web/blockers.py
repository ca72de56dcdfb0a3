"""The blocker list (GET /dashboard/blokkades): every "nee" a department gave because a rule or a lack of
mandate blocks the idea, with what coordinators did about it, open ones first. Zutphen's ADDO model
calls it "vraag aan de hogere laag": the coordinator takes it up the line and records what came of it.

Everyone sees the blockers of the cases they may see (a broker their own, read only); a coordinator who
covers the case's wijk records an action (POST /dashboard/blokkades/{question id}).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.web.site import SITE, VIEWER, Site, Viewer
from flows.blockers import MAX_ESCALATED_TO, MAX_OUTCOME, BlockerAction, check_action
from flows.department import blocked_label
from flows.text import Msg, t, verbatim
from storage import blockers as blockers_store
from storage import departments as departments_store
from storage.blockers import BlockerRow
from storage.db import reading
from storage.reports import scope_clause

BLOCKERS = "/dashboard/blokkades"

DONE: Mapping[str, Msg] = {
    "recorded": t("Recorded. The blocker shows what was done."),
    "resolved": t("Recorded. The blocker is settled and moved to the settled list."),
}


def add_routes(app: web.Application) -> None:
    app.router.add_get(BLOCKERS, blocker_list)
    app.router.add_post(BLOCKERS + "/{question_id}", record_action)


async def _blockers(site: Site, viewer: Viewer) -> tuple[list[BlockerRow], dict[int, str]]:
    """The blockers the viewer may see, and the names of the staff who acted on them."""
    async with reading(site.sessions) as session:
        found = await blockers_store.blockers(session, where=scope_clause(viewer.scope))
        ids = {a.staff_id for b in found for a in b.actions if a.staff_id is not None}
        names = await departments_store.staff_names(session, ids)
    return found, names


async def _page(
    request: web.Request,
    *,
    errors: Mapping[int, dict[str, Msg]] | None = None,
    typed: Mapping[int, Mapping[str, Any]] | None = None,
    status: int = 200,
) -> web.Response:
    site = request.app[SITE]
    viewer: Viewer = request[VIEWER]
    found, names = await _blockers(site, viewer)

    def render(msg: Msg) -> str:
        return site.translator.render(msg, viewer.language)

    done = DONE.get(request.query.get("done", "")) if status == 200 else None
    errors = errors or {}
    context = {
        "open": [b for b in found if not b.resolved],
        "settled": [b for b in found if b.resolved],
        "staff_names": names,
        "blocked_by": {
            b.question.id: render(
                blocked_label(b.question.blocked_by) or verbatim(b.question.blocked_by or "")
            )
            for b in found
        },
        "may_act": {b.question.id: _may_act(viewer, b) for b in found},
        "errors": {
            qid: {field: render(msg) for field, msg in fields.items()} for qid, fields in errors.items()
        },
        "typed": typed or {},
        "message": render(done) if done else None,
        "scope_wijken": ", ".join(
            (w.name if (w := site.municipality.wijk(code)) else code) for code in viewer.staff.wijken
        ),
        "max_escalated_to": MAX_ESCALATED_TO,
        "max_outcome": MAX_OUTCOME,
    }
    return aiohttp_jinja2.render_template("blockers.html", request, context, status=status)


def _may_act(viewer: Viewer, blocker: BlockerRow) -> bool:
    """A coordinator who covers the case's wijk records actions; a broker only reads."""
    return viewer.staff.is_coordinator and viewer.staff.covers(blocker.wijk_code)


async def blocker_list(request: web.Request) -> web.Response:
    return await _page(request)


def _question_id(request: web.Request) -> int | None:
    raw = request.match_info["question_id"]
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


async def record_action(request: web.Request) -> web.Response:
    """Record what a coordinator did about a blocker; back to the list with a confirmation."""
    site = request.app[SITE]
    viewer: Viewer = request[VIEWER]
    if not viewer.staff.is_coordinator:
        raise web.HTTPForbidden()
    question_id = _question_id(request)
    found, _ = await _blockers(site, viewer)
    blocker = next((b for b in found if b.question.id == question_id), None)
    if blocker is None:
        raise web.HTTPNotFound()
    if not _may_act(viewer, blocker):
        raise web.HTTPForbidden()
    form = await request.post()
    escalated_to, outcome = str(form.get("escalated_to", "")), str(form.get("outcome", ""))
    resolved = form.get("resolved") == "1"
    checked = check_action(escalated_to=escalated_to, outcome=outcome, resolved=resolved)
    fields = {"escalated_to": escalated_to, "outcome": outcome, "resolved": resolved}
    if not isinstance(checked, BlockerAction):
        return await _page(
            request, errors={blocker.question.id: checked}, typed={blocker.question.id: fields}, status=400
        )
    async with site.sessions() as session, session.begin():
        await blockers_store.add_blocker_action(
            session,
            blocker.question.id,
            staff_id=viewer.staff.id,
            escalated_to=checked.escalated_to,
            outcome=checked.outcome,
            resolved=checked.resolved,
            now=site.clock(),
        )
    done = "resolved" if checked.resolved else "recorded"
    raise web.HTTPSeeOther(f"{BLOCKERS}?done={done}#blocker-{blocker.question.id}")
