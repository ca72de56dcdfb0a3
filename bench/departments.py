"""The department clock's sweep and the answer page at size: their cost follows what is due, not the table.

Seeds Zutphen (config/zutphen.toml) twice, a small and a big table of questions to departments (most of
them answered, forwarded or withdrawn, some open but not yet due, exactly ``--due`` due now), and measures
side by side in one run: ``Watchdog.sweep`` (dry run and recording) on each, and GET and POST of the
answer page ``/afdeling/<token>`` through the real site app. Goals: big/small ≤ 1.5 for the sweep; GET ≤
100 ms and POST ≤ 150 ms median. Run from the repository root: ``.venv/bin/python bench/departments.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from sqlalchemy import bindparam, delete, func, select, update  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bench.common import BENCH_CONTACT_KEYS, add_backend_options, run_report, throwaway_postgres  # noqa: E402
from bot.app import Runtime  # noqa: E402
from bot.settings import BUNDLED_CONFIG_DIR, Settings, load_municipality  # noqa: E402
from bot.watchdog import SweepReport  # noqa: E402
from bot.web.standalone import build_site_app  # noqa: E402
from flows.department import department_norm  # noqa: E402
from flows.municipality import Department, Municipality  # noqa: E402
from flows.stalls import AMSTERDAM, due_at, working_days_between  # noqa: E402
from storage import people as people_store  # noqa: E402
from storage import staff as staff_store  # noqa: E402
from storage import tables  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.explain import explain_due_questions  # noqa: E402
from storage.migrate import upgrade  # noqa: E402

GOAL_RATIO = 1.5
GOAL_GET_MS, GOAL_POST_MS = 100.0, 150.0
SIZES, QUICK_SIZES = (10_000, 100_000), (2_000, 20_000)
CONFIG = BUNDLED_CONFIG_DIR / "zutphen.toml"
# A Tuesday morning in Zutphen.
AS_OF = datetime(2026, 12, 1, 9, 0, tzinfo=AMSTERDAM)
BROKER_USER, COORDINATOR_USER = 9_000_001, 9_000_002
RESIDENTS = 10_000_000
ROWS_PER_INSERT = 5_000
# A due question is this many working days past its norm times the factor: reminder, escalation, urgent.
LADDER = (1.0, 1.5, 3.0)
# What the page's form sends, in turn: every answer a department can give.
ANSWERS = (
    {"kind": "ja", "text": ""},
    {"kind": "voorwaarden", "text": "Alleen met een vergunning voor de stoep."},
    {"kind": "nee", "text": "Daar gaat een bus langs.", "blocked_by": "regel"},
    {"kind": "informatie", "text": "Hoe breed is het bankje?"},
    {"kind": "niet_voor_ons", "text": "", "forward_to": "vergunningen"},
)


# --- the data ------------------------------------------------------------------------------------


def _department(m: Municipality, i: int) -> Department:
    """The department initiative ``i`` waits on (or waited on): each in turn."""
    return m.departments[i % len(m.departments)]


@cache
def _started(working_days: int) -> datetime:
    """10:00 on the latest day from which AS_OF is ``working_days`` working days on."""
    day = AS_OF.replace(hour=10)
    while working_days_between(day, AS_OF) < working_days:
        day -= timedelta(days=1)
    return day


def _rows(i: int, due: int | None, m: Municipality, broker_id: int) -> dict[str, list[dict[str, Any]]]:
    """Initiative ``i`` (id i + 1) with its one question to a department, the contact's link and the
    thread. ``due`` is the question's number among the due ones (None: not due): then it is open and
    past a step of its ladder; else answered (55%), forwarded, withdrawn (10% each), waiting on the
    broker (5%) or open with its reminder still ahead (20%)."""
    id, kind = i + 1, i % 20
    department = _department(m, i)
    norm = department_norm(m, department.code)
    if due is not None or kind >= 16:
        state = "open"
    else:
        state = (
            "answered" if kind <= 10 else "forwarded" if kind <= 12 else "withdrawn" if kind <= 14 else "info"
        )
    if due is not None:
        started = _started(int(norm * LADDER[due % 3]) + 1 + due // 3 % 4)
    else:
        started = AS_OF.replace(hour=10) - timedelta(days=(1 if state == "open" else 60) + i % 15)
    answer = ("ja", "voorwaarden", "nee")[i % 3] if state == "answered" else None
    waiting = state in ("open", "info")
    status = "bij_gemeente" if waiting else {"ja": "goedgekeurd", "nee": "afgewezen"}.get(answer, "gestopt")
    answered = started + timedelta(days=12) if state in ("answered", "forwarded", "info") else None
    utc = started.astimezone(UTC)
    closed = utc + timedelta(days=12) if not waiting else None
    final = state in ("answered", "forwarded")
    contact = department.contacts[0]
    initiative = {
        "id": id,
        "municipality_code": m.code,
        "reference": f"INI-2026-{id:06d}",
        "year": 2026,
        "seq": id,
        "resident_user_id": RESIDENTS + id,
        "resident_chat_id": RESIDENTS + id,
        "title": f"Bankjes bij de speeltuin {id}",
        "description": "Drie bankjes bij de speeltuin, zodat ouderen even kunnen rusten.",
        "theme_code": m.themes[i % len(m.themes)].code,
        "wijk_code": m.wijken[i % len(m.wijken)].code,
        "own_contribution": "We zetten ze zelf neer.",
        "needs": ["geld", "vergunning"],
        "amount_cents": 125_000,
        "neighbours": 12,
        "contact_name": "Anna",
        "contact_phone": "0612345678",  # never on a department's page
        "consent_at": utc - timedelta(days=30),
        "language": "nl",
        "status": status,
        "status_changed_at": utc,
        "created_at": utc - timedelta(days=30),
        "updated_at": utc,
        "broker_id": broker_id,
        "assigned_at": utc - timedelta(days=29),
        "last_broker_action_at": utc,
        "department": department.code if waiting else None,
        # The case's own clock is weeks away: the sweep's first pass finds nothing, the second does.
        "next_alert_at": (AS_OF + timedelta(days=30)).astimezone(UTC) if waiting else None,
    }
    question = {
        "id": id,
        "initiative_id": id,
        "department": department.code,
        "question": "Mogen er twee bankjes op de stoep aan de Houtwal, naast de speeltuin?",
        "asked_at": utc,
        "asked_by_staff_id": broker_id,
        "state": state,
        "clock_started_at": utc,
        "next_alert_at": due_at(started, norm).astimezone(UTC) if state == "open" else None,
        "answer_kind": answer or ("niet_voor_ons" if state == "forwarded" else None),
        "answer_text": "Dat kan, met een vergunning." if answer else None,
        "blocked_by": "regel" if answer == "nee" and i % 2 else None,
        "answered_at": answered if final else None,
        "answer_working_days": 8 if final else None,
        "answered_within_norm": True if final else None,
        "forwarded_to": m.departments[0].code if state == "forwarded" else None,
        "closed_at": closed,
    }
    link = {
        "id": id,
        "initiative_id": id,
        "department": department.code,
        "name": contact.name,
        "email": contact.email,
        "salt": secrets.token_hex(16),
        "created_at": utc,
        "last_used_at": answered,
        "revoked_at": closed,
        "revoked_reason": "left_department" if closed else None,
    }
    message = {
        "id": id,
        "question_id": id,
        "at": answered,
        "author": "department",
        "author_name": contact.name,
        "author_email": contact.email,
        "kind": "informatie" if state == "info" else question["answer_kind"],
        "text": question["answer_text"] or "Hoe breed is de stoep daar?",
        "blocked_by": question["blocked_by"],
        "forward_to": question["forwarded_to"],
    }
    return {
        "initiatives": [initiative],
        "department_questions": [question],
        "department_links": [link],
        "department_messages": [message] if answered is not None else [],
    }


def _chunks(total: int, due: int, m: Municipality, broker_id: int) -> Iterator[dict[str, list[dict]]]:
    due_rows = {k * (total // due): k for k in range(due)}  # spread over the table, as real ones are
    for start in range(0, total, ROWS_PER_INSERT):
        chunk: dict[str, list[dict[str, Any]]] = {}
        for i in range(start, min(start + ROWS_PER_INSERT, total)):
            for name, rows in _rows(i, due_rows.get(i), m, broker_id).items():
                chunk.setdefault(name, []).extend(rows)
        yield chunk


async def seed(url: str, m: Municipality, total: int, due: int) -> None:
    """Migrate; a broker and a coordinator; ``total`` initiatives with a question each."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        ids: dict[str, int] = {}
        async with session_factory(engine)() as session, session.begin():
            for user, role in ((BROKER_USER, "broker"), (COORDINATOR_USER, "coordinator")):
                await people_store.upsert_person(
                    session, user_id=user, chat_id=user, first_name=role, telegram_language="nl", now=AS_OF
                )
                staff = {"name": role.title(), "role": role, "wijken": [], "themes": [], "now": AS_OF}
                ids[role] = (await staff_store.add_staff(session, telegram_user_id=user, **staff)).id
        await _insert(engine, _chunks(total, due, m, ids["broker"]))
    finally:
        await engine.dispose()


