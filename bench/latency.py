"""Webhook latency: concurrent residents doing intakes through ``initiatiefbot webhook``, per step.

Run from the repository root: ``.venv/bin/python bench/latency.py`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import platform
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from aiohttp import web  # noqa: E402
from sqlalchemy import func, make_url, select  # noqa: E402
from telegram.ext import AIORateLimiter, ExtBot  # noqa: E402

from bench.common import prepare_database, run_report  # noqa: E402
from bot.app import file_url_for  # noqa: E402
from bot.settings import Settings, resolve_config_path  # noqa: E402
from bot.web import SECRET_HEADER, build_web_app, webhook_path  # noqa: E402
from storage import repository  # noqa: E402
from storage.db import create_engine  # noqa: E402
from tests.fake_bot_api import FakeBotApi, FakeUser, _buttons_of  # noqa: E402

GOAL_MS = 30.0
SECRET = "bench-latency-Secret_0123456789"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
FIRST_NAMES = ("Anna", "Bram", "Chantal", "Daan", "Emma", "Fatima", "Gerrit", "Hanna", "Ilse", "Jeroen")
# How long a resident waits for the bot's answer before the run counts as broken.
ANSWER_TIMEOUT = 60.0

# One intake, "/start" to "Indienen". (step, kind, value); "{name}" becomes the resident's first name.
# Needs "vrijwilligers" (not "geld"), so no amount question: 15 updates per resident.
INTAKE: tuple[tuple[str, str, str], ...] = (
    ("start", "text", "/start"),
    ("new", "button", "menu:new"),
    ("title", "text", "Bankjes in het park"),
    ("idea", "text", "Drie bankjes bij de speeltuin, zodat ouderen en ouders even kunnen rusten."),
    ("theme", "button", "intake:theme:groen"),
    ("wijk", "button", "intake:wijk:WK030101"),
    ("own", "text", "Wij verven de bankjes en houden ze schoon."),
    ("needs", "button", "intake:needs:vrijwilligers"),
    ("done", "button", "intake:needs:!done"),
    ("neighbours", "text", "ongeveer 12"),
    ("photo", "photo", ""),
    ("name", "text", "{name} de Vries"),
    ("contact", "button", "intake:contact:!skip"),
    ("consent", "button", "intake:consent:ja"),
    ("submit", "button", "intake:summary:indienen"),
)
STEPS = tuple(step for step, _, _ in INTAKE)

log = logging.getLogger("bench")


# --- residents ----------------------------------------------------------------------------------


def _bot_messages(fake: FakeBotApi, chat_id: int) -> list[Any]:
    chat = fake._chats.get(chat_id)
    if chat is None:
        return []
    return [m for m in chat.messages.values() if m.sender is None and not m.deleted]


def _answers_seen(fake: FakeBotApi, chat_id: int) -> int:
    """Bot messages plus edits in the chat: it grows with every answer the resident sees."""
    return sum(1 + len(m.history) for m in _bot_messages(fake, chat_id))


def _message_with_button(fake: FakeBotApi, chat_id: int, data: str) -> int | None:
    """The newest bot message in the chat whose current keyboard has a button with ``data``."""
    for message in reversed(_bot_messages(fake, chat_id)):
        if any(button_data == data for row in _buttons_of(message.inline_markup) for _, button_data in row):
            return int(message.message_id)
    return None


async def _wait(fake: FakeBotApi, condition: Callable[[], bool], what: str) -> None:
    await fake._changed.wait_until(condition, ANSWER_TIMEOUT, lambda: f"no {what} within {ANSWER_TIMEOUT}s")


@dataclass
class Timings:
    per_step: dict[str, list[float]] = field(default_factory=lambda: {step: [] for step in STEPS})
    statuses: dict[int, int] = field(default_factory=dict)

    def all(self) -> list[float]:
        return [t for values in self.per_step.values() for t in values]


async def resident(
    fake: FakeBotApi, user: FakeUser, session: aiohttp.ClientSession, url: str, timings: Timings
) -> None:
    """One resident doing the intake: each update is POSTed like Telegram does, then the resident
    waits for the bot's answer (a new message, or the button to press next) before the next step."""
    chat = user.chat_id
    for index, (step, kind, value) in enumerate(INTAKE):
        if kind == "button":
            await _wait(
                fake, lambda d=value: _message_with_button(fake, chat, d) is not None, f"button {value}"
            )
            message_id = _message_with_button(fake, chat, value)
            assert message_id is not None
            update = await user.press(message_id, value)
        elif kind == "photo":
            update = await user.send_photo(640, 480)
        else:
            update = await user.send_text(value.format(name=user.first_name))
        seen = _answers_seen(fake, chat)
        started = time.perf_counter()
        async with session.post(url, json=update, headers={SECRET_HEADER: SECRET}) as response:
            await response.read()
            status = response.status
        timings.per_step[step].append(time.perf_counter() - started)
        timings.statuses[status] = timings.statuses.get(status, 0) + 1
        if status != 200:
            raise AssertionError(f"{step}: webhook answered {status}")
        next_kind = INTAKE[index + 1][1] if index + 1 < len(INTAKE) else "end"
        if next_kind != "button":  # a button step waits for its button above
            await _wait(fake, lambda s=seen: _answers_seen(fake, chat) > s, f"answer to {step}")
    # The confirmation with the reference number ends the intake.
    await _wait(
        fake,
        lambda: any("INI-" in (m.text or "") for m in _bot_messages(fake, chat)),
        "confirmation of the submission",
    )


