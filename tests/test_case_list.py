"""The staff web's case list: scope, filters, sorting, pages, and "stalled" as the watchdog sees it."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.settings import load_municipality
from flows.cases import QuestionFacts
from flows.department import standing
from flows.stalls import Level, StallFacts, is_stalled
from storage import case_list, departments
from storage.case_list import Holder, Sort, SortKey
from storage.reports import CaseFilter, Scope
from storage.staff import add_staff
from storage.tables import initiatives

M = load_municipality(Path(__file__).resolve().parents[1] / "config" / "deventer.toml")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # a Monday
EVERYTHING = Scope(broker_id=None, wijken=None, uncovered_too=None)
W1, W2 = M.wijken[0].code, M.wijken[1].code


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def row(seq: int, **changes: Any) -> dict[str, Any]:
    """An initiative row submitted ``seq`` days before NOW, in W1, status ingediend."""
    created = NOW - timedelta(days=seq)
    values: dict[str, Any] = {
        "municipality_code": M.code,
        "reference": f"INI-2026-{seq:04d}",
        "year": 2026,
        "seq": seq,
        "resident_user_id": 5000 + seq,
        "resident_chat_id": 5000 + seq,
        "title": f"Idee {seq}",
        "description": "Een bankje.",
        "theme_code": "groen",
        "wijk_code": W1,
        "own_contribution": None,
        "needs": [],
        "amount_cents": None,
        "neighbours": None,
        "photo_file_id": None,
        "contact_name": "Fatima",
        "contact_phone": "0612345678",
        "contact_email": "f@example.org",
        "consent_at": created,
        "language": "nl",
        "status": "ingediend",
        "status_changed_at": created,
        "created_at": created,
        "updated_at": created,
        "broker_id": None,
        "assigned_at": None,
        "last_broker_action_at": None,
        "department": None,
        "next_alert_at": None,
    }
    values.update(changes)
    return values


async def insert(sessions: async_sessionmaker[AsyncSession], rows: list[dict[str, Any]]) -> None:
    async with sessions() as s, s.begin():
        conn = await s.connection()
        await conn.execute(initiatives.insert(), rows)


async def broker(sessions: async_sessionmaker[AsyncSession], user_id: int, name: str) -> int:
    async with sessions() as s, s.begin():
        made = await add_staff(
            s, telegram_user_id=user_id, name=name, role="broker", wijken=(), themes=(), now=NOW
        )
    return made.id


async def page(
    sessions: async_sessionmaker[AsyncSession],
    *,
    scope: Scope = EVERYTHING,
    f: CaseFilter | None = None,
    sort: str | None = None,
    number: int = 1,
) -> case_list.CasePage:
    async with sessions() as s, s.begin():
        return await case_list.case_page(
            s, scope, f or CaseFilter(), M, sort=Sort.parse(sort), page=number, now=NOW
        )


async def test_the_list_is_paged_by_fifty_newest_first_with_the_total(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await insert(sessions, [row(i) for i in range(1, 121)])
    first = await page(sessions)
    assert first.total == 120 and first.pages == 3 and len(first.rows) == 50
    assert first.rows[0].reference == "INI-2026-0001"  # submitted a day ago: the newest
    last = await page(sessions, number=9)  # past the end: the last page
    assert last.page == 3 and len(last.rows) == 20 and (last.first, last.last) == (101, 120)
    assert last.rows[-1].reference == "INI-2026-0120"


async def test_reference_sorts_by_number_not_by_text(sessions: async_sessionmaker[AsyncSession]) -> None:
    await insert(sessions, [row(9999), row(10000, reference="INI-2026-10000"), row(5)])
    rows = (await page(sessions, sort="reference")).rows
    assert [r.reference for r in rows] == ["INI-2026-0005", "INI-2026-9999", "INI-2026-10000"]
    rows = (await page(sessions, sort="-reference")).rows
    assert rows[0].reference == "INI-2026-10000"


async def test_sorting_by_status_follows_the_lifecycle_and_by_days_the_longest_wait(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await insert(
        sessions,
        [
            row(1, status="gerealiseerd"),
            row(2, status="ingediend", status_changed_at=NOW - timedelta(days=2)),
            row(3, status="in_gesprek", status_changed_at=NOW - timedelta(days=30)),
        ],
    )
    by_status = [r.status for r in (await page(sessions, sort="status")).rows]
    assert by_status == ["ingediend", "in_gesprek", "gerealiseerd"]
    most_days = [r.reference for r in (await page(sessions, sort="-days")).rows]
    assert most_days[0] == "INI-2026-0003"


async def test_sorting_by_broker_puts_cases_without_one_last(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bram = await broker(sessions, 41, "Bram")
    anna = await broker(sessions, 42, "anna")
    await insert(sessions, [row(1), row(2, broker_id=bram), row(3, broker_id=anna)])
    up = [r.broker_name for r in (await page(sessions, sort="broker")).rows]
    down = [r.broker_name for r in (await page(sessions, sort="-broker")).rows]
    assert up == ["anna", "Bram", None]
    assert down == ["Bram", "anna", None]


async def test_scope_and_filters_narrow_the_list(sessions: async_sessionmaker[AsyncSession]) -> None:
    bram = await broker(sessions, 41, "Bram")
    await insert(
        sessions,
        [
            row(1, broker_id=bram),
            row(2, wijk_code=W2, theme_code="zorg"),
            row(40, status="gestopt"),
        ],
    )
    mine = await page(sessions, scope=Scope(broker_id=bram, wijken=None, uncovered_too=None))
    assert [r.reference for r in mine.rows] == ["INI-2026-0001"]
    wijk2 = await page(sessions, scope=Scope(broker_id=None, wijken=frozenset({W2}), uncovered_too=None))
    assert [r.reference for r in wijk2.rows] == ["INI-2026-0002"]
    themed = await page(sessions, f=CaseFilter(theme="zorg"))
    assert themed.total == 1
    since = await page(sessions, f=CaseFilter(since=(NOW - timedelta(days=3)).date()))
    assert {r.reference for r in since.rows} == {"INI-2026-0001", "INI-2026-0002"}
    until = await page(sessions, f=CaseFilter(until=(NOW - timedelta(days=30)).date()))
    assert [r.reference for r in until.rows] == ["INI-2026-0040"]


async def test_stalled_filter_finds_exactly_what_the_watchdog_calls_stalled(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bram = await broker(sessions, 41, "Bram")
    rng = random.Random(11)
    rows = []
    statuses = ["ingediend", "toegewezen", "in_gesprek", "bij_gemeente", "afgewezen", "gerealiseerd"]
    for i in range(1, 301):
        changed = NOW - timedelta(hours=rng.randint(0, 24 * 90))
        has_broker = rng.random() < 0.7
        status = rng.choice(statuses)
        rows.append(
            row(
                i,
                created_at=changed - timedelta(days=1),
                status=status,
                status_changed_at=changed,
                department=rng.choice(["vergunningen", "groen", None]) if status == "bij_gemeente" else None,
                broker_id=bram if has_broker else None,
                assigned_at=changed - timedelta(hours=rng.randint(0, 500)) if has_broker else None,
                last_broker_action_at=(
                    changed + timedelta(hours=rng.randint(0, 200))
                    if has_broker and rng.random() < 0.5
                    else None
                ),
            )
        )
    await insert(sessions, rows)
    for now in (NOW, NOW + timedelta(days=3, hours=21), datetime(2026, 12, 28, 8, 59, tzinfo=UTC)):
        async with sessions() as s, s.begin():
            found: set[str] = set()
            async for batch in case_list.iter_cases(s, EVERYTHING, CaseFilter(status="stalled"), M, now=now):
                found |= {r.reference for r in batch}
            everything = [
                r async for b in case_list.iter_cases(s, EVERYTHING, CaseFilter(), M, now=now) for r in b
            ]
        now_minute = now.replace(second=0, microsecond=0)
        expected = {r.reference for r in everything if is_stalled(r.facts, M, now_minute)}
        assert found == expected
        assert expected  # the data really has stalled cases


async def test_exports_walk_every_case_in_batches(sessions: async_sessionmaker[AsyncSession]) -> None:
    await insert(sessions, [row(i) for i in range(1, 26)])
    async with sessions() as s, s.begin():
        batches = [b async for b in case_list.iter_cases(s, EVERYTHING, CaseFilter(), M, now=NOW, batch=10)]
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [r.reference for b in batches for r in b] == [f"INI-2026-{i:04d}" for i in range(1, 26)]


def test_the_responsible_one_is_the_department_then_the_broker_then_the_coordinators() -> None:
    t0 = datetime(2026, 11, 2, 10, tzinfo=UTC)
    t1 = t0 + timedelta(days=3)
    common: dict[str, Any] = {"broker_id": 7, "broker_name": "Bram", "assigned_at": t0}
    at_dept = case_list.responsible("bij_gemeente", t1, t0, department="groen", **common)
    assert (at_dept.holder, at_dept.since, at_dept.name) == (Holder.DEPARTMENT, t1, "groen")
    with_broker = case_list.responsible("in_gesprek", t1, t0, department=None, **common)
    assert (with_broker.holder, with_broker.since) == (Holder.BROKER, t0)
    nobody = case_list.responsible(
        "ingediend", t0, t0, broker_id=None, broker_name=None, assigned_at=None, department=None
    )
    assert (nobody.holder, nobody.since) == (Holder.COORDINATORS, t0)
    closed = case_list.responsible("gerealiseerd", t1, t0, department=None, **common)
    assert closed.holder is Holder.NOBODY


def test_the_norm_date_is_the_reminder_and_a_stalled_case_shows_its_step() -> None:
    # Monday 2 November, norm of in_gesprek 10 working days: due Monday 16 November 09:00.
    changed = datetime(2026, 11, 2, 10, tzinfo=UTC)
    facts = StallFacts("in_gesprek", changed)
    within = case_list.norm_date(facts, M, datetime(2026, 11, 10, 10, tzinfo=UTC))
    assert within is not None and within.norm == 10
    assert within.due.date() == date(2026, 11, 16) and not within.stalled
    over = case_list.norm_date(facts, M, NOW)
    # 20 working days by 30 November: past 1.5 times the norm (the escalation), the urgent one at 30.
    assert over is not None and over.stalled[0].level is Level.ESCALATION and over.standing.over == 10
    assert over.next_step is not None and over.next_step[0] is Level.URGENT
    assert case_list.norm_date(StallFacts("gerealiseerd", changed), M, NOW) is None


def test_sort_parse_falls_back_to_newest_first() -> None:
    assert Sort.parse("-broker") == Sort(SortKey.BROKER, True)
    assert Sort.parse("wijk").param == "wijk"
    assert Sort.parse("drop table") == Sort()


async def test_stalled_finds_a_department_past_its_norm_or_its_promised_date(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    asked = NOW - timedelta(days=60)  # far past Verkeer's 20 working days (the bij_gemeente norm)
    await insert(
        sessions,
        [
            row(i, status="bij_gemeente", department="verkeer", status_changed_at=asked, created_at=asked)
            for i in range(1, 6)
        ],
    )
    async with sessions() as s, s.begin():
        ids = {
            r.reference: r.id
            async for b in case_list.iter_cases(s, EVERYTHING, CaseFilter(), M, now=NOW)
            for r in b
        }
        by_ref = sorted(ids)
        late = await departments.ask(
            s, initiative_id=ids[by_ref[0]], department="verkeer", question="?", staff_id=None, now=asked
        )
        fresh = await departments.ask(
            s,
            initiative_id=ids[by_ref[1]],
            department="verkeer",
            question="?",
            staff_id=None,
            now=NOW - timedelta(days=2),
        )
        info = await departments.ask(
            s, initiative_id=ids[by_ref[2]], department="verkeer", question="?", staff_id=None, now=asked
        )
        await departments.update_question(s, info.id, state="info")
        promised = await departments.ask(
            s,
            initiative_id=ids[by_ref[3]],
            department="verkeer",
            question="?",
            staff_id=None,
            now=NOW - timedelta(days=2),
        )
        await departments.update_question(s, promised.id, promised_on=date(2026, 11, 27))  # last Friday
        later = await departments.ask(
            s, initiative_id=ids[by_ref[4]], department="verkeer", question="?", staff_id=None, now=asked
        )
        await departments.update_question(s, later.id, promised_on=date(2026, 12, 4))
    async with sessions() as s, s.begin():
        found = {
            r.reference
            async for b in case_list.iter_cases(s, EVERYTHING, CaseFilter(status="stalled"), M, now=NOW)
            for r in b
        }
        rows = [await departments.question(s, q.id) for q in (late, fresh, info, promised, later)]
    assert found == {by_ref[0], by_ref[3]}
    # The same rule as the department's clock in flows.
    reached = [standing(QuestionFacts.of(q), M, NOW) for q in rows]
    assert [r is not None and r.level is not None for r in reached] == [True, False, False, True, False]