async def _insert(engine: AsyncEngine, chunks: Iterator[dict[str, list[dict[str, Any]]]]) -> None:
    if engine.dialect.name != "postgresql":
        async with engine.begin() as conn:
            for chunk in chunks:
                for name, rows in chunk.items():
                    if rows:
                        await conn.execute(getattr(tables, name).insert(), rows)
        return
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        for chunk in chunks:
            for name, rows in chunk.items():
                if rows:
                    columns = list(rows[0])
                    records = [
                        tuple(json.dumps(r[c]) if c == "needs" else r[c] for c in columns) for r in rows
                    ]
                    await raw.copy_records_to_table(name, records=records, columns=columns)
        await conn.commit()
        # What autovacuum does soon after a load; and the sequences go on after the ids given.
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        for name in ("initiatives", "department_questions", "department_links", "department_messages"):
            await conn.exec_driver_sql(f"VACUUM ANALYZE {name}")
            await conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"
            )


# --- the measurements ----------------------------------------------------------------------------


@dataclass
class World:
    """One seeded database with the runtime and the site on it."""

    total: int
    runtime: Runtime
    client: TestClient
    due_at: dict[int, datetime] = field(default_factory=dict)  # due question id → its next_alert_at
    idle: list[float] = field(default_factory=list)  # a dry run when nothing is due: the look-up alone
    dry: list[float] = field(default_factory=list)
    sweep: list[float] = field(default_factory=list)
    sweep_cpu: list[float] = field(default_factory=list)
    mails: int = 0
    get: list[float] = field(default_factory=list)
    post: list[float] = field(default_factory=list)