# --- one backend --------------------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    residents: int
    seconds: float
    timings: Timings
    checks: dict[str, Any]

    @property
    def updates(self) -> int:
        return len(self.timings.all())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_backend(backend: str, database_url: str, residents: int, warmup: int) -> Result:
    """Start the webhook app on 127.0.0.1 against a fresh fake Bot API; warm up, then run the residents."""
    async with FakeBotApi() as fake:
        settings = Settings(
            telegram_bot_token=fake.token,
            telegram_api_base_url=fake.base_url,
            database_url=database_url,
            config_path=resolve_config_path("zutphen"),
            telegram_webhook_secret=SECRET,
            flood_limit=1_000_000,  # the residents type faster than people; flood control is not measured
        )
        await prepare_database(database_url, settings.municipality)
        for staff in (900_001, 900_002, 900_003):
            # Staff have written to the bot once, so it may write to them (not delivered: not timed).
            await fake.user(staff, "Staff").send_text("/start")
        # Telegram's 30 messages/s would measure Telegram, not us: the bot sends without throttling.
        bot = ExtBot(
            fake.token,
            base_url=fake.base_url,
            base_file_url=file_url_for(fake.base_url),
            rate_limiter=AIORateLimiter(overall_max_rate=0, group_max_rate=0, max_retries=0),
        )
        runner = web.AppRunner(build_web_app(settings, bot=bot), access_log=None)
        await runner.setup()
        port = _free_port()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        url = f"http://127.0.0.1:{port}{webhook_path(SECRET)}"
        users = [
            fake.user(920_000_001 + i, FIRST_NAMES[i % len(FIRST_NAMES)], language_code="nl")
            for i in range(warmup + residents)
        ]
        timings = Timings()
        connector = aiohttp.TCPConnector(limit=residents + 10)
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                # Untimed: lazy imports, translation catalogues, the database pool and HTTP connections.
                await asyncio.gather(*(resident(fake, u, session, url, Timings()) for u in users[:warmup]))
                await asyncio.sleep(0.5)  # let the warm-up's sends finish
                users = users[warmup:]
                gc.collect()
                started = time.perf_counter()
                await asyncio.gather(*(resident(fake, u, session, url, timings) for u in users))
                seconds = time.perf_counter() - started
        finally:
            await runner.cleanup()
        calls = len(fake.calls())
        failed = [c for c in fake.calls() if not c.ok]
    checks = await _check_database(database_url, warmup + residents)
    checks["bot_api_calls"] = calls
    checks["bot_api_failed"] = len(failed)
    if failed:
        checks["ok"] = False
        checks.setdefault("errors", []).append(
            f"{len(failed)} Bot API calls failed, first: {failed[0].method} {failed[0].description}"
        )
    return Result(backend, residents, seconds, timings, checks)


async def _check_database(database_url: str, residents: int) -> dict[str, Any]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            initiatives = await conn.scalar(select(func.count()).select_from(repository.initiatives))
            processed = await conn.scalar(select(func.count()).select_from(repository.processed_updates))
            rows = await conn.execute(
                select(repository.outbox.c.status, func.count()).group_by(repository.outbox.c.status)
            )
            outbox = {str(status): int(n) for status, n in rows}
    finally:
        await engine.dispose()
    errors = []
    if initiatives != residents:
        errors.append(f"{initiatives} initiatives submitted, expected {residents}")
    if processed != residents * len(INTAKE):
        errors.append(f"{processed} updates claimed, expected {residents * len(INTAKE)}")
    if set(outbox) - {"sent"}:
        errors.append(f"outbox rows not sent: {outbox}")
    return {
        "initiatives": initiatives,
        "updates_claimed": processed,
        "outbox": outbox,
        "ok": not errors,
        "errors": errors,
    }


