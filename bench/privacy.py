"""The retention sweep at size: its cost follows what has come due, not the tables.

Seeds two databases per backend, a small and a big one (N and 10×N rows in each table the sweep reads:
initiatives, conversations with their people, outbox, mail outbox, processed updates, send gates), with
the same number of rows due of each kind, and times ``PrivacySweep.sweep`` on both side by side in one
run: with nothing due, as a dry run, and for real. Ratios near 1.0 mean the cost follows what is due.
Run from the repository root: ``.venv/bin/python bench/privacy.py`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import delete, update  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bench.common import add_backend_options, run_report, throwaway_postgres  # noqa: E402
from bot.i18n import Translator  # noqa: E402
from bot.privacy_sweep import PrivacyReport, PrivacySweep  # noqa: E402
from bot.settings import BUNDLED_CONFIG_DIR, load_municipality  # noqa: E402
from flows.resident import LANGUAGES  # noqa: E402
from flows.stalls import AMSTERDAM  # noqa: E402
from storage import retention as retention_store  # noqa: E402
from storage import tables  # noqa: E402
from storage.db import create_engine, session_factory  # noqa: E402
from storage.explain import explain  # noqa: E402
from storage.migrate import upgrade  # noqa: E402

GOAL_RATIO = 1.5
SIZES, QUICK_SIZES = (10_000, 100_000), (1_000, 10_000)
QUICK_DUE = 50
CONFIG = BUNDLED_CONFIG_DIR / "zutphen.toml"
# A Tuesday morning in Zutphen; with the default periods (24 months, 90 + 14 days, 30 days, 7 days, 1 day).
AS_OF = datetime(2027, 6, 1, 9, 0, tzinfo=AMSTERDAM)
# Long before anything seeded came due: the sweep finds nothing (its due queries alone).
IDLE_AS_OF = AS_OF - timedelta(days=200)
DAY = timedelta(days=1)
PEOPLE, RESIDENTS = 20_000_000, 30_000_000
ROWS_PER_INSERT = 5_000
# The kinds the report counts, and what each due row is seeded as.
KINDS = (
    "anonymised",
    "reminded",
    "drafts_deleted",
    "people_forgotten",
    "payloads_cleared",
    "mails_cleared",
    "updates_removed",
    "gates_removed",
)


# --- the data ------------------------------------------------------------------------------------


def _spread(total: int, due: int) -> set[int]:
    """Which row numbers are due: spread evenly over the table, as real ones would be."""
    step = total // due
    return {k * step for k in range(due)}


def _initiative(i: int, due: bool) -> dict[str, Any]:
    """Ended 25 months ago (due), ended in the last year (40%), or open."""
    if due:
        status, changed = ("gerealiseerd", "gestopt")[i % 2], AS_OF - timedelta(days=760)
    elif i % 10 < 4:
        status, changed = ("gerealiseerd", "gestopt")[i % 2], AS_OF - DAY * (1 + i % 360)
    else:
        status, changed = "in_gesprek", AS_OF - DAY * (1 + i % 60)
    changed = changed.astimezone(UTC)
    return {
        "id": i + 1,
        "municipality_code": "GM0301",
        "reference": f"INI-2025-{i + 1:07d}",
        "year": 2025,
        "seq": i + 1,
        "resident_user_id": RESIDENTS + i,
        "resident_chat_id": RESIDENTS + i,
        "title": f"Bankjes bij de speeltuin {i}",
        "description": "Drie bankjes bij de speeltuin, zodat ouderen even kunnen rusten.",
        "theme_code": "groen",
        "wijk_code": "WK030101",
        "own_contribution": "Wij verven ze.",
        "needs": ["geld"],
        "amount_cents": 125_000,
        "neighbours": 12,
        "photo_file_id": None,
        "contact_name": "Fatima",
        "contact_phone": None,
        "contact_email": None,
        "consent_at": changed,
        "language": "nl",
        "status": status,
        "status_changed_at": changed,
        "created_at": changed - 30 * DAY,
        "updated_at": changed,
    }


def _person(i: int, at: datetime) -> dict[str, Any]:
    return {
        "telegram_user_id": PEOPLE + i,
        "chat_id": PEOPLE + i,
        "first_name": "Fatima",
        "telegram_language": "nl",
        "language": None,
        "unreachable_at": None,
        "created_at": at,
        "last_seen_at": at,
    }


def _conversation(i: int, due: int | None) -> dict[str, Any]:
    """A draft untouched for 100 days (due: a reminder), one reminded 15 days ago (due: deleted, with
    the person), or a chat active in the last 80 days (half of them with a draft)."""
    reminded = None
    if due is None:
        at, draft = AS_OF - DAY * (i % 80), i % 2 == 0
    elif due % 2 == 0:
        at, draft = AS_OF - 100 * DAY, True
    else:
        at, draft, reminded = AS_OF - 110 * DAY, True, (AS_OF - 15 * DAY).astimezone(UTC)
    state = {"step": "idea", "answers": {"title": f"Bankjes {i}"}, "history": ["title"]} if draft else None
    return {
        "chat_id": PEOPLE + i,
        "user_id": PEOPLE + i,
        "flow": "intake" if draft else "home",
        "step": "idea" if draft else "",
        "data": {"draft": state, "pending": None},
        "history": ["title"] if draft else [],
        "updated_at": at.astimezone(UTC),
        "version": 3,
        "draft_reminded_at": reminded,
    }


def _sent(i: int, due: bool) -> tuple[datetime, datetime | None]:
    """(created_at, payload_cleared_at) of a sent message: 40 days old (due), older and cleared long
    ago (half of the rest: the table in its steady state), or from the last 25 days."""
    if due:
        return (AS_OF - 40 * DAY).astimezone(UTC), None
    if i % 2:
        old = (AS_OF - DAY * (60 + i % 300)).astimezone(UTC)
        return old, old + 30 * DAY
    return (AS_OF - DAY * (i % 25)).astimezone(UTC), None


def _outbox(i: int, due: bool) -> dict[str, Any]:
    created, cleared = _sent(i, due)
    return {
        "id": i + 1,
        "chat_id": PEOPLE + i,
        "method": "sendMessage",
        "payload": {} if cleared else {"chat_id": PEOPLE + i, "text": f"Hallo Fatima, dit is bericht {i}."},
        "status": "sent",
        "attempts": 1,
        "not_before": created,
        "created_at": created,
        "sent_at": created,
        "last_error": None,
        "telegram_message_id": i + 1,
        "payload_cleared_at": cleared,
        "forget_chat": False,
    }


def _mail(i: int, due: bool) -> dict[str, Any]:
    created, cleared = _sent(i, due)
    return {
        "id": i + 1,
        "message_id": f"<{i}@zutphen.example>",
        "to_address": "groen@zutphen.example",
        "to_name": "Groen",
        "subject": "" if cleared else f"Vraag over INI-2025-{i + 1:07d}",
        "body": "" if cleared else "Fatima wil drie bankjes bij de speeltuin.",
        "kind": "question",
        "initiative_id": None,
        "status": "sent",
        "attempts": 1,
        "not_before": created,
        "created_at": created,
        "sent_at": created,
        "last_error": None,
        "body_cleared_at": cleared,
    }


def _update(i: int, due: bool) -> dict[str, Any]:
    at = AS_OF - 8 * DAY if due else AS_OF - timedelta(minutes=i % (6 * 24 * 60))
    return {"update_id": i + 1, "processed_at": at.astimezone(UTC)}


def _gate(i: int, due: bool) -> dict[str, Any]:
    tat = (AS_OF - (2 * DAY if due else timedelta(minutes=i % 600))).timestamp()
    return {"key": f"chat:{PEOPLE + i}", "tat": tat, "holder": None, "held_until": None}


@dataclass
class Seed:
    """What one database holds: ``n`` rows per table, ``due`` of each kind due at AS_OF."""

    n: int
    due: int
    numbers: set[int] = field(default_factory=set)  # the due row numbers
    conversations: dict[int, int] = field(default_factory=dict)  # row number -> its due index

    def __post_init__(self) -> None:
        # Two kinds of due conversations (to remind, to delete): twice as many due rows there.
        self.numbers = _spread(self.n, self.due)
        self.conversations = {i: k for k, i in enumerate(sorted(_spread(self.n, 2 * self.due)))}

    def chunks(self, make: Callable[[int], dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        for start in range(0, self.n, ROWS_PER_INSERT):
            yield [make(i) for i in range(start, min(start + ROWS_PER_INSERT, self.n))]

    def person(self, i: int) -> dict[str, Any]:
        return _person(i, _conversation(i, self.conversations.get(i))["updated_at"])

    def rows(self) -> dict[Any, Callable[[int], dict[str, Any]]]:
        due = self.numbers
        return {
            tables.initiatives: lambda i: _initiative(i, i in due),
            tables.people: self.person,
            tables.conversations: lambda i: _conversation(i, self.conversations.get(i)),
            tables.outbox: lambda i: _outbox(i, i in due),
            tables.mail_outbox: lambda i: _mail(i, i in due),
            tables.processed_updates: lambda i: _update(i, i in due),
            tables.send_gates: lambda i: _gate(i, i in due),
        }


async def _fill(engine: AsyncEngine, seed: Seed) -> None:
    await upgrade(engine)
    for table, make in seed.rows().items():
        async with engine.begin() as conn:
            for chunk in seed.chunks(make):
                await conn.execute(table.insert(), chunk)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            for name in ("initiatives", "outbox", "mail_outbox"):  # ids were given: move the sequences on
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"
                )
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE")


async def _reset(engine: AsyncEngine, seed: Seed) -> None:
    """Put every due row back as seeded (untimed, before each real sweep); drop the queued reminders."""
    rows = seed.rows()
    due = sorted(seed.numbers)
    conversations = sorted(seed.conversations)
    async with engine.begin() as conn:
        await conn.execute(delete(tables.outbox).where(tables.outbox.c.status == "pending"))
        await conn.execute(delete(tables.audit_log))
        ids = [i + 1 for i in due]
        await conn.execute(delete(tables.initiatives).where(tables.initiatives.c.id.in_(ids)))
        await conn.execute(tables.initiatives.insert(), [rows[tables.initiatives](i) for i in due])
        chats = [PEOPLE + i for i in conversations]
        await conn.execute(delete(tables.conversations).where(tables.conversations.c.chat_id.in_(chats)))
        await conn.execute(delete(tables.people).where(tables.people.c.telegram_user_id.in_(chats)))
        await conn.execute(tables.people.insert(), [rows[tables.people](i) for i in conversations])
        await conn.execute(
            tables.conversations.insert(), [rows[tables.conversations](i) for i in conversations]
        )
        for table in (tables.outbox, tables.mail_outbox):
            for i in due:
                row = rows[table](i)
                await conn.execute(update(table).where(table.c.id == i + 1).values(row))
        await conn.execute(
            delete(tables.processed_updates).where(tables.processed_updates.c.update_id.in_(ids))
        )
        await conn.execute(
            tables.processed_updates.insert(), [rows[tables.processed_updates](i) for i in due]
        )
        keys = [f"chat:{PEOPLE + i}" for i in due]
        await conn.execute(delete(tables.send_gates).where(tables.send_gates.c.key.in_(keys)))
        await conn.execute(tables.send_gates.insert(), [rows[tables.send_gates](i) for i in due])


# --- the measurements ----------------------------------------------------------------------------


@dataclass
class World:
    """One seeded database and a sweep on it, with the times measured on it."""

    backend: str
    engine: AsyncEngine
    seed: Seed
    sweep: PrivacySweep
    idle: list[float] = field(default_factory=list)
    dry: list[float] = field(default_factory=list)
    real: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    passes: list[dict[str, float]] = field(default_factory=list)  # a real sweep's ms per table read
    report: PrivacyReport | None = None

    def pass_ms(self, *, anonymising: bool) -> float:
        """Median ms of the real sweep's pass over the initiatives (anonymising) or of all the others."""
        return statistics.median(
            sum(ms for table, ms in passes.items() if (table == "initiatives") == anonymising)
            for passes in self.passes
        )


