"""The staff web's overview per wijk for a municipality with 100,000 initiatives over five years.

Seeds Deventer (config/deventer.toml) with initiatives that went through the lifecycle as real ones do
(timeline events, status spells, first contacts), in bulk, on SQLite (a temporary file) and on
PostgreSQL (a throwaway database); then asks the real aiohttp application for GET /dashboard, logged
in as a coordinator, several times: the default period (the last 12 months) and the whole five years.
Goal: ≤ 300 ms. Run from the repository root: ``.venv/bin/python bench/dashboard.py`` (bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bench.common import BENCH_CONTACT_KEYS, add_backend_options, throwaway_postgres  # noqa: E402
from bot.app import Runtime  # noqa: E402
from bot.settings import BUNDLED_CONFIG_DIR, Settings, load_municipality  # noqa: E402
from bot.web import charts, overview  # noqa: E402
from bot.web.standalone import build_site_app  # noqa: E402
from flows.municipality import Municipality  # noqa: E402
from flows.stalls import AMSTERDAM  # noqa: E402
from storage import people as people_store  # noqa: E402
from storage import staff as staff_store  # noqa: E402
from storage import tables  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.reports import CaseFilter, Scope  # noqa: E402

GOAL_MS = 300.0
GOAL_TOTAL = 100_000
QUICK_TOTAL = 10_000
YEARS = 5
CONFIG = BUNDLED_CONFIG_DIR / "deventer.toml"
# A Tuesday morning; the initiatives were submitted in the five years before.
AS_OF = datetime(2026, 11, 17, 10, 0, tzinfo=AMSTERDAM)
RESIDENTS = 10_000_000
COORDINATOR_USER = 9_000_000
BROKER_USERS = 9_000_100
ROWS_PER_INSERT = 5_000

log = logging.getLogger("bench")


# --- the data: each initiative walks the lifecycle -------------------------------------------------

# From each status: (next status, chance, shortest and longest stay in calendar days).
PATHS: dict[str, tuple[tuple[str, float, int, int], ...]] = {
    "ingediend": (("toegewezen", 0.97, 0, 3), ("gestopt", 0.03, 1, 10)),
    "toegewezen": (("in_gesprek", 0.95, 1, 12), ("gestopt", 0.05, 3, 20)),
    "in_gesprek": (
        ("plan_in_uitwerking", 0.55, 3, 20),
        ("bij_gemeente", 0.15, 3, 20),
        ("goedgekeurd", 0.05, 3, 15),
        ("afgewezen", 0.10, 3, 20),
        ("gestopt", 0.15, 5, 30),
    ),
    "plan_in_uitwerking": (
        ("bij_gemeente", 0.45, 5, 40),
        ("goedgekeurd", 0.40, 5, 40),
        ("gestopt", 0.15, 10, 60),
    ),
    "bij_gemeente": (
        ("goedgekeurd", 0.70, 5, 40),
        ("afgewezen", 0.15, 5, 40),
        ("plan_in_uitwerking", 0.15, 5, 30),
    ),
    "goedgekeurd": (("in_uitvoering", 0.95, 2, 15), ("gestopt", 0.05, 5, 30)),
    "in_uitvoering": (("gerealiseerd", 0.85, 10, 90), ("gestopt", 0.15, 10, 90)),
}
# Now and then a case lies still for a long time: those are the stalled ones.
STUCK_CHANCE = 0.04


@dataclass
class Rows:
    initiatives: list[dict[str, Any]]
    events: list[dict[str, Any]]
    spells: list[dict[str, Any]]


def _day(moment: datetime) -> date:
    return moment.astimezone(AMSTERDAM).date()


def _office_hours(moment: datetime, rng: random.Random) -> datetime:
    """The same day at a time between 8:00 and 18:00 Amsterdam time."""
    local = moment.astimezone(AMSTERDAM)
    return local.replace(hour=8 + rng.randrange(10), minute=rng.randrange(60), second=0, microsecond=0)


def _event(initiative_id: int, at: datetime, kind: str, status: str | None, **extra: Any) -> dict[str, Any]:
    row = {
        "initiative_id": initiative_id,
        "at": at.astimezone(UTC),
        "kind": kind,
        "status": status,
        "actor_user_id": None,
        "actor_role": "broker",
        "note": None,
        "department": None,
        "staff_id": None,
        "to_staff_id": None,
        "visible_to_resident": True,
    }
    row.update(extra)
    return row


def _next_step(status: str, roll: float) -> tuple[str, int, int]:
    acc = 0.0
    for target, chance, low, high in PATHS[status]:
        acc += chance
        if roll <= acc:
            return target, low, high
    target, _, low, high = PATHS[status][-1]
    return target, low, high


def initiative(
    n: int, total: int, m: Municipality, brokers: Sequence[int], rng: random.Random, start: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Initiative number ``n`` of ``total`` (id n + 1), submitted between ``start`` and AS_OF in order,
    with its timeline and its finished status spells, as the application would have written them."""
    id = n + 1
    span = (AS_OF - start).total_seconds()
    created = _office_hours(start + timedelta(seconds=span * n / total), rng)
    created = min(created, AS_OF - timedelta(hours=1))
    wijk = m.wijken[rng.randrange(len(m.wijken))].code if rng.random() > 0.03 else None
    broker = brokers[rng.randrange(len(brokers))]
    events = [_event(id, created, "status", "ingediend", actor_role="resident")]
    spells: list[dict[str, Any]] = []
    status, since, department = "ingediend", created, None
    first_contact: datetime | None = None
    assigned: datetime | None = None
    while status in PATHS:
        target, low, high = _next_step(status, rng.random())
        stay = rng.uniform(low, high) * (6 if rng.random() < STUCK_CHANCE else 1)
        when = _office_hours(since + timedelta(days=stay), rng)
        if when <= since:
            when = since + timedelta(minutes=30)
        if when >= AS_OF:
            break
        if status == "toegewezen" and first_contact is None and rng.random() < 0.3:
            # A message to the initiators before the first conversation: that is the first contact.
            message = since + (when - since) / 2
            first_contact = message
            events.append(_event(id, message, "message_to_resident", None, note="Hallo!"))
        spells.append(
            {
                "initiative_id": id,
                "status": status,
                "department": department,
                "started_at": since.astimezone(UTC),
                "ended_at": when.astimezone(UTC),
                "started_on": _day(since),
                "ended_on": _day(when),
                "submitted_on": _day(created),
            }
        )
        department = (
            m.departments[rng.randrange(len(m.departments))].code if target == "bij_gemeente" else None
        )
        if target == "toegewezen":
            assigned = when
            events.append(_event(id, when, "assigned", None, actor_role="system"))
        if target == "in_gesprek" and first_contact is None:
            first_contact = when
        events.append(_event(id, when, "status", target, department=department))
        status, since = target, when
    row = {
        "id": id,
        "municipality_code": m.code,
        "reference": f"{m.reference_prefix}-{created.year}-{id:06d}",
        "year": created.year,
        "seq": id,
        "resident_user_id": RESIDENTS + id,
        "resident_chat_id": RESIDENTS + id,
        "title": f"Initiatief {id}",
        "description": "Drie bankjes bij de speeltuin, zodat ouderen even kunnen rusten.",
        "theme_code": m.themes[rng.randrange(len(m.themes))].code,
        "wijk_code": wijk,
        "own_contribution": None,
        "needs": ["geld"],
        "amount_cents": 125_000,
        "neighbours": 12,
        "photo_file_id": None,
        "contact_name": "Anna",
        "contact_phone": None,
        "contact_email": None,
        "consent_at": created.astimezone(UTC),
        "language": "nl",
        "status": status,
        "status_changed_at": since.astimezone(UTC),
        "created_at": created.astimezone(UTC),
        "updated_at": since.astimezone(UTC),
        "broker_id": broker if assigned is not None else None,
        "assigned_at": assigned.astimezone(UTC) if assigned else None,
        "last_broker_action_at": since.astimezone(UTC) if assigned else None,
        "department": department,
        "next_alert_at": None,
        "publish_consent": None,
        "submitted_on": _day(created),
        "status_on": _day(since),
        "first_contact_at": first_contact.astimezone(UTC) if first_contact else None,
        "first_contact_on": _day(first_contact) if first_contact else None,
    }
    return row, events, spells


