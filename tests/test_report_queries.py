"""The overview's sums in SQL, on SQLite and PostgreSQL: status spells and first contact written with each
change, working days through the calendar table, scope and filter, and migration 0011 both ways."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time
from typing import Any

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from flows import reports
from flows.municipality import Department, Municipality, Theme
from flows.stalls import AMSTERDAM, Level
from storage import initiatives as initiatives_store
from storage import reports as reports_store
from storage.db import session_factory
from storage.migrate import upgrade
from storage.reports import CaseFilter, Scope
from storage.tables import initiatives, status_spells
from tests.factories import new_initiative
from tests.test_storage_staff import downgrade

# The day after Ascension (Friday 15 May 2026) the town hall is closed.
TOWN = Municipality(
    code="GM0301",
    name="Testdorp",
    wijken=(),
    themes=(Theme("groen", "Groen", "Greenery"),),
    departments=(Department("verkeer", "Verkeer"),),
    closing_days=(date(2026, 5, 15),),
)
NOW = datetime.combine(date(2026, 6, 2), time(12), tzinfo=AMSTERDAM)  # Tuesday 2 June 2026


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime.combine(date(2026, month, day), time(hour), tzinfo=AMSTERDAM)


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


async def _create(session: AsyncSession, when: datetime, wijk: str, title: str) -> int:
    new = dataclasses.replace(new_initiative(title=title), wijk_code=wijk)
    return (await initiatives_store.create_initiative(session, new, when)).id


async def _status(
    session: AsyncSession, id: int, status: str, when: datetime, department: str | None = None
) -> None:
    await initiatives_store.change_status(
        session,
        id,
        status=status,
        now=when,
        actor_role="broker",
        actor_user_id=None,
        staff_id=None,
        note=None,
        department=department,
    )


async def seed(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Three cases in two wijken, with every step at a known moment."""
    async with sessions() as session, session.begin():
        one = await _create(session, at(4, 20), "WK01", "Bankjes")  # Monday 20 April
        await _status(session, one, "toegewezen", at(4, 21))
        # Wednesday 29 April: 21-24 April and 28-29 April, King's Day between: 6 working days.
        await _status(session, one, "in_gesprek", at(4, 29))
        await _status(session, one, "bij_gemeente", at(5, 4), "verkeer")
        # Monday 4 May -> Monday 18 May: 5-8 and 11-13 May, Ascension, the closing day, 18 May: 8.
        await _status(session, one, "plan_in_uitwerking", at(5, 18))

        two = await _create(session, at(4, 20, 23), "WK02", "Moestuin")  # 23:00 Amsterdam, 21:00 UTC
        await _status(session, two, "toegewezen", at(4, 21))
        await initiatives_store.add_event(
            session,
            two,
            kind="message_to_resident",
            now=at(4, 22),
            actor_role="broker",
            note="Hoi!",
            touch_broker_action=True,
        )
        # A later conversation does not move the first contact.
        await _status(session, two, "in_gesprek", at(5, 6))

        three = await _create(session, at(5, 1), "WK01", "Speeltuin")
        await _status(session, three, "toegewezen", at(5, 1, 11))
        await _status(session, three, "in_gesprek", at(5, 4))
        await _status(session, three, "goedgekeurd", at(5, 6))
        await _status(session, three, "in_uitvoering", at(5, 7))
        await _status(session, three, "gerealiseerd", at(6, 1))
    async with sessions() as session, session.begin():
        await reports_store.refresh_calendar(session, TOWN, date(2026, 1, 1), date(2026, 12, 31))
    return {"one": one, "two": two, "three": three}