def _expected(due: int) -> dict[str, int]:
    return {kind: due for kind in KINDS}


def _check(report: PrivacyReport, due: int) -> None:
    found = {kind: getattr(report, kind) for kind in KINDS}
    assert found == _expected(due), (found, due)
    assert report.conversations_deleted == 0 and report.invites_removed == 0, report


async def _timed(run: Callable[[], Awaitable[PrivacyReport]]) -> tuple[float, float, PrivacyReport]:
    started, cpu_started = time.perf_counter(), time.process_time()
    report = await run()
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu_started) * 1000, report


async def _round(worlds: Sequence[World]) -> None:
    """Each measurement on every world in turn, from the seeded state (put back untimed first)."""
    for world in worlds:
        await _reset(world.engine, world.seed)
    for world in worlds:
        ms, _, report = await _timed(lambda w=world: w.sweep.sweep(as_of=IDLE_AS_OF, dry_run=True))
        assert report.total == 0, report
        world.idle.append(ms)
    for world in worlds:
        ms, _, report = await _timed(lambda w=world: w.sweep.sweep(as_of=AS_OF, dry_run=True))
        _check(report, world.seed.due)
        world.dry.append(ms)
    for world in worlds:
        ms, cpu, report = await _timed(lambda w=world: w.sweep.sweep(as_of=AS_OF))
        _check(report, world.seed.due)
        assert report.queued == world.seed.due, report
        world.real.append(ms)
        world.cpu.append(cpu)
        world.passes.append(report.pass_ms)
        world.report = report