async def run_sqlite(residents: int, warmup: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="initiatiefbot-latency-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"
        return await run_backend("sqlite", url, residents, warmup)


async def run_postgresql(admin_url: str, residents: int, warmup: int) -> Result | str:
    """In a throwaway database on the server of ``admin_url``, dropped afterwards; a note when unreachable."""
    admin = make_url(admin_url)
    name = f"initiatiefbot_latency_{uuid.uuid4().hex[:12]}"
    connect = {
        "host": admin.host or "127.0.0.1",
        "port": admin.port or 5432,
        "user": admin.username,
        "password": admin.password,
        "database": admin.database or "postgres",
    }
    try:
        conn = await asyncio.wait_for(asyncpg.connect(**connect), 10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL skipped: {admin.render_as_string(hide_password=True)} unreachable ({exc})"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    try:
        return await run_backend("postgresql", url, residents, warmup)
    finally:
        conn = await asyncpg.connect(**connect)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


# --- the report ---------------------------------------------------------------------------------


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _row(label: str, values: Sequence[float]) -> str:
    ordered = sorted(values)
    ms = [_percentile(ordered, q) * 1000 for q in (0.50, 0.95, 0.99)]
    top = ordered[-1] * 1000
    return f"  {label:<11} {len(ordered):>7} {ms[0]:>7.1f} {ms[1]:>7.1f} {ms[2]:>7.1f} {top:>7.1f}"


def report(result: Result) -> list[str]:
    lines = [
        f"{result.backend}: {result.residents} residents, {result.updates} updates in {result.seconds:.2f} s "
        f"= {result.updates / result.seconds:.1f} updates/s",
        f"  {'step':<11} {'updates':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}",
    ]
    lines += [_row(step, result.timings.per_step[step]) for step in STEPS]
    lines.append(_row("all steps", result.timings.all()))
    c = result.checks
    lines.append(
        f"  checks: {c['initiatives']} initiatives submitted, {c['updates_claimed']} updates claimed, "
        f"outbox {c['outbox']}, {c['bot_api_calls']} Bot API calls ({c['bot_api_failed']} failed): "
        f"{'ok' if c['ok'] else 'FAILED'}"
    )
    lines += [f"  error: {e}" for e in c["errors"]]
    return lines


def verdict(result: Result) -> str:
    p99 = _percentile(sorted(result.timings.all()), 0.99) * 1000
    word = "PASS" if p99 <= GOAL_MS else "ABOVE"
    return f"{result.backend}: p99 over all steps {p99:.1f} ms: {word} (goal ≤ {GOAL_MS:.0f} ms on SQLite)"


def versions() -> str:
    found = [f"python {platform.python_version()}"]
    for dist in ("python-telegram-bot", "aiohttp", "SQLAlchemy", "aiosqlite", "asyncpg"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(f"{dist} ?")
    return ", ".join(found)


# --- main ---------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--residents", type=int, default=100, help="residents doing an intake at once (default 100)"
    )
    p.add_argument("--quick", action="store_true", help="25 residents: what CI runs")
    p.add_argument(
        "--warmup", type=int, default=3, help="residents doing one untimed intake first (default 3)"
    )
    p.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql or both (default)")
    p.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="a role that may create databases: a throwaway one is made, and dropped afterwards "
        f"(default {DEFAULT_POSTGRES_URL})",
    )
    return p


async def _main(args: argparse.Namespace) -> int:
    residents = 25 if args.quick else args.residents
    print(
        f"initiatiefbot webhook latency: {residents} residents at once, {len(INTAKE)} updates each, "
        f"after {args.warmup} warm-up intakes"
    )
    print(f"  {versions()}, {platform.machine()}")
    print()
    results: list[Result] = []
    notes: list[str] = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            results.append(await run_sqlite(residents, args.warmup))
        elif backend == "postgresql":
            outcome = await run_postgresql(args.postgres_url, residents, args.warmup)
            if isinstance(outcome, str):
                notes.append(outcome)
            else:
                results.append(outcome)
        else:
            print(f"unknown backend {backend!r}", file=sys.stderr)
            return 2
        if results and results[-1].backend == backend:
            print("\n".join(report(results[-1])))
            print()
    for note in notes:
        print(note)
    for result in results:
        print(verdict(result))
    return 0 if all(r.checks["ok"] for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.residents < 1 or args.warmup < 0:
        print("--residents must be at least 1, --warmup at least 0", file=sys.stderr)
        return 2
    return run_report(_main(args))


if __name__ == "__main__":
    sys.exit(main())
