"""Resident set size of the bot with many half-finished conversations, on a SQLite file.

Run from the repository root: ``.venv/bin/python bench/memory.py`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import logging
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench.common import BENCH_CONTACT_KEYS, run_report  # noqa: E402
from bot.app import Runtime  # noqa: E402
from bot.settings import Settings, resolve_config_path  # noqa: E402
from flows.events import Event, EventKind  # noqa: E402
from storage import tables  # noqa: E402

GOAL_MB = 120.0
FIRST_NAMES = ("Anna", "Bram", "Chantal", "Daan", "Emma", "Fatima", "Gerrit", "Hanna", "Ilse", "Jeroen")

# The first half of the intake: /start → "Nieuw initiatief" → idea → title → theme → wijk → own part.
# The conversation then waits at "How many neighbours?" (7 of the 14 updates of a whole intake).
HALF_INTAKE: tuple[tuple[EventKind, str], ...] = (
    (EventKind.COMMAND, "start"),
    (EventKind.BUTTON, "menu:new"),
    (EventKind.TEXT, "Drie bankjes bij de speeltuin, zodat ouderen en ouders even kunnen rusten."),
    (EventKind.TEXT, "Bankjes in het park"),
    (EventKind.BUTTON, "intake:theme:groen"),
    (EventKind.BUTTON, "intake:wijk:WK030101"),
    (EventKind.TEXT, "Wij verven de bankjes en houden ze schoon."),
)

log = logging.getLogger("bench")


def proc_status() -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of this process, in MB, from /proc/self/status."""
    found: dict[str, float] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024  # kB → MB
    return found


