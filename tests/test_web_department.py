"""A department's answer page: a contact opens their personal link from the e-mail, reads the question and
the case (never the initiator's contact details), and answers; the broker hears it at once in Telegram,
the initiator gets one sentence. Links that no longer open say why and what to do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio
from sqlalchemy import select

from bot.departments import DepartmentDesk
from bot.web.site import SITE, Site
from flows import department as rules
from flows.municipality import Contact
from flows.text import Msg, t
from storage import blockers as blockers_store
from storage import departments as store
from storage import initiatives as initiatives_store
from storage.staff import StaffRow
from storage.tables import department_questions, mail_outbox, outbox
from tests.department_support import (
    QUESTION,
    answer_with_client,
    form_token_of,
    link_of,
    put_to_department,
)
from tests.web_support import WebWorld, web_world

VERKEER = Contact("Team Verkeer", "verkeer@zutphen.example")
GROEN = Contact("Team Groen", "groen@zutphen.example")
# What the seeded initiator left behind; none of it may reach a department's page.
RESIDENT = {
    "name": "Fatima el Amrani",
    "phone": "06-98765432",
    "email": "fatima.elamrani@example.org",
    "telegram": "7770001",
}


@dataclass
class Desk:
    """A case at the department Verkeer, with its broker, and Team Verkeer's link to it."""

    web: WebWorld
    broker: StaffRow
    reference: str
    path: str

    @property
    def site(self) -> Site:
        return self.web.client.server.app[SITE]

    @property
    def desk(self) -> DepartmentDesk:
        return self.site.desk

    def nl(self, msg: Msg) -> str:
        return self.site.translator.render(msg, "nl")

    async def page(self, path: str | None = None) -> tuple[int, str]:
        response = await self.web.client.get(path or self.path, allow_redirects=False)
        return response.status, await response.text()

    async def rows(self, stmt: Any) -> list[tuple[Any, ...]]:
        async with self.web.runtime.sessions() as session, session.begin():
            conn = await session.connection()
            return [tuple(row) for row in await conn.execute(stmt)]

    async def question(self, department: str = "verkeer") -> Any:
        async with self.web.runtime.sessions() as session:
            case = await initiatives_store.load_case(session, self.reference)
            assert case is not None
            return await store.latest_question(session, case.id, department=department)

    async def messages_to(self, chat_id: int) -> list[dict[str, Any]]:
        rows = await self.rows(
            select(outbox.c.payload).where(outbox.c.chat_id == chat_id).order_by(outbox.c.id)
        )
        return [row[0] for row in rows]


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[Desk]:
    async with web_world(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}") as web:
        broker = await web.add_staff("Bram Bakker", role="broker")
        reference = await web.add_case(
            broker=broker,
            resident_user_id=int(RESIDENT["telegram"]),
            resident_chat_id=int(RESIDENT["telegram"]),
            contact_name=RESIDENT["name"],
            contact_phone=RESIDENT["phone"],
            contact_email=RESIDENT["email"],
            own_contribution="Wij schilderen de bankjes en houden ze schoon.",
        )
        site = web.client.server.app[SITE]
        sessions = web.runtime.sessions
        await put_to_department(sessions, site.desk, reference, staff_id=broker.id, now=web.clock())
        path = await link_of(sessions, site.desk, reference, VERKEER, now=web.clock())
        yield Desk(web, broker, reference, path)