async def _plans(world: World) -> list[str]:
    """The due queries whose plan does not read their index (empty: all do)."""
    missing = []
    async with world.engine.connect() as conn:
        for name, index in retention_store.DUE_INDEXES.items():
            params: dict[str, Any] = {
                "cutoff": AS_OF.timestamp() if name == "idle_gates" else AS_OF,
                "limit": 500,
            }
            if name == "ended_initiatives":
                params["status"] = "gerealiseerd"
            plan = await explain(conn, retention_store.DUE_QUERIES[name].statement(lock=True), params)
            if index not in plan:
                missing.append(f"{name}: {plan}")
    return missing


async def _measure(
    backend: str, urls: Sequence[str], sizes: Sequence[int], args: argparse.Namespace
) -> list[World]:
    due, repeat = args.due, args.repeat
    m = load_municipality(CONFIG)
    translator = Translator(tuple(LANGUAGES))
    worlds = []
    for url, n in zip(urls, sizes, strict=True):
        engine = create_engine(url)
        seed = Seed(n, due)
        started = time.perf_counter()
        await _fill(engine, seed)
        print(
            f"  {backend}: {n:,} rows per table seeded in {time.perf_counter() - started:.1f} s", flush=True
        )
        sweep = PrivacySweep(session_factory(engine), m, translator, lambda: AS_OF)
        worlds.append(World(backend, engine, seed, sweep))
    missing = await _plans(worlds[-1])
    print(
        f"  {backend}: "
        + ("every due query reads its index" if not missing else "NO INDEX: " + "; ".join(missing))
    )
    for k in range(repeat):
        await _round(worlds if k % 2 == 0 else worlds[::-1])
    return worlds


