"""Webhook latency: concurrent residents doing intakes through ``initiatiefbot webhook``, per step.

The bot runs as its own ``python -m bot webhook`` process (``--in-process``: in this event loop) against
the fake Bot API of the tests; residents think between steps (``--think``).

Run from the repository root: ``.venv/bin/python bench/latency.py`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import platform
import random
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
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
from sqlalchemy import make_url  # noqa: E402

from bench.common import (  # noqa: E402
    BENCH_CONTACT_KEYS,
    add_backend_options,
    database_counts,
    prepare_database,
    run_report,
    throwaway_postgres,
)
from bot.settings import Settings, resolve_config_path  # noqa: E402
from bot.web import SECRET_HEADER, build_web_app, webhook_path  # noqa: E402
from tests.fake_bot_api import FakeBotApi, FakeUser, _buttons_of  # noqa: E402

# p99 of POST → 200 over all steps, and of the submission ("Indienen") alone; on SQLite and on PostgreSQL.
GOAL_MS = 30.0
GOAL_SUBMIT_MS = 60.0
SUBMIT_STEP = "submit"
DEFAULT_REPEAT = 3
SECRET = "bench-latency-Secret_0123456789"
FIRST_NAMES = ("Anna", "Bram", "Chantal", "Daan", "Emma", "Fatima", "Gerrit", "Hanna", "Ilse", "Jeroen")
# How long a resident waits for the bot's answer before the run counts as broken.
ANSWER_TIMEOUT = 60.0
# A person reads the question and types or taps for about this long (seconds) before each update.
DEFAULT_THINK = 2.0
QUICK_THINK = 0.5
QUICK_RESIDENTS = 25
# The bot process: how long it may take to answer /readyz, and to stop after SIGTERM.
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# Settings the bot reads from its environment that the benchmark leaves at their defaults, whatever the
# calling shell has set.
UNSET_ENV = ("TELEGRAM_BOT_USERNAME", "OUTBOX_LEASE_SECONDS", "SEND_COORDINATION")
# How often the benchmark's own event loop is probed for lag (seconds).
LAG_INTERVAL = 0.01

# One intake, "/start" to "Indienen". (step, kind, value); "{name}" becomes the resident's first name.
# Needs "vrijwilligers" (not "geld"), so no amount question; the title typed instead of the suggested
# one, so the theme is asked: 14 updates per resident.
INTAKE: tuple[tuple[str, str, str], ...] = (
    ("start", "text", "/start"),
    ("new", "button", "menu:new"),
    ("idea", "text", "Drie bankjes bij de speeltuin, zodat ouderen en ouders even kunnen rusten."),
    ("title", "text", "Bankjes in het park"),
    ("theme", "button", "intake:theme:groen"),
    ("wijk", "button", "intake:wijk:WK030101"),
    ("own", "text", "Wij verven de bankjes en houden ze schoon."),
    ("neighbours", "text", "ongeveer 12"),
    ("needs", "button", "intake:needs:vrijwilligers"),
    ("done", "button", "intake:needs:!done"),
    ("photo", "photo", ""),
    ("contact", "button", "intake:contact:!skip"),
    ("name", "text", "{name} de Vries"),
    ("submit", "button", "intake:confirm:indienen"),
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


@dataclass(frozen=True)
class Thinking:
    """Before each update a resident pauses ``seconds`` × uniform(0.5, 1.5): reading, typing, tapping."""

    seconds: float
    seed: int

    def pauses(self, resident_number: int) -> Callable[[], float]:
        """The pauses of one resident: the same for the same seed and number, whatever the scheduling."""
        rng = random.Random(self.seed * 1_000_003 + resident_number)
        return lambda: rng.uniform(0.5 * self.seconds, 1.5 * self.seconds)


NO_THINKING = Thinking(0.0, 0)


async def resident(
    fake: FakeBotApi,
    user: FakeUser,
    session: aiohttp.ClientSession,
    url: str,
    timings: Timings,
    pause: Callable[[], float],
) -> None:
    """One resident doing the intake: each update is POSTed like Telegram does, then the resident
    waits for the bot's answer (a new message, or the button to press next), thinks, and sends the next."""
    chat = user.chat_id
    for index, (step, kind, value) in enumerate(INTAKE):
        if kind == "button":
            await _wait(
                fake, lambda d=value: _message_with_button(fake, chat, d) is not None, f"button {value}"
            )
        if (seconds := pause()) > 0:
            await asyncio.sleep(seconds)  # reading the question, typing or tapping: not timed
        if kind == "button":
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