def batches(total: int, m: Municipality, brokers: Sequence[int]) -> Iterator[Rows]:
    rng = random.Random(2026)
    start = AS_OF - timedelta(days=365 * YEARS + 1)
    for first in range(0, total, ROWS_PER_INSERT):
        rows = Rows([], [], [])
        for n in range(first, min(first + ROWS_PER_INSERT, total)):
            row, events, spells = initiative(n, total, m, brokers, rng, start)
            rows.initiatives.append(row)
            rows.events.extend(events)
            rows.spells.extend(spells)
        yield rows


async def seed(engine: AsyncEngine, m: Municipality, total: int) -> dict[str, int]:
    """Staff, and ``total`` initiatives with their timelines and spells; returns the row counts."""
    sessions = session_factory(engine)
    brokers: list[int] = []
    async with sessions() as session, session.begin():
        people = [(COORDINATOR_USER, "Cor Dinator", "coordinator", [])]
        people += [
            (BROKER_USERS + k, f"Makelaar {k + 1}", "broker", [w.code]) for k, w in enumerate(m.wijken)
        ]
        for user, name, role, wijken in people:
            await people_store.upsert_person(
                session, user_id=user, chat_id=user, first_name=name, telegram_language="nl", now=AS_OF
            )
            row = await staff_store.add_staff(
                session, telegram_user_id=user, name=name, role=role, wijken=wijken, themes=[], now=AS_OF
            )
            if role == "broker":
                brokers.append(row.id)
    counts = {"initiatives": 0, "events": 0, "spells": 0}
    targets = (
        ("initiatives", tables.initiatives),
        ("events", tables.initiative_events),
        ("spells", tables.status_spells),
    )
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            for rows in batches(total, m, brokers):
                for name, table in targets:
                    chunk: list[dict[str, Any]] = getattr(rows, name)
                    columns = list(chunk[0]) if chunk else []
                    records = [
                        tuple(json.dumps(r[c]) if c == "needs" else r[c] for c in columns) for r in chunk
                    ]
                    if records:
                        await raw.copy_records_to_table(table.name, records=records, columns=columns)
                    counts[name] += len(records)
            await conn.commit()
            # What autovacuum does soon after a load: statistics, and the visibility map that lets
            # PostgreSQL answer from an index alone.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for _, table in targets:
                await conn.exec_driver_sql(f"VACUUM ANALYZE {table.name}")
            await conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('initiatives', 'id'),"
                " (SELECT max(id) FROM initiatives))"
            )
            await conn.commit()
    else:
        async with engine.begin() as conn:
            for rows in batches(total, m, brokers):
                for name, table in targets:
                    chunk = getattr(rows, name)
                    if chunk:
                        await conn.execute(table.insert(), chunk)
                    counts[name] += len(chunk)
    return counts