async def _backend(backend: str, args: argparse.Namespace, sizes: Sequence[int]) -> list[World]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            urls = [f"sqlite+aiosqlite:///{Path(tmp) / f'bench-{n}.db'}" for n in sizes]
            worlds = await _measure(backend, urls, sizes, args)
            for world in worlds:
                await world.engine.dispose()
            return worlds
    async with (
        throwaway_postgres(args.postgres_url, "initiatiefbot_privacy") as small,
        throwaway_postgres(args.postgres_url, "initiatiefbot_privacy") as big,
    ):
        worlds = await _measure(backend, [small, big], sizes, args)
        for world in worlds:
            await world.engine.dispose()
        return worlds


# --- the report ----------------------------------------------------------------------------------


def _table(worlds: Sequence[World]) -> str:
    lines = [
        f"{'backend':<11} {'rows/table':>10} {'due/kind':>8} {'idle ms':>8} {'dry-run ms':>10} "
        f"{'sweep ms':>9} {'cpu ms':>7} {'anonymise':>9} {'the rest':>8} {'changed':>8}"
    ]
    for w in worlds:
        changed = w.report.total if w.report else 0
        lines.append(
            f"{w.backend:<11} {w.seed.n:>10,} {w.seed.due:>8,} {statistics.median(w.idle):>8.1f} "
            f"{statistics.median(w.dry):>10.1f} {statistics.median(w.real):>9.1f} "
            f"{statistics.median(w.cpu):>7.1f} {w.pass_ms(anonymising=True):>9.1f} "
            f"{w.pass_ms(anonymising=False):>8.1f} {changed:>8,}"
        )
    return "\n".join(lines)