class StubTransport:
    """Accepts every outbox call at once, with a fresh message id per chat, and counts them."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._ids: dict[int, itertools.count[int]] = {}

    async def deliver(self, method: str, payload: dict[str, Any]) -> int | None:
        self.calls[method] += 1
        if method == "answerCallbackQuery":
            return None
        chat_id = int(payload["chat_id"])
        if method.startswith("edit"):
            return int(payload["message_id"])
        return next(self._ids.setdefault(chat_id, itertools.count(1)))


def event_for(user_id: int, first_name: str, kind: EventKind, value: str, message_id: int) -> Event:
    common: dict[str, Any] = {
        "user_id": user_id,
        "chat_id": user_id,
        "language_code": "nl",
        "first_name": first_name,
    }
    if kind is EventKind.COMMAND:
        return Event(kind, command=value, message_id=message_id, **common)
    if kind is EventKind.BUTTON:
        return Event(
            kind, button=value, message_id=message_id, callback_query_id=f"q{user_id}-{message_id}", **common
        )
    return Event(kind, text=value, message_id=message_id, **common)


async def drive(
    runtime: Runtime, residents: int, *, steps: int, discard: bool, concurrency: int
) -> tuple[int, int, StubTransport]:
    """Each resident through half an intake, ``concurrency`` residents at a time.

    Returns (updates, outbox rows, transport)."""
    transport = StubTransport()
    outbox = runtime.outbox(transport)
    update_ids = itertools.count(700_000_001)
    counts = Counter[str]()
    dispatcher = runtime.dispatcher
    next_resident = iter(range(residents))

    async def worker() -> None:
        for i in next_resident:  # shared iterator: each worker takes the next resident
            user_id = 930_000_001 + i
            name = FIRST_NAMES[i % len(FIRST_NAMES)]
            for step, (kind, value) in enumerate(HALF_INTAKE[:steps], start=1):
                event = event_for(user_id, name, kind, value, step)
                handled = await dispatcher.handle(event, next(update_ids))
                counts["updates"] += 1
                counts["rows"] += len(handled.outbox)
                if handled.outbox and not discard:
                    await outbox.send(handled.outbox)
            counts["residents"] += 1
            if counts["residents"] % 2000 == 0:
                log.warning("%d residents done", counts["residents"])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts["updates"], counts["rows"], transport


def database_files(folder: Path) -> tuple[int, str]:
    files = sorted(folder.iterdir())
    detail = ", ".join(f"{f.name} {f.stat().st_size / 2**20:.1f} MB" for f in files)
    return sum(f.stat().st_size for f in files), detail


async def _main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="initiatiefbot-memory-") as tmp:
        path = Path(tmp) / "bench.sqlite3"
        settings = Settings(
            telegram_bot_token="7000000001:AAbenchmark-token-not-real-0000000000",
            database_url=f"sqlite+aiosqlite:///{path}",
            config_path=resolve_config_path("zutphen"),
            data_encryption_keys=BENCH_CONTACT_KEYS,
            flood_limit=1_000_000,
            telegram_max_per_second=0,  # the stub transport has no limits; Telegram's pace is not measured
            telegram_chat_max_per_second=0,
        )
        started = time.perf_counter()
        runtime = await Runtime.open(settings)  # migrates the fresh file, as the embedded default does
        try:
            gc.collect()
            before = proc_status()
            driving = time.perf_counter()
            updates, rows, transport = await drive(
                runtime, args.residents, steps=args.steps, discard=args.discard, concurrency=args.concurrency
            )
            drove = time.perf_counter() - driving
            gc.collect()
            after = proc_status()
            async with runtime.engine.connect() as conn:
                conversations = await conn.scalar(select(func.count()).select_from(tables.conversations))
                initiatives = await conn.scalar(select(func.count()).select_from(tables.initiatives))
                claimed = await conn.scalar(select(func.count()).select_from(tables.processed_updates))
                outbox_rows = await conn.execute(
                    select(tables.outbox.c.status, func.count()).group_by(tables.outbox.c.status)
                )
                outbox = {str(status): int(n) for status, n in outbox_rows}
        finally:
            await runtime.close()
        total = time.perf_counter() - started
        db_bytes, db_detail = database_files(Path(tmp))

    growth = after["VmRSS"] - before["VmRSS"]
    print(
        f"initiatiefbot memory: {args.residents:,} residents each through half an intake "
        f"({args.steps} updates), SQLite file, dispatcher directly, {args.concurrency} at a time"
    )
    versions = [f"python {platform.python_version()}"]
    for dist in ("SQLAlchemy", "aiosqlite"):
        versions.append(f"{dist} {metadata.version(dist)}")
    print("  " + ", ".join(versions) + f", {platform.machine()}")
    print()
    print(f"{'':<28} {'RSS MB':>8} {'peak MB':>8}")
    print(f"{'before (runtime open)':<28} {before['VmRSS']:>8.1f} {before['VmHWM']:>8.1f}")
    label = f"after {args.residents:,} conversations"
    print(f"{label:<28} {after['VmRSS']:>8.1f} {after['VmHWM']:>8.1f}")
    print(f"{'growth':<28} {growth:>8.1f}")
    print(f"  per conversation: {growth * 1024 / max(args.residents, 1):.2f} kB")
    print()
    sent = "discarded (left pending)" if args.discard else "sent to a stub transport"
    print(f"updates: {updates:,} in {drove:.1f} s ({updates / drove:.0f}/s); whole run {total:.1f} s")
    print(f"outbox rows: {rows:,}, {sent}: {dict(outbox)}")
    print(f"  stub calls: {', '.join(f'{m}={n}' for m, n in sorted(transport.calls.items())) or 'none'}")
    print(f"database: {db_bytes / 2**20:.1f} MB ({db_detail})")
    print(
        f"conversations stored: {conversations:,}, initiatives: {initiatives}, updates claimed: {claimed:,}"
    )
    print()
    peak = max(after["VmRSS"], after["VmHWM"])
    word = "PASS" if peak <= GOAL_MB else "ABOVE"
    print(
        f"RSS after {args.residents:,} half-finished conversations: {after['VmRSS']:.1f} MB "
        f"(peak {after['VmHWM']:.1f} MB): {word} (goal ≤ {GOAL_MB:.0f} MB)"
    )
    errors = []
    if claimed != updates:
        errors.append(f"{claimed} updates claimed, expected {updates}")
    if conversations is None or conversations < args.residents:
        errors.append(f"{conversations} conversations stored, expected at least {args.residents}")
    if initiatives:
        errors.append(f"{initiatives} initiatives submitted: half an intake should submit nothing")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--steps",
        type=int,
        default=len(HALF_INTAKE),
        help=f"updates per resident, 1 to {len(HALF_INTAKE)} "
        f"(default {len(HALF_INTAKE)}: the conversation waits at 'What do you need?')",
    )
    p.add_argument("--concurrency", type=int, default=1, help="residents handled at once (default 1)")
    p.add_argument(
        "--residents", type=int, default=10_000, help="half-finished conversations (default 10,000)"
    )
    p.add_argument(
        "--discard", action="store_true", help="leave the outbox rows pending instead of sending them"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.residents < 1 or args.concurrency < 1 or not 1 <= args.steps <= len(HALF_INTAKE):
        print(
            f"--residents and --concurrency must be at least 1, --steps 1 to {len(HALF_INTAKE)}",
            file=sys.stderr,
        )
        return 2
    return run_report(_main(args))


if __name__ == "__main__":
    sys.exit(main())