def buttons(payload: dict[str, Any]) -> list[str]:
    keyboard = payload.get("reply_markup", {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in keyboard for button in row]


async def test_the_page_shows_the_question_first_then_the_case_and_never_the_initiators_details(
    world: Desk,
) -> None:
    status, html = await world.page()
    assert status == 200
    assert QUESTION in html and "Bankjes bij de speeltuin" in html
    assert "Wij schilderen de bankjes" in html and "openstreetmap.org/?mlat=" in html
    assert html.index(QUESTION) < html.index("Wij schilderen de bankjes")
    assert "Bram Bakker" in html and 'value="Team Verkeer"' in html  # who asked; the name field prefilled
    assert '<html lang="nl">' in html
    for value in RESIDENT.values():
        assert value not in html, value
    response = await world.web.client.get(world.path)
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "<script" not in html and "style=" not in html
    # The link was used: staff see when.
    async with world.web.runtime.sessions() as session:
        case = await initiatives_store.load_case(session, world.reference)
        assert case is not None
        (link,) = [x for x in await store.links_of(session, case.id) if x.email == VERKEER.email]
    assert link.last_used_at == world.web.clock()


async def test_yes_under_conditions_reaches_the_broker_with_buttons_and_the_initiator_in_one_sentence(
    world: Desk,
) -> None:
    conditions = "Alleen als de bankjes minstens 1,5 meter van de rijbaan staan."
    status, _, location = await answer_with_client(world.web.client, world.path, "voorwaarden", conditions)
    assert status == 303 and location == world.path + "?verstuurd=1"
    status, html = await world.page(location)
    assert status == 200
    assert world.nl(t("Thank you. Your answer has been passed on to {broker}.", broker="Bram Bakker")) in html
    assert conditions in html and 'name="formtoken"' not in html  # answered: read-only
    question = await world.question()
    assert question.state == "answered" and question.answer_kind == "voorwaarden"
    assert question.answer_text == conditions and question.answered_within_norm is True
    (to_broker,) = await world.messages_to(world.broker.telegram_user_id)
    assert conditions in to_broker["text"]
    assert any(":dplan" in data for data in buttons(to_broker)), buttons(to_broker)
    assert any("goedgekeurd" in data for data in buttons(to_broker))
    (to_resident,) = await world.messages_to(int(RESIDENT["telegram"]))
    assert to_resident["text"] == world.nl(rules.resident_sentence("Verkeer", "Bram Bakker"))
    assert conditions not in to_resident["text"]


async def test_yes_needs_no_text(world: Desk) -> None:
    status, _, _ = await answer_with_client(world.web.client, world.path, "ja")
    assert status == 303
    assert (await world.question()).answer_kind == "ja"
    (to_broker,) = await world.messages_to(world.broker.telegram_user_id)
    assert any("goedgekeurd" in data for data in buttons(to_broker))


async def test_no_blocked_by_a_rule_goes_on_the_blocker_list(world: Desk) -> None:
    status, _, _ = await answer_with_client(
        world.web.client, world.path, "nee", "De APV verbiedt meubilair op de stoep.", blocked_by="regel"
    )
    assert status == 303
    async with world.web.runtime.sessions() as session:
        blockers = await blockers_store.blockers(session)
    assert [(b.reference, b.question.blocked_by) for b in blockers] == [(world.reference, "regel")]
    (to_broker,) = await world.messages_to(world.broker.telegram_user_id)
    assert any("afgewezen" in data for data in buttons(to_broker))


async def test_no_for_lack_of_mandate_is_a_blocker_and_something_else_is_not(world: Desk) -> None:
    await answer_with_client(
        world.web.client, world.path, "nee", "Dat beslist de provincie.", blocked_by="mandaat"
    )
    assert (await world.question()).blocked_by == "mandaat"
    other = await world.web.add_case(broker=world.broker)
    await put_to_department(world.web.runtime.sessions, world.desk, other, now=world.web.clock())
    path = await link_of(world.web.runtime.sessions, world.desk, other, VERKEER, now=world.web.clock())
    await answer_with_client(world.web.client, path, "nee", "Te weinig ruimte.", blocked_by="")
    async with world.web.runtime.sessions() as session:
        assert [b.reference for b in await blockers_store.blockers(session)] == [world.reference]


async def test_more_information_with_a_date_waits_on_the_broker(world: Desk) -> None:
    promised = date(2026, 12, 18)
    status, _, location = await answer_with_client(
        world.web.client,
        world.path,
        "informatie",
        "Hoe breed is de stoep daar?",
        promised_on=promised.isoformat(),
    )
    assert status == 303
    question = await world.question()
    assert question.state == "info" and question.promised_on == promised
    _, html = await world.page(location)
    assert "Hoe breed is de stoep daar?" in html
    assert (
        world.nl(
            t("When the initiatiefmakelaar answers your question, you get an e-mail with this same link.")
        )
        in html
    )
    # They may still give a final answer (the form stays), e.g. after a phone call.
    assert 'name="formtoken"' in html
    (to_broker,) = await world.messages_to(world.broker.telegram_user_id)
    assert any(":drep" in data for data in buttons(to_broker))


async def test_not_for_us_forwards_to_the_other_department_and_ends_this_link(world: Desk) -> None:
    status, _, location = await answer_with_client(
        world.web.client, world.path, "niet_voor_ons", "Bankjes zijn van Groen.", forward_to="groen"
    )
    assert status == 303
    first = await world.question("verkeer")
    assert first.state == "forwarded" and first.forwarded_to == "groen"
    second = await world.question("groen")
    assert second.state == "open" and second.question == QUESTION and second.forwarded_from_id == first.id
    # The thanks, without anything of the case; the link itself now says it moved on.
    status, html = await world.page(location)
    assert status == 410 and world.nl(t("Thank you. Your answer has been passed on.")) in html
    assert "Bankjes bij de speeltuin" not in html
    status, _ = await world.page()
    assert status == 410
    # Team Groen got an e-mail with a link of their own, which opens the same case and question.
    mails = await world.rows(
        select(mail_outbox.c.to_address, mail_outbox.c.body).where(mail_outbox.c.kind == "question")
    )
    assert [to for to, _ in mails] == [VERKEER.email, GROEN.email]
    groen = await link_of(
        world.web.runtime.sessions,
        world.desk,
        world.reference,
        GROEN,
        department="groen",
        now=world.web.clock(),
    )
    assert groen in mails[1][1]
    status, html = await world.page(groen)
    assert status == 200 and QUESTION in html and "Bankjes zijn van Groen." in html  # the history
    # The initiator hears nothing yet: the question is still open, with another department.
    assert await world.messages_to(int(RESIDENT["telegram"])) == []


async def test_mistakes_come_back_with_everything_typed_and_a_summary(world: Desk) -> None:
    client = world.web.client
    status, html, _ = await answer_with_client(client, world.path, "nee", "", blocked_by="regel", name="Kees")
    assert status == 422
    assert 'class="error-summary"' in html and 'href="#f-text"' in html
    assert 'aria-describedby="text-hint text-error"' in html
    assert 'id="kind-nee" name="kind" value="nee" checked' in html
    assert 'id="blocked-regel" name="blocked_by" value="regel" checked' in html
    assert 'value="Kees"' in html
    status, html, _ = await answer_with_client(
        client, world.path, "informatie", "Hoe breed?", promised_on="2026-01-01"
    )
    assert status == 422 and ">Hoe breed?</textarea>" in html and 'value="2026-01-01"' in html
    status, html, _ = await answer_with_client(client, world.path, "niet_voor_ons", forward_to="verkeer")
    assert status == 422 and 'href="#f-forward"' in html
    status, html, _ = await answer_with_client(client, world.path, "")
    assert status == 422 and 'href="#kind-ja"' in html
    assert (await world.question()).state == "open"
    assert await world.messages_to(world.broker.telegram_user_id) == []


async def test_a_post_without_the_pages_token_or_from_elsewhere_is_refused(world: Desk) -> None:
    client = world.web.client
    response = await client.post(world.path, data={"kind": "ja"}, allow_redirects=False)
    assert response.status == 403
    html = await (await client.get(world.path)).text()
    token = form_token_of(html)
    response = await client.post(
        world.path,
        data={"formtoken": token, "kind": "ja"},
        headers={"Origin": "https://elsewhere.example"},
        allow_redirects=False,
    )
    assert response.status == 403
    # A token of one link does not answer through another.
    other = await link_of(
        world.web.runtime.sessions,
        world.desk,
        world.reference,
        Contact("Kim", "kim@zutphen.example"),
        now=world.web.clock(),
    )
    response = await client.post(other, data={"formtoken": token, "kind": "ja"}, allow_redirects=False)
    assert response.status == 403
    assert (await world.question()).state == "open"


async def test_a_revoked_link_says_so_without_the_case(world: Desk) -> None:
    async with world.web.runtime.sessions() as session, session.begin():
        case = await initiatives_store.load_case(session, world.reference)
        assert case is not None
        await store.revoke_links(session, case.id, now=world.web.clock(), reason="staff")
    status, html = await world.page()
    assert status == 410
    assert world.nl(t("This link has been revoked")) in html
    assert "Bankjes" not in html and QUESTION not in html and "initiatieven@zutphen.example" in html
    response = await world.web.client.post(world.path, data={"formtoken": "x", "kind": "ja"})
    assert response.status == 403


async def test_unknown_and_tampered_links_are_not_found(world: Desk) -> None:
    link_id, mac = world.path.rsplit("/", 1)[1].split("-")
    for token in (f"{link_id}-{'0' * 40}", f"{int(link_id) + 50}-{mac}", "nonsense", f"{link_id}-{mac[:-1]}"):
        status, html = await world.page(f"/afdeling/{token}")
        assert status == 404, token
        assert "Bankjes" not in html
    # A valid token of another case shows that case, never this one.
    other = await world.web.add_case(broker=world.broker, title="Moestuin aan de IJssel")
    await put_to_department(world.web.runtime.sessions, world.desk, other, now=world.web.clock())
    path = await link_of(world.web.runtime.sessions, world.desk, other, VERKEER, now=world.web.clock())
    _, html = await world.page(path)
    assert "Moestuin aan de IJssel" in html and "Bankjes bij de speeltuin" not in html
    response = await world.web.client.get(f"{world.path}/foto")
    assert response.status == 404  # no photo, and no bot to fetch one


async def test_a_link_after_the_case_moved_on_no_longer_opens(world: Desk) -> None:
    async with world.web.runtime.sessions() as session, session.begin():
        case = await initiatives_store.load_case(session, world.reference)
        assert case is not None
        await initiatives_store.change_status(
            session,
            case.id,
            status="plan_in_uitwerking",
            now=world.web.clock(),
            actor_role="broker",
            actor_user_id=None,
            staff_id=world.broker.id,
            note=None,
            department=None,
        )
    status, html = await world.page()
    assert status == 410 and world.nl(t("This link no longer works")) in html
    assert "Bankjes" not in html


async def test_an_answered_question_shows_read_only_and_a_second_answer_is_not_taken(world: Desk) -> None:
    client = world.web.client
    html = await (await client.get(world.path)).text()
    token = form_token_of(html)
    first = await client.post(
        world.path, data={"formtoken": token, "kind": "ja", "text": "Prima."}, allow_redirects=False
    )
    assert first.status == 303
    # The same form sent twice (a second tab): the second is not taken, and the page says so.
    again = await client.post(
        world.path, data={"formtoken": token, "kind": "nee", "text": "Toch niet."}, allow_redirects=False
    )
    assert again.status == 303 and again.headers["Location"].endswith("?al_beantwoord=1")
    _, html = await world.page(again.headers["Location"])
    assert world.nl(t("This question had already been answered. Your answer was not sent again.")) in html
    assert "Prima." in html and "Toch niet." not in html and 'name="formtoken"' not in html
    assert (await world.question()).answer_kind == "ja"
    assert len(await world.messages_to(world.broker.telegram_user_id)) == 1


async def test_staff_see_the_questions_and_links_and_revoke_one(world: Desk) -> None:
    web = world.web
    await answer_with_client(
        web.client, world.path, "informatie", "Hoe breed is de stoep?", name="Kees de Boer"
    )
    web.clock.advance(timedelta(days=1))
    # The department contact's browser is not the broker's: a fresh cookie jar.
    web.logout_cookies()
    await web.login(world.broker)
    case_path = f"/dashboard/cases/{world.reference}"
    html = await (await web.client.get(case_path)).text()
    assert QUESTION in html and "Hoe breed is de stoep?" in html and "Kees de Boer" in html
    assert VERKEER.email in html and "/links/" in html
    link_id = int(world.path.rsplit("/", 1)[1].split("-")[0])
    revoke = f"{case_path}/links/{link_id}/revoke"
    response = await web.client.post(revoke, data={"csrf": await web.csrf(case_path)}, allow_redirects=False)
    assert response.status == 303 and "done=link_revoked" in response.headers["Location"]
    html = await (await web.client.get(case_path)).text()
    assert "Bram Bakker" in html and f"/links/{link_id}/revoke" not in html
    async with web.runtime.sessions() as session:
        link = await store.link(session, link_id)
    assert link is not None and link.revoked_reason == "staff" and link.revoked_by_staff_id == world.broker.id
    web.logout_cookies()
    status, _ = await world.page()
    assert status == 410
    # Without the session's CSRF token nobody revokes anything.
    await web.login(world.broker)
    response = await web.client.post(revoke, data={}, allow_redirects=False)
    assert response.status == 403


async def test_another_broker_may_not_revoke(world: Desk) -> None:
    web = world.web
    other = await web.add_staff("Olga Overbeek", role="broker")
    await web.login(other)
    link_id = int(world.path.rsplit("/", 1)[1].split("-")[0])
    response = await web.client.post(
        f"/dashboard/cases/{world.reference}/links/{link_id}/revoke",
        data={"csrf": await web.csrf()},
        allow_redirects=False,
    )
    assert response.status == 404  # she does not see the case at all
    async with web.runtime.sessions() as session:
        link = await store.link(session, link_id)
    assert link is not None and link.revoked_at is None


async def test_the_desk_answer_is_what_the_page_records(world: Desk) -> None:
    """The page is a thin skin on the desk: the row it writes is the desk's, with the contact's name."""
    await answer_with_client(world.web.client, world.path, "ja", "", name="Kees de Boer")
    rows = await world.rows(select(department_questions.c.state, department_questions.c.answer_kind))
    assert rows == [("answered", "ja")]
    async with world.web.runtime.sessions() as session:
        question = await world.question()
        thread = (await store.messages_of(session, [question.id]))[question.id]
    assert [(m.author, m.author_name, m.kind) for m in thread] == [("department", "Kees de Boer", "ja")]