async def _count(world: World, table: Any, *where: Any) -> int:
    async with world.runtime.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def _reset(world: World) -> None:
    """Forget what a recording sweep did: its alerts and messages gone, the due questions due again."""
    q = tables.department_questions
    async with world.runtime.engine.begin() as conn:
        for table in (tables.stall_alerts, tables.outbox, tables.mail_outbox):
            await conn.execute(delete(table))
        await conn.execute(
            update(q).where(q.c.id == bindparam("qid")).values(next_alert_at=bindparam("at")),
            [{"qid": qid, "at": at} for qid, at in world.due_at.items()],
        )


async def _timed(run: Callable[[], Awaitable[SweepReport]]) -> tuple[float, float, SweepReport]:
    """The wall and CPU time of ``run`` in milliseconds, and what it returned."""
    started, cpu = time.perf_counter(), time.process_time()
    result = await run()
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000, result


async def measure_sweeps(worlds: Sequence[World], due: int, repeat: int) -> None:
    """From the seeded state: a dry run with nothing due, one with ``due`` due, and a recording sweep; the
    worlds in turn (the order swapped each round)."""
    for round in range(repeat):
        for world in worlds if round % 2 == 0 else worlds[::-1]:
            watchdog = world.runtime.watchdog(None)
            await _reset(world)
            wall, _, idle = await _timed(
                partial(watchdog.sweep, as_of=AS_OF - timedelta(days=365), dry_run=True)
            )
            assert idle.questions == 0 and idle.cases == 0, idle.summary()
            world.idle.append(wall)
            wall, _, dry = await _timed(partial(watchdog.sweep, as_of=AS_OF, dry_run=True))
            assert dry.questions == due and len(dry.sent) == due and dry.cases == 0, dry.summary()
            world.dry.append(wall)
            wall, cpu, done = await _timed(partial(watchdog.sweep, as_of=AS_OF))
            world.sweep.append(wall)
            world.sweep_cpu.append(cpu)
            sent = await _count(world, tables.stall_alerts, tables.stall_alerts.c.skipped.is_(False))
            world.mails = await _count(world, tables.mail_outbox)
            assert done.questions == sent == due and world.mails == done.mails, (sent, world.mails)


