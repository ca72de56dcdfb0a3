"""Demo data for trying the staff web (``initiatiefbot web --demo``) and for its browser tests: staff,
and two years of made-up initiatives with their histories, written through the same storage functions
the bot uses (so every derived table is as the bot would leave it). Fixed seed: the same data each time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.department import AnswerKind, BlockedBy, QuestionState, department_norm
from flows.lifecycle import Status
from flows.municipality import Municipality
from flows.stalls import AMSTERDAM, working_days_between
from storage import blockers as blockers_store
from storage import departments as departments_store
from storage import initiatives as initiatives_store
from storage import people as people_store
from storage import staff as staff_store
from storage.initiatives import NewInitiative
from storage.tables import initiatives, status_spells

# Who logs in to try it: `initiatiefbot web --login-link --telegram-id 43`.
DEMO_COORDINATOR_ID = 43


@dataclass(frozen=True)
class _Idea:
    title: str
    description: str
    theme: str
    department: str


IDEAS = (
    _Idea(
        "Moestuin bij de school",
        "Een moestuin waar kinderen en ouderen samen groenten kweken.",
        "groen",
        "groen",
    ),
    _Idea(
        "Bankjes in het park",
        "Drie bankjes bij de speeltuin, zodat ouderen en ouders kunnen zitten.",
        "ontmoeten",
        "groen",
    ),
    _Idea(
        "Skatebaan voor de jeugd",
        "Een kleine skatebaan op het veldje achter de sporthal.",
        "spelen_sport",
        "vergunningen",
    ),
    _Idea(
        "Bloembakken in de straat",
        "Bloembakken langs de stoep, onderhouden door de buren.",
        "groen",
        "verkeer",
    ),
    _Idea(
        "Buurtfeest in juni",
        "Een straatfeest met muziek en eten uit alle landen van de buurt.",
        "ontmoeten",
        "vergunningen",
    ),
    _Idea("Jeu-de-boulesbaan", "Een baan bij het buurthuis, voor jong en oud.", "spelen_sport", "groen"),
    _Idea(
        "Repair Café",
        "Een maandelijkse middag waarop vrijwilligers spullen repareren.",
        "duurzaamheid",
        "subsidies",
    ),
    _Idea(
        "Kunst op de stroomkast",
        "Jongeren beschilderen de grijze stroomkasten in de wijk.",
        "kunst_cultuur",
        "vergunningen",
    ),
    _Idea(
        "Drempel bij de school",
        "Een verkeersdrempel, want auto's rijden te hard bij het schoolplein.",
        "verkeer_veiligheid",
        "verkeer",
    ),
    _Idea(
        "Buurtbieb in een kast",
        "Een boekenkast bij de bushalte waar iedereen boeken ruilt.",
        "ontmoeten",
        "wijkbudget",
    ),
    _Idea(
        "Zwerfafval opruimen",
        "Elke maand ruimen we met de buurt zwerfafval op.",
        "duurzaamheid",
        "wijkbudget",
    ),
    _Idea(
        "Koffieochtend voor ouderen", "Elke week koffie en een praatje in het buurthuis.", "zorg", "subsidies"
    ),
    _Idea("Geveltuinen", "Tegels eruit, planten erin: geveltuinen langs de huizen.", "groen", "groen"),
    _Idea(
        "Speeltuin opknappen", "Nieuwe toestellen en een hek om de speeltuin.", "spelen_sport", "subsidies"
    ),
)
NAMES = (
    "Fatima el Amrani", "Jan de Boer", "Sanne Visser", "Mehmet Yilmaz", "Anouk Jansen", "Piotr Nowak",
    "Ingrid Bakker", "Kees Smit", "Olena Kovalenko", "Youssef Haddou", "Lotte Mulder", "Henk Dijkstra",
)  # fmt: skip
BROKERS = ((44, "Bram Hendriks"), (45, "Esra Demir"), (46, "Marieke Kok"))


async def has_initiatives(session: AsyncSession) -> bool:
    conn = await session.connection()
    return bool((await conn.execute(select(func.count()).select_from(initiatives))).scalar_one())


def _working_hours(moment: datetime) -> datetime:
    """The same day at a plausible office hour, Amsterdam time."""
    local = moment.astimezone(AMSTERDAM)
    return datetime.combine(local.date(), time(9 + local.hour % 8, local.minute), tzinfo=AMSTERDAM)


async def seed(session: AsyncSession, m: Municipality, now: datetime, *, count: int = 240) -> int:
    """Fill an empty database with staff and ``count`` initiatives over the two years before ``now``."""
    rng = random.Random(2026)
    start = now - timedelta(days=730)
    await _person(session, DEMO_COORDINATOR_ID, "Anna", start)
    coordinator = await staff_store.add_staff(
        session,
        telegram_user_id=DEMO_COORDINATOR_ID,
        name="Anna de Vries",
        role="coordinator",
        wijken=[],
        themes=[],
        now=start,
    )
    wijken = [w.code for w in m.wijken]
    brokers = []
    for index, (user_id, name) in enumerate(BROKERS):
        await _person(session, user_id, name.split()[0], start)
        own = wijken[index :: len(BROKERS)]
        brokers.append(
            await staff_store.add_staff(
                session, telegram_user_id=user_id, name=name, role="broker", wijken=own, themes=[], now=start
            )
        )
    themes = {th.code for th in m.themes}
    departments = {d.code for d in m.departments}
    moments = sorted(start + timedelta(minutes=rng.randrange(730 * 24 * 60)) for _ in range(count))
    for number, created_at in enumerate(moments):
        idea = IDEAS[rng.randrange(len(IDEAS))]
        wijk = rng.choice(wijken)
        broker = next(b for b in brokers if wijk in b.wijken)
        resident = 10_000 + number
        created_at = _working_hours(created_at)
        await _person(session, resident, NAMES[number % len(NAMES)].split()[0], created_at)
        row = await initiatives_store.create_initiative(
            session,
            NewInitiative(
                municipality_code=m.code,
                prefix=m.reference_prefix,
                resident_user_id=resident,
                resident_chat_id=resident,
                title=idea.title,
                description=idea.description,
                theme_code=idea.theme if idea.theme in themes else m.themes[0].code,
                wijk_code=wijk,
                own_contribution="We doen het onderhoud met de buren.",
                needs=("geld", "vergunning") if rng.random() < 0.4 else ("materiaal",),
                amount_cents=rng.randrange(2, 40) * 5_000,
                neighbours=rng.randrange(3, 40),
                photo_file_id=None,
                contact_name=NAMES[number % len(NAMES)],
                contact_phone=f"06-{rng.randrange(10_000_000, 99_999_999)}",
                contact_email=None,
                consent_at=created_at,
                language="nl" if rng.random() < 0.85 else "en",
                publish_consent=rng.random() < 0.7,
            ),
            created_at,
        )
        department = idea.department if idea.department in departments else None
        await _history(session, row.id, broker, created_at, now, department, rng)
    # The departments' answers on their own generator, so the cases stay as they were before them.
    await _department_answers(session, m, coordinator.id, now, random.Random(12))
    return count


async def _person(session: AsyncSession, user_id: int, first_name: str, at: datetime) -> None:
    await people_store.upsert_person(
        session, user_id=user_id, chat_id=user_id, first_name=first_name, telegram_language="nl", now=at
    )


async def _history(
    session: AsyncSession,
    initiative_id: int,
    broker: staff_store.StaffRow,
    at: datetime,
    now: datetime,
    department: str | None,
    rng: random.Random,
) -> None:
    """Walk the case along a plausible path; it stops where the next step would be after ``now``."""
    path = [Status.TOEGEWEZEN, Status.IN_GESPREK, Status.PLAN_IN_UITWERKING]
    ending = rng.random()
    if ending < 0.1:
        path.append(Status.GESTOPT)
    else:
        path.append(Status.BIJ_GEMEENTE)
        if ending < 0.22:
            path.append(Status.AFGEWEZEN)
        else:
            path += [Status.GOEDGEKEURD, Status.IN_UITVOERING, Status.GEREALISEERD]
    # Typical days per step; a few cases take much longer (the stalls the dashboard is for).
    typical = {
        Status.TOEGEWEZEN: 0.2,
        Status.IN_GESPREK: 4,
        Status.PLAN_IN_UITWERKING: 10,
        Status.BIJ_GEMEENTE: 18,
        Status.GOEDGEKEURD: 25,
        Status.AFGEWEZEN: 25,
        Status.GESTOPT: 30,
        Status.IN_UITVOERING: 10,
        Status.GEREALISEERD: 45,
    }
    for status in path:
        days = rng.expovariate(1 / typical[status]) * (3 if rng.random() < 0.08 else 1)
        # An office hour after the step before; a step on the same day comes later that day.
        at = max(
            _working_hours(at + timedelta(days=days, hours=rng.randrange(1, 6))), at + timedelta(minutes=20)
        )
        if at >= now:
            return
        if status is Status.TOEGEWEZEN:
            await initiatives_store.assign(
                session, initiative_id, broker_id=broker.id, by_staff_id=None, note=None, now=at
            )
            role, actor, staff_id = "system", None, None
        else:
            role, actor, staff_id = "broker", broker.telegram_user_id, broker.id
        if status is Status.IN_GESPREK:
            await initiatives_store.add_event(
                session,
                initiative_id,
                kind="message_to_resident",
                now=at,
                actor_role="broker",
                actor_user_id=broker.telegram_user_id,
                staff_id=broker.id,
                note="Leuk idee! Zullen we volgende week even bellen?",
                touch_broker_action=True,
            )
        await initiatives_store.change_status(
            session,
            initiative_id,
            status=status.value,
            now=at,
            actor_role=role,
            actor_user_id=actor,
            staff_id=staff_id,
            note=_note(status),
            department=department if status is Status.BIJ_GEMEENTE else None,
        )


def _note(status: Status) -> str | None:
    if status is Status.AFGEWEZEN:
        return "Past niet in het bestemmingsplan."
    if status is Status.GESTOPT:
        return "De bewoners hebben er geen tijd meer voor."
    return None


QUESTION = "Kan dit op deze plek, en wat is daarvoor nodig? De bewoners willen graag deze maand beginnen."
ANSWERS = {
    AnswerKind.YES: "Ja, dat kan. Wij zetten het in onze planning.",
    AnswerKind.CONDITIONS: "Ja, als de bewoners het onderhoud doen en de stoep 1,5 meter vrij blijft.",
    AnswerKind.NO: "Nee, hier ligt een kabel in de grond. Een andere plek kan wel.",
}
BLOCKED = {
    BlockedBy.RULE: "Nee. De APV staat dit niet toe op de stoep, hoe goed het idee ook is.",
    BlockedBy.MANDATE: "Nee. Daar gaan wij niet over: daar beslist de wethouder.",
}
ESCALATED_TO = ("wethouder Jansen", "de directie", "het afdelingshoofd")


async def _department_answers(
    session: AsyncSession, m: Municipality, coordinator_id: int, now: datetime, rng: random.Random
) -> None:
    """A question to the department for every stay in bij_gemeente; it is answered when the case left
    (a "nee" when it was turned down, a few blocked by a rule or a mandate, some of them acted on)."""
    conn = await session.connection()
    stays = await conn.execute(
        select(
            status_spells.c.initiative_id,
            status_spells.c.department,
            status_spells.c.started_at,
            status_spells.c.ended_at,
        )
        .where(status_spells.c.status == Status.BIJ_GEMEENTE.value, status_spells.c.department.is_not(None))
        .order_by(status_spells.c.id)
    )
    current = await conn.execute(
        select(initiatives.c.id, initiatives.c.department, initiatives.c.status_changed_at).where(
            initiatives.c.status == Status.BIJ_GEMEENTE.value, initiatives.c.department.is_not(None)
        )
    )
    for initiative_id, department, asked_at in current:
        await departments_store.ask(
            session,
            initiative_id=initiative_id,
            department=department,
            question=QUESTION,
            staff_id=None,
            now=asked_at,
        )
    for initiative_id, department, asked_at, left_at in list(stays):
        row = await departments_store.ask(
            session,
            initiative_id=initiative_id,
            department=department,
            question=QUESTION,
            staff_id=None,
            now=asked_at,
        )
        case = await initiatives_store.load_case_by_id(session, initiative_id)
        refused = case is not None and case.status == Status.AFGEWEZEN.value
        kind = AnswerKind.NO if refused else rng.choice((AnswerKind.YES, AnswerKind.CONDITIONS))
        blocked = rng.choice(tuple(BlockedBy)) if refused and rng.random() < 0.3 else None
        text = BLOCKED[blocked] if blocked else ANSWERS[kind]
        answered_at = left_at - timedelta(hours=1)
        days = working_days_between(asked_at, answered_at, m.closing_days)
        await departments_store.update_question(
            session,
            row.id,
            state=QuestionState.ANSWERED.value,
            answer_kind=kind.value,
            answer_text=text,
            blocked_by=blocked.value if blocked else None,
            answered_at=answered_at,
            answer_working_days=days,
            answered_within_norm=days <= department_norm(m, department),
            closed_at=answered_at,
            next_alert_at=None,
        )
        dept = m.department(department)
        await departments_store.add_message(
            session,
            row.id,
            author="department",
            author_name=f"Team {dept.name}" if dept else department,
            kind=kind.value,
            text=text,
            now=answered_at,
            blocked_by=blocked.value if blocked else None,
        )
        if blocked is None or rng.random() < 0.4:
            continue
        acted_at = answered_at + timedelta(days=rng.randrange(2, 10))
        settled = acted_at + timedelta(days=rng.randrange(10, 40))
        if acted_at < now:
            await blockers_store.add_blocker_action(
                session,
                row.id,
                staff_id=coordinator_id,
                escalated_to=rng.choice(ESCALATED_TO),
                outcome="Voorgelegd; het antwoord volgt.",
                resolved=False,
                now=acted_at,
            )
        if acted_at < now and settled < now and rng.random() < 0.5:
            await blockers_store.add_blocker_action(
                session,
                row.id,
                staff_id=coordinator_id,
                escalated_to=None,
                outcome="Besproken. De bewoners kiezen met de makelaar een andere plek.",
                resolved=True,
                now=settled,
            )
