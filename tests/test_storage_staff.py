"""Staff, invites, assignment and the case timeline in storage, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Collection
from datetime import UTC, date, datetime, timedelta

import pytest
import pytest_asyncio
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import alerts as alerts_store
from storage import initiatives as initiatives_store
from storage import people as people_store
from storage import staff as staff_store
from storage import tables
from storage.db import create_engine, session_factory
from storage.migrate import alembic_config, current_revision, upgrade
from tests.factories import new_initiative

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
OPEN = frozenset({"ingediend", "toegewezen", "in_gesprek", "plan_in_uitwerking", "bij_gemeente"})


def only_on(backend: str) -> pytest.MarkDecorator:
    """Run a test on one database backend only (narrows the ``database_url`` parametrisation)."""
    return pytest.mark.parametrize("database_url", [backend], indirect=True, ids=[backend])


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


async def add_broker(
    session: AsyncSession,
    user_id: int,
    name: str,
    *,
    wijken: Collection[str] = ("WK036301",),
    themes: Collection[str] = (),
) -> staff_store.StaffRow:
    return await staff_store.add_staff(
        session, telegram_user_id=user_id, name=name, role="broker", wijken=wijken, themes=themes, now=NOW
    )


async def add_coordinator(
    session: AsyncSession, user_id: int, name: str, wijken: list[str]
) -> staff_store.StaffRow:
    return await staff_store.add_staff(
        session, telegram_user_id=user_id, name=name, role="coordinator", wijken=wijken, themes=[], now=NOW
    )


# --- invites -----------------------------------------------------------------------------------


async def test_an_invite_makes_its_holder_staff_exactly_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        invite = await staff_store.create_invite(
            session, role="broker", name="Sem de Vries", wijken=["WK036301"], themes=["groen"], now=NOW
        )
    # A Telegram deep-link payload: 1 to 64 characters from A-Z a-z 0-9 _ -; long enough not to guess.
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,64}", invite.code)
    assert invite.expires_at == NOW + timedelta(days=7)
    assert (invite.used_at, invite.used_by_user_id) == (None, None)

    later = NOW + timedelta(hours=2)
    async with sessions() as session, session.begin():
        member = await staff_store.redeem_invite(session, invite.code, telegram_user_id=555, now=later)
    assert member is not None
    assert (member.telegram_user_id, member.name, member.role) == (555, "Sem de Vries", "broker")
    assert (member.wijken, member.themes, member.created_at, member.active) == (
        ("WK036301",),
        ("groen",),
        later,
        True,
    )

    async with sessions() as session, session.begin():
        assert await staff_store.redeem_invite(session, invite.code, telegram_user_id=666, now=later) is None
        assert await staff_store.redeem_invite(session, invite.code, telegram_user_id=555, now=later) is None
        used = await staff_store.load_invite(session, invite.code)
        assert used is not None
        assert (used.used_at, used.used_by_user_id) == (later, 555)
        assert await staff_store.load_staff(session, 666) is None
        assert await staff_store.list_staff(session) == [member]


async def test_an_expired_or_unknown_invite_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        short = await staff_store.create_invite(
            session, role="coordinator", name="Iris", wijken=[], themes=[], now=NOW, valid=timedelta(hours=1)
        )
        assert short.expires_at == NOW + timedelta(hours=1)
        assert (
            await staff_store.redeem_invite(session, short.code, telegram_user_id=1, now=short.expires_at)
            is None
        )
        assert await staff_store.redeem_invite(session, "no-such-code", telegram_user_id=1, now=NOW) is None
        assert await staff_store.load_invite(session, "no-such-code") is None
        last_moment = short.expires_at - timedelta(seconds=1)
        member = await staff_store.redeem_invite(session, short.code, telegram_user_id=1, now=last_moment)
    assert member is not None and member.role == "coordinator"


async def test_invites_get_distinct_codes_and_refuse_nonsense(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        codes = {
            (
                await staff_store.create_invite(
                    session, role="broker", name="X", wijken=[], themes=[], now=NOW
                )
            ).code
            for _ in range(20)
        }
        assert len(codes) == 20
        with pytest.raises(ValueError):
            await staff_store.create_invite(session, role="admin", name="X", wijken=[], themes=[], now=NOW)
        with pytest.raises(ValueError):
            await staff_store.create_invite(
                session, role="broker", name="X", wijken=[], themes=[], now=NOW, valid=timedelta(0)
            )


async def test_ten_people_redeeming_one_invite_at_once_make_one_staff_member(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        invite = await staff_store.create_invite(
            session, role="broker", name="Noor", wijken=[], themes=[], now=NOW
        )
    start = asyncio.Barrier(10)

    async def redeem(user_id: int) -> staff_store.StaffRow | None:
        async with sessions() as session:
            await start.wait()
            async with session.begin():
                return await staff_store.redeem_invite(
                    session, invite.code, telegram_user_id=user_id, now=NOW
                )

    results = await asyncio.gather(*(redeem(user_id) for user_id in range(100, 110)))

    winners = [member for member in results if member is not None]
    assert len(winners) == 1
    async with sessions() as session:
        assert await staff_store.list_staff(session) == winners
        used = await staff_store.load_invite(session, invite.code)
    assert used is not None and used.used_by_user_id == winners[0].telegram_user_id


# SQLite has no row locks; BEGIN IMMEDIATE serialises whole transactions there.
@only_on("postgresql")
async def test_a_second_redeem_waits_for_the_first_and_then_finds_the_invite_used(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        invite = await staff_store.create_invite(
            session, role="broker", name="Noor", wijken=[], themes=[], now=NOW
        )

    async with sessions() as first, sessions() as second:
        async with first.begin():
            assert (
                await staff_store.redeem_invite(first, invite.code, telegram_user_id=1, now=NOW) is not None
            )
            async with second.begin():
                await second.execute(text("SET LOCAL lock_timeout = '50ms'"))
                with pytest.raises(DBAPIError, match="lock timeout"):
                    await staff_store.redeem_invite(second, invite.code, telegram_user_id=2, now=NOW)
        async with second.begin():
            assert await staff_store.redeem_invite(second, invite.code, telegram_user_id=2, now=NOW) is None


# --- staff -------------------------------------------------------------------------------------


async def test_removed_staff_keep_their_row_and_come_back_on_the_same_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        sem = await add_broker(session, 10, "Sem", themes=["groen", "groen", "verkeer"])
        assert sem.themes == ("groen", "verkeer")
        await staff_store.set_absent(session, sem.id, date(2026, 3, 13))
        assert await staff_store.load_staff(session, 10) == staff_store.StaffRow(
            sem.id, 10, "Sem", "broker", ("WK036301",), ("groen", "verkeer"), date(2026, 3, 13), NOW, None
        )
        # Adding an active person again updates their details and keeps the planned absence.
        again = await add_broker(session, 10, "Sem de Vries")
        assert (again.id, again.name, again.themes, again.absent_until) == (
            sem.id,
            "Sem de Vries",
            (),
            date(2026, 3, 13),
        )

    removed_at = NOW + timedelta(days=1)
    async with sessions() as session, session.begin():
        assert await staff_store.remove_staff(session, staff_id=sem.id, now=removed_at) is True
        assert await staff_store.remove_staff(session, telegram_user_id=10, now=removed_at) is False
        assert await staff_store.load_staff(session, 10) is None
        assert await staff_store.list_staff(session) == []
        kept = await staff_store.staff_by_id(session, sem.id)
        assert kept is not None
        assert (kept.name, kept.removed_at, kept.active) == ("Sem de Vries", removed_at, False)

    back_at = NOW + timedelta(days=30)
    async with sessions() as session, session.begin():
        back = await staff_store.add_staff(
            session,
            telegram_user_id=10,
            name="Sem",
            role="coordinator",
            wijken=[],
            themes=[],
            now=back_at,
        )
        assert (back.id, back.role, back.created_at, back.removed_at, back.absent_until) == (
            sem.id,
            "coordinator",
            NOW,
            None,
            None,
        )
        assert await staff_store.load_staff(session, 10) == back
        assert await staff_store.remove_staff(session, telegram_user_id=10, now=back_at) is True
        assert await staff_store.staff_by_id(session, 999) is None


async def test_staff_are_listed_by_role_and_name(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        zoe = await add_coordinator(session, 1, "Zoë", [])
        bram = await add_broker(session, 2, "Bram")
        anna = await add_coordinator(session, 3, "Anna", ["WK036301"])
        kees = await add_broker(session, 4, "Kees")
        await staff_store.remove_staff(session, staff_id=kees.id, now=NOW)

        assert await staff_store.list_staff(session) == [bram, anna, zoe]
        assert await staff_store.list_staff(session, role="broker") == [bram]
        assert await staff_store.all_coordinators(session) == [anna, zoe]


async def test_staff_need_a_known_role_and_one_key_to_be_removed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        with pytest.raises(ValueError):
            await staff_store.add_staff(
                session, telegram_user_id=1, name="X", role="admin", wijken=[], themes=[], now=NOW
            )
        with pytest.raises(TypeError):
            await staff_store.remove_staff(session, now=NOW)
        with pytest.raises(TypeError):
            await staff_store.remove_staff(session, staff_id=1, telegram_user_id=1, now=NOW)
        with pytest.raises(TypeError):
            await add_broker(session, 1, "X", wijken="WK036301")

    async with sessions() as session:
        with pytest.raises(IntegrityError):
            async with session.begin():
                await session.execute(
                    tables.staff.insert().values(
                        telegram_user_id=1, name="X", role="admin", wijken=[], themes=[], created_at=NOW
                    )
                )


# --- routing data ------------------------------------------------------------------------------


async def test_broker_loads_count_open_cases_and_know_the_last_assignment(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        anna = await add_broker(session, 1, "Anna", wijken=["WK036301", "WK036302"], themes=["groen"])
        bram = await add_broker(session, 2, "Bram")
        gone = await add_broker(session, 3, "Carla")
        await add_coordinator(session, 4, "Dirk", [])
        await staff_store.set_absent(session, bram.id, date(2026, 3, 6))
        # Anna opened the bot; Bram never did.
        await people_store.upsert_person(
            session, user_id=1, chat_id=1, first_name="Anna", telegram_language=None, now=NOW
        )

        cases = [
            await initiatives_store.create_initiative(session, new_initiative(title=f"Idee {n}"), NOW)
            for n in range(5)
        ]
        for n, case in enumerate(cases[:3]):
            await initiatives_store.assign(
                session, case.id, broker_id=anna.id, by_staff_id=None, note=None, now=NOW + timedelta(hours=n)
            )
        # Anna's most recent case is done: it no longer counts, but it was her last assignment.
        await initiatives_store.change_status(
            session,
            cases[2].id,
            status="gerealiseerd",
            now=NOW + timedelta(days=3),
            actor_role="broker",
            actor_user_id=1,
            staff_id=anna.id,
            note=None,
            department=None,
        )
        await initiatives_store.assign(
            session, cases[3].id, broker_id=gone.id, by_staff_id=None, note=None, now=NOW
        )
        await staff_store.remove_staff(session, staff_id=gone.id, now=NOW)

        loads = await staff_store.broker_loads(session, open_statuses=OPEN)
        assert await staff_store.broker_loads(session, open_statuses=[]) == [
            staff_store.BrokerLoadRow(
                anna.id, "Anna", ("WK036301", "WK036302"), ("groen",), 0, NOW + timedelta(hours=2), None, True
            ),
            staff_store.BrokerLoadRow(bram.id, "Bram", ("WK036301",), (), 0, None, date(2026, 3, 6), False),
        ]

    assert loads == [
        staff_store.BrokerLoadRow(
            anna.id, "Anna", ("WK036301", "WK036302"), ("groen",), 2, NOW + timedelta(hours=2), None, True
        ),
        staff_store.BrokerLoadRow(bram.id, "Bram", ("WK036301",), (), 0, None, date(2026, 3, 6), False),
    ]
    assert loads[0].last_assigned_at is not None and loads[0].last_assigned_at.tzinfo is UTC


async def test_a_broker_is_reachable_once_they_wrote_to_the_bot_until_a_send_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        anna = await add_broker(session, 1, "Anna")
        assert not await people_store.is_reachable(session, anna.telegram_user_id)  # only added
        assert [b.reachable for b in await staff_store.broker_loads(session, open_statuses=OPEN)] == [False]

        await people_store.upsert_person(
            session, user_id=1, chat_id=1, first_name="Anna", telegram_language=None, now=NOW
        )
        assert await people_store.is_reachable(session, anna.telegram_user_id)
        assert [b.reachable for b in await staff_store.broker_loads(session, open_statuses=OPEN)] == [True]

        await people_store.mark_unreachable(session, 1, NOW)  # Telegram answered 403
        assert not await people_store.is_reachable(session, anna.telegram_user_id)
        assert [b.reachable for b in await staff_store.broker_loads(session, open_statuses=OPEN)] == [False]

        await people_store.upsert_person(  # she writes again
            session,
            user_id=1,
            chat_id=1,
            first_name="Anna",
            telegram_language=None,
            now=NOW + timedelta(hours=1),
        )
        assert await people_store.is_reachable(session, anna.telegram_user_id)


async def test_handing_back_leaves_a_brokers_open_cases_unassigned_with_an_internal_note(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        anna = await add_broker(session, 1, "Anna")
        bram = await add_broker(session, 2, "Bram")
        cases = [
            await initiatives_store.create_initiative(session, new_initiative(title=f"Idee {n}"), NOW)
            for n in range(4)
        ]
        for case in cases[:3]:
            await initiatives_store.assign(
                session, case.id, broker_id=anna.id, by_staff_id=None, note=None, now=NOW
            )
        await initiatives_store.assign(
            session, cases[3].id, broker_id=bram.id, by_staff_id=None, note=None, now=NOW
        )
        await initiatives_store.change_status(  # a finished case stays hers
            session,
            cases[2].id,
            status="gestopt",
            now=NOW,
            actor_role="broker",
            actor_user_id=1,
            staff_id=anna.id,
            note="klaar",
            department=None,
        )

        later = NOW + timedelta(hours=1)
        back = await initiatives_store.hand_back_cases(
            session, anna.id, open_statuses=OPEN, reason="removed", now=later
        )
        assert [c.reference for c in back] == [cases[0].reference, cases[1].reference]
        assert all(c.broker_id == anna.id for c in back)  # as they were

        assert await initiatives_store.cases_of_broker(session, anna.id, open_statuses=OPEN) == []
        unassigned = await initiatives_store.unassigned_cases(session, open_statuses=OPEN)
        assert [c.reference for c in unassigned] == [cases[0].reference, cases[1].reference]
        # The watchdog looks at them again: their reminders now go to the coordinators.
        due = {
            c.reference: c.next_alert_at for c in await alerts_store.due_cases(session, now=later, limit=10)
        }
        assert due[cases[0].reference] == due[cases[1].reference] == later
        assert (await initiatives_store.load_case(session, cases[2].reference)).broker_id == anna.id  # type: ignore[union-attr]
        assert (await initiatives_store.load_case(session, cases[3].reference)).broker_id == bram.id  # type: ignore[union-attr]
        staff_timeline = await initiatives_store.timeline(session, cases[0].id, resident_view=False)
        last = staff_timeline[-1]
        assert (last.kind, last.staff_id, last.staff_name, last.note, last.visible_to_resident) == (
            "unassigned",
            anna.id,
            "Anna",
            "removed",
            False,
        )
        resident_timeline = await initiatives_store.timeline(session, cases[0].id, resident_view=True)
        assert "unassigned" not in [e.kind for e in resident_timeline]
        # A second time finds nothing to hand back.
        assert (
            await initiatives_store.hand_back_cases(
                session, anna.id, open_statuses=OPEN, reason="removed", now=later
            )
            == []
        )


async def test_alerts_for_a_wijk_go_to_its_coordinators_or_else_to_all(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        assert await staff_store.coordinators_for_wijk(session, "WK036301") == []
        noord = await add_coordinator(session, 1, "Anna", ["WK036301"])
        zuid = await add_coordinator(session, 2, "Bram", ["WK036302", "WK036303"])
        await add_broker(session, 3, "Carla")

        assert await staff_store.coordinators_for_wijk(session, "WK036301") == [noord]
        assert await staff_store.coordinators_for_wijk(session, "WK036303") == [zuid]
        # Nobody covers this wijk specifically, so every coordinator hears about it.
        assert await staff_store.coordinators_for_wijk(session, "WK036309") == [noord, zuid]
        assert await staff_store.coordinators_for_wijk(session, None) == [noord, zuid]

        # A coordinator without wijken covers them all.
        everywhere = await add_coordinator(session, 4, "Daan", [])
        assert await staff_store.coordinators_for_wijk(session, "WK036301") == [noord, everywhere]
        assert await staff_store.coordinators_for_wijk(session, "WK036309") == [everywhere]
        assert await staff_store.coordinators_for_wijk(session, None) == [noord, zuid, everywhere]


# --- cases -------------------------------------------------------------------------------------


async def test_assigning_and_moving_a_case_updates_it_and_writes_the_timeline(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        anna = await add_broker(session, 1, "Anna")
        bram = await add_broker(session, 2, "Bram")
        dirk = await add_coordinator(session, 4, "Dirk", [])
        created = await initiatives_store.create_initiative(session, new_initiative(), NOW)

    t1, t2, t3, t4 = (NOW + timedelta(hours=n) for n in range(1, 5))
    async with sessions() as session, session.begin():
        await initiatives_store.assign(
            session, created.id, broker_id=anna.id, by_staff_id=None, note=None, now=t1
        )
        case = await initiatives_store.load_case(session, created.reference, lock=True)
        assert case is not None
        assert (case.status, case.broker_id, case.assigned_at, case.last_broker_action_at) == (
            "ingediend",
            anna.id,
            t1,
            None,
        )
        await initiatives_store.change_status(
            session,
            created.id,
            status="toegewezen",
            now=t1,
            actor_role="system",
            actor_user_id=None,
            staff_id=None,
            note=None,
            department="Verkeer",
        )
        case = await initiatives_store.load_case_by_id(session, created.id)
        assert case is not None
        assert (case.status, case.status_changed_at, case.department, case.last_broker_action_at) == (
            "toegewezen",
            t1,
            None,
            None,
        )

    async with sessions() as session, session.begin():
        await initiatives_store.change_status(
            session,
            created.id,
            status="bij_gemeente",
            now=t2,
            actor_role="broker",
            actor_user_id=1,
            staff_id=anna.id,
            note="Mag dit op de stoep?",
            department="Vergunningen",
        )
        case = await initiatives_store.load_case(session, created.reference)
        assert case is not None
        assert (case.status, case.department, case.last_broker_action_at) == (
            "bij_gemeente",
            "Vergunningen",
            t2,
        )

        await initiatives_store.assign(
            session,
            created.id,
            broker_id=bram.id,
            by_staff_id=dirk.id,
            note="Anna is met verlof",
            kind="handover",
            now=t3,
        )
        await initiatives_store.change_status(
            session,
            created.id,
            status="goedgekeurd",
            now=t4,
            actor_role="coordinator",
            actor_user_id=4,
            staff_id=dirk.id,
            note=None,
            department="Vergunningen",
        )
        case = await initiatives_store.load_case_by_id(session, created.id, lock=True)
        assert case is not None
        # A coordinator's change is not a broker action; leaving bij_gemeente clears the department.
        assert (
            case.status,
            case.broker_id,
            case.assigned_at,
            case.department,
            case.last_broker_action_at,
        ) == (
            "goedgekeurd",
            bram.id,
            t3,
            None,
            t2,
        )
        assert isinstance(case, initiatives_store.InitiativeRow) and case.reference == created.reference
        entries = await initiatives_store.timeline(session, created.id, resident_view=False)

    assert [
        (
            e.at,
            e.kind,
            e.status,
            e.actor_role,
            e.actor_user_id,
            e.staff_name,
            e.to_staff_name,
            e.department,
            e.note,
        )
        for e in entries
    ] == [
        (NOW, "status", "ingediend", "resident", 1001, None, None, None, None),
        (t1, "assigned", None, "system", None, None, "Anna", None, None),
        (t1, "status", "toegewezen", "system", None, None, None, None, None),
        (t2, "status", "bij_gemeente", "broker", 1, "Anna", None, "Vergunningen", "Mag dit op de stoep?"),
        (t3, "handover", None, "coordinator", 4, "Dirk", "Bram", None, "Anna is met verlof"),
        (t4, "status", "goedgekeurd", "coordinator", 4, "Dirk", None, None, None),
    ]
    assert [(e.staff_id, e.to_staff_id) for e in entries[1:]] == [
        (None, anna.id),
        (None, None),
        (anna.id, None),
        (dirk.id, bram.id),
        (dirk.id, None),
    ]
    assert all(e.visible_to_resident for e in entries)


async def test_changing_an_unknown_case_is_an_error(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        anna = await add_broker(session, 1, "Anna")
        with pytest.raises(LookupError):
            await initiatives_store.assign(
                session, 404, broker_id=anna.id, by_staff_id=None, note=None, now=NOW
            )
        with pytest.raises(LookupError):
            await initiatives_store.change_status(
                session,
                404,
                status="gestopt",
                now=NOW,
                actor_role="broker",
                actor_user_id=1,
                staff_id=anna.id,
                note=None,
                department=None,
            )
        with pytest.raises(LookupError):
            await initiatives_store.add_event(
                session, 404, kind="note", now=NOW, actor_role="broker", touch_broker_action=True
            )
        assert await initiatives_store.load_case(session, "INI-2026-0404") is None
        assert await initiatives_store.load_case_by_id(session, 404, lock=True) is None


async def test_residents_do_not_see_internal_notes_on_the_timeline(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        anna = await add_broker(session, 1, "Anna")
        created = await initiatives_store.create_initiative(session, new_initiative(), NOW)
        await initiatives_store.assign(
            session, created.id, broker_id=anna.id, by_staff_id=None, note=None, now=NOW
        )

    t1, t2, t3, t4 = (NOW + timedelta(hours=n) for n in range(1, 5))
    async with sessions() as session, session.begin():
        note_id = await initiatives_store.add_event(
            session,
            created.id,
            kind="note",
            now=t1,
            actor_role="broker",
            actor_user_id=1,
            staff_id=anna.id,
            note="Buurman is tegen, eerst bellen.",
            touch_broker_action=True,
        )
        await initiatives_store.add_event(
            session,
            created.id,
            kind=initiatives_store.TimelineKind.MESSAGE_TO_RESIDENT,
            now=t2,
            actor_role="broker",
            actor_user_id=1,
            staff_id=anna.id,
            note="Zullen we donderdag bellen?",
            touch_broker_action=True,
        )
        await initiatives_store.add_event(
            session,
            created.id,
            kind="message_from_resident",
            now=t3,
            actor_role="resident",
            actor_user_id=1001,
            note="Prima, na vijf uur.",
        )
        await initiatives_store.add_event(
            session,
            created.id,
            kind="note",
            now=t4,
            actor_role="broker",
            staff_id=anna.id,
            visible_to_resident=True,
        )
        case = await initiatives_store.load_case_by_id(session, created.id)
        assert case is not None and case.last_broker_action_at == t2

        for_staff = await initiatives_store.timeline(session, created.id, resident_view=False)
        for_resident = await initiatives_store.timeline(session, created.id, resident_view=True)

    assert [(e.kind, e.visible_to_resident) for e in for_staff] == [
        ("status", True),
        ("assigned", True),
        ("note", False),
        ("message_to_resident", True),
        ("message_from_resident", True),
        ("note", True),
    ]
    assert (for_staff[2].id, for_staff[2].staff_name, for_staff[2].at) == (note_id, "Anna", t1)
    assert [(e.kind, e.note) for e in for_resident] == [
        ("status", None),
        ("assigned", None),
        ("message_to_resident", "Zullen we donderdag bellen?"),
        ("message_from_resident", "Prima, na vijf uur."),
        ("note", None),
    ]
    assert for_resident[2].staff_name == "Anna" and for_resident[3].staff_name is None


async def test_brokers_see_their_open_cases_and_coordinators_the_unassigned_ones(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        anna = await add_broker(session, 1, "Anna")
        bram = await add_broker(session, 2, "Bram")
        first, second, third, fourth, fifth = [
            await initiatives_store.create_initiative(
                session, new_initiative(title=f"Idee {n}"), NOW + timedelta(hours=n)
            )
            for n in range(5)
        ]
        await initiatives_store.assign(
            session, first.id, broker_id=anna.id, by_staff_id=None, note=None, now=NOW
        )
        await initiatives_store.assign(
            session, second.id, broker_id=anna.id, by_staff_id=None, note=None, now=NOW
        )
        await initiatives_store.assign(
            session, third.id, broker_id=bram.id, by_staff_id=None, note=None, now=NOW
        )
        # The second case has been waiting longest in its status.
        await initiatives_store.change_status(
            session,
            first.id,
            status="in_gesprek",
            now=NOW + timedelta(days=1),
            actor_role="broker",
            actor_user_id=1,
            staff_id=anna.id,
            note=None,
            department=None,
        )
        await initiatives_store.change_status(
            session,
            fifth.id,
            status="gestopt",
            now=NOW,
            actor_role="coordinator",
            actor_user_id=9,
            staff_id=None,
            note="Dubbel",
            department=None,
        )

        annas = await initiatives_store.cases_of_broker(session, anna.id, open_statuses=OPEN)
        unassigned = await initiatives_store.unassigned_cases(session, open_statuses=OPEN)

    assert [c.reference for c in annas] == [second.reference, first.reference]
    assert all(isinstance(c, initiatives_store.CaseRow) and c.broker_id == anna.id for c in annas)
    assert annas[1].needs == ("geld",)
    assert [c.reference for c in unassigned] == [fourth.reference]


@only_on("postgresql")
async def test_a_locked_case_makes_a_second_editor_wait_on_postgresql(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        created = await initiatives_store.create_initiative(session, new_initiative(), NOW)

    async with sessions() as first, first.begin(), sessions() as second, second.begin():
        assert await initiatives_store.load_case(first, created.reference, lock=True) is not None
        assert await initiatives_store.load_case(second, created.reference) is not None
        await second.execute(text("SET LOCAL lock_timeout = '50ms'"))
        with pytest.raises(DBAPIError, match="lock timeout"):
            await initiatives_store.load_case_by_id(second, created.id, lock=True)


# --- migration ---------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def empty_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    cfg = alembic_config()

    def _run(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def create_initiative_at_0001(
    session: AsyncSession, new: initiatives_store.NewInitiative
) -> initiatives_store.InitiativeRow:
    """An initiative and its first event as the code of revision 0001 wrote them: only 0001's columns."""
    reference, seq = await initiatives_store.next_reference(
        session, municipality_code=new.municipality_code, prefix=new.prefix, year=NOW.year
    )
    fields = {
        name: getattr(new, name)
        for name in new.__dataclass_fields__
        if name not in ("prefix", *initiatives_store.LATER_COLUMNS)
    }
    row = initiatives_store.InitiativeRow(
        id=0,
        **{**fields, "needs": tuple(new.needs)},
        reference=reference,
        year=NOW.year,
        seq=seq,
        status="ingediend",
        status_changed_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )
    values = {name: getattr(row, name) for name in row.__dataclass_fields__ if name != "id"}
    result = await session.execute(
        tables.initiatives.insert().returning(tables.initiatives.c.id), {**values, "needs": list(new.needs)}
    )
    initiative_id = result.scalar_one()
    await session.execute(
        tables.initiative_events.insert(),
        {
            "initiative_id": initiative_id,
            "at": NOW,
            "kind": "status",
            "status": "ingediend",
            "actor_user_id": new.resident_user_id,
            "actor_role": "resident",
            "note": None,
            "department": None,
        },
    )
    return dataclasses.replace(row, id=initiative_id)