def _verdict(small: World, big: World) -> list[str]:
    times = big.seed.n // small.seed.n
    out = []
    due = f"the same {small.seed.due} due of each kind"
    for what, a, b in (
        ("nothing due: idle sweep", statistics.median(small.idle), statistics.median(big.idle)),
        (f"{due}: dry run", statistics.median(small.dry), statistics.median(big.dry)),
        (f"{due}: sweep", statistics.median(small.real), statistics.median(big.real)),
        (
            f"{due}: sweep but the anonymising",
            small.pass_ms(anonymising=False),
            big.pass_ms(anonymising=False),
        ),
        (
            f"{due}: anonymising (storage.erasure)",
            small.pass_ms(anonymising=True),
            big.pass_ms(anonymising=True),
        ),
    ):
        ratio = b / a
        ok = "PASS" if ratio <= GOAL_RATIO else "ABOVE"
        out.append(
            f"{small.backend}: {times}× the rows, {what} {ratio:.2f}× the time: {ok} (goal ≤ {GOAL_RATIO})"
        )
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--quick", action="store_true", help="1,000 and 10,000 rows per table, 50 due (what CI runs)"
    )
    p.add_argument("--sizes", default=",".join(map(str, SIZES)), help="small,big rows per table")
    p.add_argument("--due", type=int, default=None, help="due rows of each kind (default 100, --quick 50)")
    p.add_argument("--repeat", type=int, default=5, help="rounds; the medians count (default 5, --quick 3)")
    add_backend_options(p)
    return p


async def _main(args: argparse.Namespace) -> int:
    sizes = QUICK_SIZES if args.quick else tuple(int(x) for x in args.sizes.split(","))
    if args.quick and args.repeat == 5:
        args.repeat = 3
    if args.due is None:
        args.due = QUICK_DUE if args.quick else 100
    if len(sizes) != 2 or args.due * 20 > sizes[0]:
        print("--sizes takes two sizes, and --due must stay well below the smaller (≤ 1/20)", file=sys.stderr)
        return 2
    results: list[World] = []
    for backend in args.backends.split(","):
        if backend not in ("sqlite", "postgresql"):
            print(f"unknown backend {backend!r}", file=sys.stderr)
            return 2
        results.extend(await _backend(backend, args, sizes))
    print()
    print(_table(results))
    print()
    for backend in dict.fromkeys(w.backend for w in results):
        small, big = (w for w in results if w.backend == backend)
        for line in _verdict(small, big):
            print(line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_report(_main(_parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