async def _page_paths(world: World, n: int) -> list[tuple[str, str]]:
    """``n`` contacts' links (as paths, with their department) to open questions spread over the table."""
    q, m, desk = (
        tables.department_questions,
        world.runtime.municipality,
        world.runtime.dispatcher.casework.desk,
    )
    async with world.runtime.engine.connect() as conn:
        waiting = select(q.c.id).where(q.c.state == "open", q.c.next_alert_at > AS_OF).order_by(q.c.id)
        ids = list(await conn.scalars(waiting))
    paths = []
    async with world.runtime.sessions() as session, session.begin():
        for qid in ids[:: len(ids) // n][:n]:  # one question per initiative, with the same id
            department = _department(m, qid - 1)
            contact = department.contacts[0]
            url = await desk.link_url(
                session, initiative_id=qid, department=department.code, contact=contact, now=AS_OF
            )
            paths.append((re.sub(r"^https?://[^/]+", "", url), department.code))
    return paths


async def measure_page(worlds: Sequence[World], requests: int) -> None:
    """GET of a contact's page, then POST of an answer with the page's form token, each on another open
    question; the worlds in turn (the order swapped each time). The first of each is a warm-up."""
    paths = {world.total: await _page_paths(world, requests + 1) for world in worlds}
    before = {world.total: await _count(world, tables.department_messages) for world in worlds}
    for n in range(requests + 1):
        for world in worlds if n % 2 == 0 else worlds[::-1]:
            (path, department), client = paths[world.total][n], world.client
            started = time.perf_counter()
            response = await client.get(path)
            html = await response.text()
            got = (time.perf_counter() - started) * 1000
            assert response.status == 200 and "Houtwal" in html and "0612345678" not in html, html[:2000]
            token = re.search(r'name="formtoken" value="([^"]+)"', html)
            assert token, "no answer form on the page"
            form = {"formtoken": token.group(1), "name": "Team", **ANSWERS[n % len(ANSWERS)]}
            if form.get("forward_to") == department:
                form["forward_to"] = "groen"
            site = client.make_url("/")
            headers = {"Origin": f"{site.scheme}://{site.host}:{site.port}"}  # as a browser sends it
            started = time.perf_counter()
            response = await client.post(path, data=form, headers=headers, allow_redirects=False)
            await response.read()
            posted = (time.perf_counter() - started) * 1000
            assert response.status == 303 and "verstuurd" in response.headers["Location"], response.status
            if n:
                world.get.append(got)
                world.post.append(posted)
    for world in worlds:  # every answer was recorded
        assert await _count(world, tables.department_messages) == before[world.total] + requests + 1


@contextlib.asynccontextmanager
async def opened(url: str, total: int, tmp: Path) -> AsyncIterator[World]:
    settings = Settings(
        database_url=url,
        config_path=CONFIG,
        mail_dir=tmp / f"mail-{total}",
        data_encryption_keys=BENCH_CONTACT_KEYS,
    )
    runtime = await Runtime.open(settings, clock=lambda: AS_OF.astimezone(UTC))
    try:
        client = TestClient(TestServer(build_site_app(settings, runtime=runtime), host="127.0.0.1"))
        await client.start_server()
        try:
            q = tables.department_questions
            async with runtime.engine.connect() as conn:
                due = await conn.execute(select(q.c.id, q.c.next_alert_at).where(q.c.next_alert_at <= AS_OF))
                due_at = {qid: at for qid, at in due}
            yield World(total, runtime, client, due_at=due_at)
        finally:
            await client.close()
    finally:
        await runtime.close()


async def run_backend(
    backend: str, urls: Sequence[str], args: argparse.Namespace, sizes: Sequence[int]
) -> list[World]:
    m = load_municipality(CONFIG)
    for url, total in zip(urls, sizes, strict=True):
        started = time.perf_counter()
        await seed(url, m, total, args.due)
        print(f"  {backend}: {total:,} questions seeded in {time.perf_counter() - started:.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        async with contextlib.AsyncExitStack() as stack:
            worlds = [
                await stack.enter_async_context(opened(u, t, Path(tmp)))
                for u, t in zip(urls, sizes, strict=True)
            ]
            for world in worlds:
                assert len(world.due_at) == args.due, (world.total, len(world.due_at))
            async with worlds[-1].runtime.engine.connect() as conn:
                plan = await explain_due_questions(conn, {"now": AS_OF, "limit": 500})
            print(f"  {backend} plan of the due-questions query ({sizes[-1]:,} rows, {args.due} due):")
            print("    " + plan.replace("\n", "\n    "), flush=True)
            await measure_sweeps(worlds, args.due, args.repeat)
            await measure_page(worlds, args.requests)
    return worlds


# --- the report ----------------------------------------------------------------------------------


def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 9 // 10) - 1)]


def report(results: dict[str, list[World]], due: int) -> str:
    med = statistics.median
    lines = [
        f"{'backend':<11} {'questions':>9} {'idle ms':>7} {'dry-run ms':>10} {'sweep ms':>9} {'cpu ms':>7} "
        f"{'e-mails':>7}  {'GET p50':>7} {'p90':>6}  {'POST p50':>8} {'p90':>6}"
    ]
    for backend, worlds in results.items():
        for w in worlds:
            lines.append(
                f"{backend:<11} {w.total:>9,} {med(w.idle):>7.1f} {med(w.dry):>10.1f} {med(w.sweep):>9.1f} "
                f"{med(w.sweep_cpu):>7.1f} {w.mails:>7,}  {med(w.get):>7.1f} {_p90(w.get):>6.1f}  "
                f"{med(w.post):>8.1f} {_p90(w.post):>6.1f}"
            )
    lines.append("")
    for backend, (small, big) in results.items():
        times = big.total // small.total
        for name, a, b in (
            ("nothing due: dry run", small.idle, big.idle),
            (f"the same {due} due: dry run", small.dry, big.dry),
            (f"the same {due} due: sweep", small.sweep, big.sweep),
        ):
            ratio = med(b) / med(a)
            verdict = "PASS" if ratio <= GOAL_RATIO else "ABOVE"
            lines.append(
                f"{backend}: {times}× the questions, {name} {ratio:.2f}× the time: "
                f"{verdict} (goal ≤ {GOAL_RATIO})"
            )
        for name, a, b, goal in (
            ("GET", small.get, big.get, GOAL_GET_MS),
            ("POST", small.post, big.post, GOAL_POST_MS),
        ):
            verdict = "PASS" if med(b) <= goal else "ABOVE"
            lines.append(
                f"{backend}: {name} /afdeling/<token> with {big.total:,} questions: median {med(b):.1f} ms, "
                f"p90 {_p90(b):.1f} ms: {verdict} (goal ≤ {goal:.0f} ms); {med(b) / med(a):.2f}× the "
                f"{small.total:,}"
            )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="2,000 and 20,000 questions (what CI runs)")
    p.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="small,big questions (default 10000,100000)"
    )
    p.add_argument("--due", type=int, default=100, help="questions due now (default 100)")
    p.add_argument("--repeat", type=int, default=5, help="sweeps of each kind per size; the median counts")
    p.add_argument(
        "--requests", type=int, default=30, help="GETs and POSTs of the page per size (default 30)"
    )
    add_backend_options(p)
    return p


async def _main(args: argparse.Namespace) -> int:
    sizes = QUICK_SIZES if args.quick else tuple(int(x) for x in args.sizes.split(","))
    if len(sizes) != 2 or args.due * 10 > sizes[0]:
        print("--sizes takes two sizes, and --due must stay well below the smaller", file=sys.stderr)
        return 2
    results: dict[str, list[World]] = {}
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                urls = [f"sqlite+aiosqlite:///{Path(tmp) / f'bench-{n}.db'}" for n in sizes]
                results[backend] = await run_backend(backend, urls, args, sizes)
        elif backend == "postgresql":
            async with (
                throwaway_postgres(args.postgres_url, "initiatiefbot_departments") as small,
                throwaway_postgres(args.postgres_url, "initiatiefbot_departments") as big,
            ):
                results[backend] = await run_backend(backend, [small, big], args, sizes)
        else:
            print(f"unknown backend {backend!r}", file=sys.stderr)
            return 2
    print()
    print(report(results, args.due))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_report(_main(_parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