async def test_upgrading_from_0001_keeps_initiatives_and_their_timeline(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine, "0001")
    sessions = session_factory(empty_engine)
    async with sessions() as session, session.begin():
        created = await create_initiative_at_0001(session, new_initiative())

    await upgrade(empty_engine)

    async with sessions() as session, session.begin():
        case = await initiatives_store.load_case(session, created.reference)
        assert case is not None
        assert (case.title, case.status, case.broker_id, case.assigned_at, case.department) == (
            created.title,
            "ingediend",
            None,
            None,
            None,
        )
        (entry,) = await initiatives_store.timeline(session, created.id, resident_view=True)
        assert (entry.kind, entry.status, entry.at, entry.visible_to_resident) == (
            "status",
            "ingediend",
            NOW,
            True,
        )


async def test_downgrading_to_0001_keeps_initiatives_and_their_timeline(empty_engine: AsyncEngine) -> None:
    await upgrade(empty_engine)
    sessions = session_factory(empty_engine)
    async with sessions() as session, session.begin():
        anna = await add_broker(session, 1, "Anna")
        created = await initiatives_store.create_initiative(session, new_initiative(), NOW)
        await initiatives_store.assign(
            session, created.id, broker_id=anna.id, by_staff_id=None, note="Hallo", now=NOW
        )
        await initiatives_store.add_event(
            session, created.id, kind="note", now=NOW, actor_role="broker", staff_id=anna.id
        )

    await downgrade(empty_engine, "0001")
    assert await current_revision(empty_engine) == "0001"
    async with sessions() as session, session.begin():
        assert await initiatives_store.load_initiative(session, created.reference) == created
        events = await initiatives_store.events_of_initiative(session, created.id)
    assert [(e.kind, e.note) for e in events] == [("status", None), ("assigned", "Hallo"), ("note", None)]

    await upgrade(empty_engine)
    async with sessions() as session, session.begin():
        assert await staff_store.list_staff(session) == []
        assert len(await initiatives_store.timeline(session, created.id, resident_view=True)) == 3