async def test_status_changes_write_finished_spells_and_the_first_contact(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ids = await seed(sessions)
    async with sessions() as session:
        spells = (
            await session.execute(
                select(
                    status_spells.c.status,
                    status_spells.c.department,
                    status_spells.c.started_on,
                    status_spells.c.ended_on,
                )
                .where(status_spells.c.initiative_id == ids["one"])
                .order_by(status_spells.c.started_at)
            )
        ).all()
        row = (
            await session.execute(
                select(
                    initiatives.c.submitted_on,
                    initiatives.c.status_on,
                    initiatives.c.first_contact_at,
                    initiatives.c.first_contact_on,
                ).where(initiatives.c.id == ids["two"])
            )
        ).one()
    assert [tuple(s) for s in spells] == [
        ("ingediend", None, date(2026, 4, 20), date(2026, 4, 21)),
        ("toegewezen", None, date(2026, 4, 21), date(2026, 4, 29)),
        ("in_gesprek", None, date(2026, 4, 29), date(2026, 5, 4)),
        ("bij_gemeente", "verkeer", date(2026, 5, 4), date(2026, 5, 18)),
    ]  # plan_in_uitwerking is running: it is on the initiative's row
    # Submitted at 23:00 on 20 April in Amsterdam (21:00 UTC): an Amsterdam date.
    assert tuple(row) == (date(2026, 4, 20), date(2026, 5, 6), at(4, 22), date(2026, 4, 22))


async def test_first_contact_in_working_days_per_scope(sessions: async_sessionmaker[AsyncSession]) -> None:
    await seed(sessions)
    async with sessions() as session:
        everything = await reports_store.first_contact_histogram(session, Scope(), CaseFilter(), TOWN)
        wijk = await reports_store.first_contact_histogram(
            session, Scope(wijken=frozenset({"WK02"})), CaseFilter(), TOWN
        )
    # One: 6 working days; two: 2 (21 and 22 April); three: 1 May (Friday) -> 4 May (Monday): 1.
    assert everything == ({6: 1, 2: 1, 1: 1}, 0)
    assert wijk == ({2: 1}, 0)


async def test_waiting_time_per_status_and_department_finished_and_running(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with sessions() as session:
        totals = await reports_store.spell_totals(session, Scope(), CaseFilter(wijk="WK01"), TOWN, NOW.date())
    found = {(t.status, t.department, t.running): (t.spells, t.days) for t in totals}
    assert found[("bij_gemeente", "verkeer", 0)] == (1, 8)
    # Running since Monday 18 May up to Tuesday 2 June: 19-22 May, (Whit Monday) 26-29 May, 1-2 June.
    assert found[("plan_in_uitwerking", None, 1)] == (1, 10)
    # Three's in_uitvoering: Thursday 7 May -> Monday 1 June: 8, 11-13, 18-22, 26-29 May, 1 June = 14.
    assert found[("in_uitvoering", None, 0)] == (1, 14)
    assert ("gerealiseerd", None, 0) not in found and ("gerealiseerd", None, 1) not in found
    by_party = {w.waiter: w.days for w in reports.waits(totals)}
    assert by_party[reports.Waiter(reports.Party.DEPARTMENT, "verkeer")] == 8


async def test_a_period_sums_the_same_spells_with_and_without_a_scope(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    period = CaseFilter(since=date(2026, 4, 21), until=date(2026, 6, 2))  # one and two were on the 20th
    both = Scope(wijken=frozenset({"WK01", "WK02"}))
    async with sessions() as session:
        everyone = await reports_store.spell_totals(session, Scope(), period, TOWN, NOW.date())
        scoped = await reports_store.spell_totals(session, both, period, TOWN, NOW.date())
    assert sorted(everyone, key=repr) == sorted(scoped, key=repr)
    assert {t.status for t in everyone} >= {"in_uitvoering", "in_gesprek"}  # three's, not one's
    assert all(t.department is None for t in everyone)  # one's bij_gemeente is outside the period


async def test_counts_per_status_day_and_realisation(sessions: async_sessionmaker[AsyncSession]) -> None:
    await seed(sessions)
    async with sessions() as session:
        open_counts = await reports_store.open_counts(session, Scope(), CaseFilter())
        per_day = await reports_store.submitted_per_day(session, Scope(), CaseFilter(since=date(2026, 4, 21)))
        realised = await reports_store.realised_per_day(
            session, Scope(), CaseFilter(since=date(2026, 5, 2)), date(2026, 6, 1), date(2026, 6, 30)
        )
        broker_only = await reports_store.open_counts(session, Scope(broker_id=99), CaseFilter())
    assert open_counts == {"plan_in_uitwerking": 1, "in_gesprek": 1}
    assert per_day == [(date(2026, 5, 1), 1)]
    # Realised counts by the day it was realised, whatever the period of submission.
    assert realised == [(date(2026, 6, 1), 1)]
    assert broker_only == {}


async def test_stall_candidates_include_every_stalled_case(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed(sessions)
    async with sessions() as session:
        candidates = await reports_store.stall_candidates(session, Scope(), CaseFilter(), TOWN, NOW)
    found = reports.stalled(candidates, TOWN, NOW)
    # Two has been in_gesprek (norm 10) since 6 May: 7-8, 11-13, 18-22, 26-29 May, 1-2 June = 16 days.
    assert [(c.reference.endswith("0002"), c.level, c.days) for c in found] == [(True, Level.ESCALATION, 16)]


async def test_0011_fills_the_dates_and_spells_from_the_timeline_and_goes_down_again(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await seed(sessions)

    async def snapshot() -> tuple[list[Any], list[Any]]:
        async with sessions() as session:
            spells = (
                await session.execute(
                    select(
                        status_spells.c.initiative_id,
                        status_spells.c.status,
                        status_spells.c.department,
                        status_spells.c.started_at,
                        status_spells.c.ended_at,
                        status_spells.c.started_on,
                        status_spells.c.ended_on,
                        status_spells.c.submitted_on,
                    ).order_by(status_spells.c.initiative_id, status_spells.c.started_at)
                )
            ).all()
            dates = (
                await session.execute(
                    select(
                        initiatives.c.id,
                        initiatives.c.submitted_on,
                        initiatives.c.status_on,
                        initiatives.c.first_contact_at,
                        initiatives.c.first_contact_on,
                    ).order_by(initiatives.c.id)
                )
            ).all()
        return [tuple(s) for s in spells], [tuple(d) for d in dates]

    written = await snapshot()
    await downgrade(engine, "0010")
    async with engine.connect() as conn:
        columns = await conn.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("initiatives")}
        )
    assert "status_on" not in columns and "first_contact_on" not in columns

    await upgrade(engine)

    assert await snapshot() == written