# --- the bot under test -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotFailed(RuntimeError):
    """The ``initiatiefbot webhook`` process did not start, stop or run cleanly; the message has its log."""


@dataclass
class BotUnderTest:
    """Where the webhook listens, and what the bot's own process reports (None: in-process)."""

    base_url: str
    pid: int | None = None
    log_path: Path | None = None
    errors_logged: int = 0
    exit_code: int | None = None

    @property
    def webhook_url(self) -> str:
        return self.base_url + webhook_path(SECRET)

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time (user + system) of the bot process so far: its main thread (the event loop) and its
        other threads (aiosqlite runs SQLite in one thread per connection). In-process: this process."""
        return _thread_cpu(os.getpid() if self.pid is None else self.pid)


def _thread_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of the process's main thread and of all its other threads, live or ended (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")

    def ticks(stat: Path, first: int) -> int:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return sum(int(f) for f in fields[first : first + 2])

    try:
        # The process's utime + stime (fields 14-15) include its ended threads; the main thread's own
        # are in /proc/<pid>/task/<pid>/stat.
        total = ticks(Path(f"/proc/{pid}/stat"), 11)
        main = ticks(Path(f"/proc/{pid}/task/{pid}/stat"), 11)
    except (OSError, ValueError, IndexError):
        return float("nan"), float("nan")
    return main / tick, (total - main) / tick


def _log_text(path: Path, lines: int = 200) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    cut = [f"… {len(text) - lines} earlier lines left out"] if len(text) > lines else []
    return "\n".join(cut + text[-lines:]) or "(the log is empty)"


def _errors_in_log(path: Path) -> int:
    """Records at ERROR or CRITICAL in the bot's JSON-lines log, and tracebacks printed outside it."""
    count = 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            count += line.startswith("Traceback")
            continue
        count += isinstance(record, dict) and record.get("level") in ("ERROR", "CRITICAL")
    return count