# --- the measurements ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    backend: str
    total: int
    case: str
    median_ms: float
    p90_ms: float
    figures_ms: float  # the same figures without HTTP and the template: the database and flows.reports
    cached_ms: float  # the page when its charts were drawn before (median)
    bytes: int


def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 9 // 10) - 1)]


async def _timed(run: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    return times


CASES = (
    ("default period (12 months)", "/dashboard", False),
    ("all 5 years", "/dashboard?period=all", True),
    ("one wijk, all 5 years", "/dashboard?period=all&wijk={wijk}", True),
)


async def measure(backend: str, url: str, total: int, repeat: int) -> list[Result]:
    engine = create_engine(url)
    m = load_municipality(CONFIG)
    try:
        await upgrade(engine)
        started = time.perf_counter()
        counts = await seed(engine, m, total)
        print(
            f"  {backend}: {counts['initiatives']:,} initiatives, {counts['events']:,} timeline events, "
            f"{counts['spells']:,} status spells seeded in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    finally:
        await engine.dispose()
    settings = Settings(database_url=url, config_path=CONFIG, data_encryption_keys=BENCH_CONTACT_KEYS)
    runtime = await Runtime.open(settings, clock=lambda: AS_OF.astimezone(UTC))
    results: list[Result] = []
    try:
        client = TestClient(TestServer(build_site_app(settings, runtime=runtime), host="127.0.0.1"))
        await client.start_server()
        try:
            async with runtime.sessions() as session, session.begin():
                coordinator = await staff_store.load_staff(session, COORDINATOR_USER)
                assert coordinator is not None
                link = await runtime.dispatcher.casework.login_url(session, coordinator.id, AS_OF)
            path = re.sub(r"^https?://[^/]+", "", link)
            await client.get(path)
            response = await client.post(path, allow_redirects=False)
            assert response.status == 303, await response.text()
            calendar = client.app[overview.CALENDAR]
            for name, target, whole in CASES:
                target = target.format(wijk=m.wijken[0].code)
                first = await client.get(target)  # the first one also writes the working-day calendar
                body = await first.text()
                assert first.status == 200, body[:2000]

                async def page(target: str = target, fresh: bool = True) -> None:
                    if fresh:  # the charts are drawn again, as after any change in the figures
                        charts.clear_cache()
                    response = await client.get(target)
                    await response.read()
                    assert response.status == 200

                times = await _timed(page, repeat)
                cached = await _timed(functools.partial(page, fresh=False), repeat)
                f = CaseFilter(wijk=m.wijken[0].code) if "wijk" in target else CaseFilter()

                async def figures(f: CaseFilter = f, whole: bool = whole) -> None:
                    await overview.figures(
                        runtime.sessions, m, Scope(), f, AS_OF, whole=whole, calendar=calendar
                    )

                inner = await _timed(figures, repeat)
                results.append(
                    Result(
                        backend,
                        total,
                        name,
                        statistics.median(times),
                        _p90(times),
                        statistics.median(inner),
                        statistics.median(cached),
                        len(body.encode()),
                    )
                )
        finally:
            await client.close()
    finally:
        await runtime.close()
    return results


async def _sqlite(total: int, repeat: int) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        return await measure("sqlite", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", total, repeat)


async def _postgresql(admin_url: str, total: int, repeat: int) -> list[Result]:
    async with throwaway_postgres(admin_url, "initiatiefbot_dashboard") as url:
        return await measure("postgresql", url, total, repeat)


# --- the report ----------------------------------------------------------------------------------


def report(results: Sequence[Result]) -> str:
    lines = [
        f"{'backend':<11} {'initiatives':>11}  {'page':<27} {'median ms':>9} {'p90 ms':>7} "
        f"{'figures ms':>10} {'charts cached ms':>16} {'html kB':>8}"
    ]
    for r in results:
        lines.append(
            f"{r.backend:<11} {r.total:>11,}  {r.case:<27} {r.median_ms:>9.1f} {r.p90_ms:>7.1f} "
            f"{r.figures_ms:>10.1f} {r.cached_ms:>16.1f} {r.bytes / 1000:>8.0f}"
        )
    lines.append("")
    for r in results:
        if r.total >= GOAL_TOTAL:
            verdict = "PASS" if r.p90_ms <= GOAL_MS else "ABOVE"
            lines.append(
                f"{r.backend}: overview of {r.total:,} initiatives, {r.case}: median {r.median_ms:.0f} ms, "
                f"p90 {r.p90_ms:.0f} ms: {verdict} (goal ≤ {GOAL_MS:.0f} ms)"
            )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help=f"{QUICK_TOTAL:,} initiatives (what CI runs)")
    p.add_argument("--total", type=int, default=GOAL_TOTAL, help=f"initiatives (default {GOAL_TOTAL:,})")
    p.add_argument("--repeat", type=int, default=9, help="timed requests per page (default 9)")
    add_backend_options(p)
    return p


async def _main(args: argparse.Namespace) -> int:
    total = QUICK_TOTAL if args.quick else args.total
    results: list[Result] = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            results.extend(await _sqlite(total, args.repeat))
        elif backend == "postgresql":
            results.extend(await _postgresql(args.postgres_url, total, args.repeat))
        else:
            print(f"unknown backend {backend!r}", file=sys.stderr)
            return 2
    print()
    print(report(results))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(_main(_parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