def bot_environment(fake: FakeBotApi, database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    env.update(
        {
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE_URL": fake.base_url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "DATABASE_URL": database_url,
            "INITIATIEFBOT_CONFIG": "zutphen",
            "PORT": str(port),
            "WEBHOOK_HOST": "127.0.0.1",
            # The residents type faster than people; flood control is not what is measured.
            "FLOOD_LIMIT": "1000000",
            "LOG_LEVEL": "WARNING",
            # Telegram's 30 messages/s (and 1 per chat) would measure Telegram, not the bot: 0 = no limit.
            "TELEGRAM_MAX_PER_SECOND": "0",
            "TELEGRAM_CHAT_MAX_PER_SECOND": "0",
        }
    )
    return env


async def _wait_ready(base_url: str, alive: Callable[[], bool], why_not: Callable[[str], BotFailed]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while True:
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(base_url + "/readyz") as response:
                    if response.status == 200:
                        return
            if not alive():
                raise why_not("stopped before it was ready")
            if time.monotonic() > deadline:
                raise why_not(f"not ready within {READY_TIMEOUT:.0f} s")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def bot_process(fake: FakeBotApi, database_url: str, logs: Path) -> AsyncIterator[BotUnderTest]:
    """``python -m bot webhook`` (what ``initiatiefbot webhook`` runs), started from the repository root;
    yields once its /readyz answers 200, then stops it with SIGTERM (killed after 20 s)."""
    port = _free_port()
    log_path = logs / "webhook.log"
    with log_path.open("wb") as out:  # a file, not a pipe: a full pipe would block the bot
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "webhook",
            cwd=REPO_ROOT,
            env=bot_environment(fake, database_url, port),
            stdout=out,
            stderr=out,
        )
    bot = BotUnderTest(f"http://127.0.0.1:{port}", pid=process.pid, log_path=log_path)

    def failed(what: str) -> BotFailed:
        return BotFailed(f"initiatiefbot webhook {what}; its log:\n{_log_text(log_path)}")

    try:
        await _wait_ready(bot.base_url, lambda: process.returncode is None, failed)
        try:
            yield bot
        except BaseException:
            # The run broke (say, an answer never came): the bot's side of the story.
            print(f"initiatiefbot webhook's log:\n{_log_text(log_path)}", file=sys.stderr)
            raise
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise failed(f"did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM (killed)") from None
    bot.exit_code = process.returncode
    bot.errors_logged = _errors_in_log(log_path)
    if bot.exit_code != 0:
        raise failed(f"exited with {bot.exit_code}")
    if bot.errors_logged:
        print(f"initiatiefbot webhook logged {bot.errors_logged} errors; its log:\n{_log_text(log_path)}")


@contextlib.asynccontextmanager
async def bot_in_process(fake: FakeBotApi, database_url: str) -> AsyncIterator[BotUnderTest]:
    """The webhook app on an aiohttp runner in this process and event loop, with the fake and residents."""
    settings = Settings(
        telegram_bot_token=fake.token,
        telegram_api_base_url=fake.base_url,
        database_url=database_url,
        config_path=resolve_config_path("zutphen"),
        telegram_webhook_secret=SECRET,
        data_encryption_keys=BENCH_CONTACT_KEYS,
        flood_limit=1_000_000,
        telegram_max_per_second=0,
        telegram_chat_max_per_second=0,
    )
    # No bot given: the app makes its own (``bot.app.telegram_bot``), as the webhook process does.
    runner = web.AppRunner(build_web_app(settings), access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield BotUnderTest(f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


class LoopLag:
    """How late this process's event loop wakes a task that sleeps ``LAG_INTERVAL``: time the residents'
    answers waited, after arriving, before the loop took them (and then the clock was read)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _probe(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_INTERVAL)
            self.samples.append(max(0.0, time.perf_counter() - before - LAG_INTERVAL))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._probe(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# --- one backend --------------------------------------------------------------------------------


@dataclass
class Options:
    residents: int
    warmup: int
    thinking: Thinking
    in_process: bool


@dataclass
class Result:
    backend: str
    residents: int
    seconds: float
    timings: Timings
    checks: dict[str, Any]
    # CPU seconds in the timed run: the bot process's main thread and its other threads (in-process:
    # this process's), and the benchmark process as a whole.
    bot_cpu: tuple[float, float]
    bench_cpu: float
    loop_lag: list[float]
    in_process: bool

    @property
    def updates(self) -> int:
        return len(self.timings.all())


async def run_backend(backend: str, database_url: str, options: Options) -> Result:
    """Start the webhook against a fresh fake Bot API; warm up, then run the residents."""
    settings = Settings(
        database_url=database_url,
        config_path=resolve_config_path("zutphen"),
        data_encryption_keys=BENCH_CONTACT_KEYS,
    )
    await prepare_database(database_url, settings.municipality)
    bot: BotUnderTest | None = None
    with tempfile.TemporaryDirectory(prefix="initiatiefbot-latency-log-") as logs:
        async with FakeBotApi() as fake:
            for staff in (900_001, 900_002, 900_003):
                # Staff have written to the bot once, so it may write to them (not delivered: not timed).
                await fake.user(staff, "Staff").send_text("/start")
            users = [
                fake.user(920_000_001 + i, FIRST_NAMES[i % len(FIRST_NAMES)], language_code="nl")
                for i in range(options.warmup + options.residents)
            ]
            timings = Timings()
            lag = LoopLag()
            serving = (
                bot_in_process(fake, database_url)
                if options.in_process
                else bot_process(fake, database_url, Path(logs))
            )
            async with serving as bot:
                url = bot.webhook_url
                connector = aiohttp.TCPConnector(limit=options.residents + 10)
                async with aiohttp.ClientSession(connector=connector) as session:
                    # Untimed, without thinking: lazy imports, translation catalogues, the database
                    # pool and HTTP connections.
                    warm = NO_THINKING.pauses(0)
                    await asyncio.gather(
                        *(resident(fake, u, session, url, Timings(), warm) for u in users[: options.warmup])
                    )
                    await asyncio.sleep(0.5)  # let the warm-up's sends finish
                    timed = users[options.warmup :]
                    gc.collect()
                    cpu_before, bench_cpu = bot.cpu_seconds(), time.process_time()
                    lag.start()
                    started = time.perf_counter()
                    await asyncio.gather(
                        *(
                            resident(fake, u, session, url, timings, options.thinking.pauses(n))
                            for n, u in enumerate(timed)
                        )
                    )
                    seconds = time.perf_counter() - started
                    await lag.stop()
                    cpu_after, bench_cpu = bot.cpu_seconds(), time.process_time() - bench_cpu
                    bot_cpu = (cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1])
            calls = len(fake.calls())
            failed = [c for c in fake.calls() if not c.ok]
    checks = await _check_database(database_url, options.warmup + options.residents)
    checks["bot_api_calls"] = calls
    checks["bot_api_failed"] = len(failed)
    if failed:
        checks["ok"] = False
        checks["errors"].append(
            f"{len(failed)} Bot API calls failed, first: {failed[0].method} {failed[0].description}"
        )
    if bot is not None and bot.errors_logged:
        checks["ok"] = False
        checks["errors"].append(f"the webhook process logged {bot.errors_logged} errors (its log is above)")
    return Result(
        backend,
        options.residents,
        seconds,
        timings,
        checks,
        bot_cpu=bot_cpu,
        bench_cpu=bench_cpu,
        loop_lag=lag.samples,
        in_process=options.in_process,
    )


async def _check_database(database_url: str, residents: int) -> dict[str, Any]:
    counts = await database_counts(database_url)
    initiatives, processed, outbox = counts.initiatives, counts.updates_claimed, counts.outbox
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


async def run_sqlite(options: Options) -> Result:
    with tempfile.TemporaryDirectory(prefix="initiatiefbot-latency-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"
        return await run_backend("sqlite", url, options)


async def run_postgresql(admin_url: str, options: Options) -> Result | str:
    """In a throwaway database on the server of ``admin_url``, dropped afterwards; a note when unreachable."""
    reached = False
    try:
        async with throwaway_postgres(admin_url, "initiatiefbot_latency") as url:
            reached = True
            return await run_backend("postgresql", url, options)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        if reached:  # the server was there: a failure of the run itself
            raise
        shown = make_url(admin_url).render_as_string(hide_password=True)
        return f"PostgreSQL skipped: {shown} unreachable ({exc})"


# --- the report ---------------------------------------------------------------------------------


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _row(label: str, values: Sequence[float]) -> str:
    ordered = sorted(values)
    ms = [_percentile(ordered, q) * 1000 for q in (0.50, 0.95, 0.99)]
    top = ordered[-1] * 1000 if ordered else 0.0
    return f"  {label:<11} {len(ordered):>7} {ms[0]:>7.1f} {ms[1]:>7.1f} {ms[2]:>7.1f} {top:>7.1f}"


def _share(cpu: float, seconds: float) -> str:
    return f"{cpu:.1f} s ({cpu / seconds:.0%} of one core)" if seconds > 0 else f"{cpu:.1f} s"


def report(result: Result) -> list[str]:
    lines = [
        f"{result.backend}: {result.residents} residents, {result.updates} updates in {result.seconds:.2f} s "
        f"= {result.updates / result.seconds:.1f} updates/s offered",
        f"  {'step':<11} {'updates':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}",
    ]
    lines += [_row(step, result.timings.per_step[step]) for step in STEPS]
    lines.append(_row("all steps", result.timings.all()))
    lag = sorted(result.loop_lag)
    main, threads = result.bot_cpu
    split = f"event loop {main:.1f} s + other threads {threads:.1f} s"
    if result.in_process:
        total = _share(main + threads, result.seconds)
        cpu = f"this process (bot, fake Bot API and residents) {total}: {split}"
    else:
        cpu = (
            f"bot process {_share(main + threads, result.seconds)}: {split}; "
            f"benchmark process {_share(result.bench_cpu, result.seconds)}"
        )
    lines.append(f"  CPU in the timed run: {cpu}")
    lines.append(
        f"  benchmark event loop lag: p50 {_percentile(lag, 0.5) * 1000:.1f} ms, "
        f"p99 {_percentile(lag, 0.99) * 1000:.1f} ms, max {(lag[-1] if lag else 0) * 1000:.1f} ms"
    )
    c = result.checks
    lines.append(
        f"  checks: {c['initiatives']} initiatives submitted, {c['updates_claimed']} updates claimed, "
        f"outbox {c['outbox']}, {c['bot_api_calls']} Bot API calls ({c['bot_api_failed']} failed): "
        f"{'ok' if c['ok'] else 'FAILED'}"
    )
    lines += [f"  error: {e}" for e in c["errors"]]
    return lines


def p99_ms(values: Sequence[float]) -> float:
    return _percentile(sorted(values), 0.99) * 1000


@dataclass
class Repeats:
    """The runs of one backend; the verdicts use the median of the valid runs' p99s (a run whose checks
    failed is shown, but does not count, unless no run is valid)."""

    backend: str
    results: list[Result] = field(default_factory=list)

    @property
    def counted(self) -> list[Result]:
        valid = [r for r in self.results if r.checks["ok"]]
        return valid or self.results

    def p99_all(self, results: Sequence[Result] | None = None) -> list[float]:
        return [p99_ms(r.timings.all()) for r in (self.results if results is None else results)]

    def p99_submit(self, results: Sequence[Result] | None = None) -> list[float]:
        return [
            p99_ms(r.timings.per_step[SUBMIT_STEP]) for r in (self.results if results is None else results)
        ]

    def median_run(self) -> Result:
        """The counted run with the median p99 over all steps (the lower middle one for an even count)."""
        ordered = sorted(self.counted, key=lambda r: p99_ms(r.timings.all()))
        return ordered[(len(ordered) - 1) // 2]


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2] if ordered else 0.0


def _word(value: float, goal: float) -> str:
    # The words of throughput.py: PASS when the goal is met, BELOW (the goal) when not.
    return "PASS" if value <= goal else "BELOW"


def verdicts(runs: Repeats) -> list[str]:
    counted = runs.counted
    n = len(counted)
    of = f"median of {n}" if n > 1 else "1 run"
    if len(counted) < len(runs.results):
        of += f" valid of {len(runs.results)}"
    elif not all(r.checks["ok"] for r in counted):
        of += ", NOT VALID"
    every, submit = _median(runs.p99_all(counted)), _median(runs.p99_submit(counted))
    return [
        f"{runs.backend}: p99 over all steps {every:.1f} ms ({of}): {_word(every, GOAL_MS)} "
        f"(goal ≤ {GOAL_MS:.0f} ms)",
        f"{runs.backend}: p99 of {SUBMIT_STEP} {submit:.1f} ms ({of}): {_word(submit, GOAL_SUBMIT_MS)} "
        f"(goal ≤ {GOAL_SUBMIT_MS:.0f} ms)",
    ]


def repeats_report(runs: Repeats) -> list[str]:
    """Every repeat in one line; then the median run (by p99 over all steps) in full."""
    lines = []
    if len(runs.results) > 1:
        lines.append(
            f"{runs.backend}: {len(runs.results)} repeats, each with a fresh database and bot process"
        )
        for n, (result, every, submit) in enumerate(
            zip(runs.results, runs.p99_all(), runs.p99_submit(), strict=True), 1
        ):
            ok = "ok" if result.checks["ok"] else "FAILED"
            lines.append(
                f"  repeat {n}: {result.updates / result.seconds:.1f} updates/s offered, "
                f"p99 all steps {every:.1f} ms, p99 {SUBMIT_STEP} {submit:.1f} ms, checks {ok}"
                + ("" if result.checks["ok"] else " (does not count)")
            )
        lines.append("  the median run (by p99 over all steps) in full:")
    return lines + report(runs.median_run())


def versions() -> str:
    found = [f"python {platform.python_version()}"]
    for dist in ("python-telegram-bot", "aiohttp", "SQLAlchemy", "aiosqlite", "asyncpg"):
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(f"{dist} ?")
    return ", ".join(found)


def machine() -> str:
    found = f"{platform.machine()}, {os.cpu_count()} CPUs"
    with contextlib.suppress(OSError):
        found += ", load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    return found


# --- main ---------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--residents", type=int, default=100, help="residents doing an intake at once (default 100)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_RESIDENTS} residents, think {QUICK_THINK} s unless --think is given: what CI runs",
    )
    p.add_argument(
        "--think",
        type=float,
        default=None,
        metavar="SECONDS",
        help="before each update a resident pauses uniformly 0.5-1.5 times this, not timed "
        f"(default {DEFAULT_THINK}; 0: the next update as soon as the answer is there)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of the think times (default 1)")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run the webhook app in the benchmark's own process and event loop, not as "
        "`initiatiefbot webhook`",
    )
    p.add_argument(
        "--warmup", type=int, default=3, help="residents doing one untimed intake first (default 3)"
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help=f"runs per backend, each with a fresh database and bot process; the verdicts use the median "
        f"of their p99s (default {DEFAULT_REPEAT}; 1 with --quick)",
    )
    add_backend_options(p)
    return p


async def _main(args: argparse.Namespace) -> int:
    residents = QUICK_RESIDENTS if args.quick else args.residents
    think = args.think if args.think is not None else (QUICK_THINK if args.quick else DEFAULT_THINK)
    options = Options(residents, args.warmup, Thinking(think, args.seed), args.in_process)
    thinking = (
        f"think {think:g} s (uniform {0.5 * think:g}-{1.5 * think:g} s before each update, seed {args.seed})"
        if think > 0
        else "no think time (each update as soon as the previous answer is there)"
    )
    where = (
        "in the benchmark's process and event loop (--in-process)"
        if args.in_process
        else "`python -m bot webhook` in its own process"
    )
    print(
        f"initiatiefbot webhook latency: {residents} residents at once, {len(INTAKE)} updates each, "
        f"{thinking}, after {args.warmup} warm-up intakes"
    )
    print(f"  bot: {where}; fake Bot API and residents in the benchmark process")
    print(f"  {versions()}")
    print(f"  {machine()}")
    print()
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else DEFAULT_REPEAT)
    backends = args.backends.split(",")
    unknown = [b for b in backends if b not in ("sqlite", "postgresql")]
    if unknown:
        print(f"unknown backend {unknown[0]!r}", file=sys.stderr)
        return 2
    print(f"  {repeat} run(s) per backend; the verdicts use the median of the valid runs' p99s")
    print()
    done: list[Repeats] = []
    notes: list[str] = []
    for backend in backends:
        runs = Repeats(backend)
        for _ in range(repeat):
            if backend == "sqlite":
                runs.results.append(await run_sqlite(options))
                continue
            outcome = await run_postgresql(args.postgres_url, options)
            if isinstance(outcome, str):
                notes.append(outcome)
                break
            runs.results.append(outcome)
        if runs.results:
            done.append(runs)
            print("\n".join(repeats_report(runs)))
            print()
    for note in notes:
        print(note)
    for runs in done:
        print("\n".join(verdicts(runs)))
    return 0 if all(r.checks["ok"] for runs in done for r in runs.results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if (
        args.residents < 1
        or args.warmup < 0
        or (args.think is not None and not args.think >= 0)
        or (args.repeat is not None and args.repeat < 1)
    ):
        print("--residents and --repeat must be at least 1, --warmup and --think at least 0", file=sys.stderr)
        return 2
    try:
        return run_report(_main(args))
    except BotFailed as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
