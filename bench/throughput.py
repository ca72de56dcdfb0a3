"""Updates per second of the full bot next to bare PTB handlers (with and without one SQLite write per
update), in-process, against a stub Bot API.

Run from the repository root: ``.venv/bin/python bench/throughput.py`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import itertools
import json
import logging
import platform
import pstats
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import aiosqlite  # noqa: E402
from sqlalchemy import Engine, event  # noqa: E402
from telegram import Message, Update  # noqa: E402
from telegram.ext import (  # noqa: E402
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest, RequestData  # noqa: E402

from bench.common import BENCH_CONTACT_KEYS, database_counts, prepare_database, run_report  # noqa: E402
from bot.app import build_application  # noqa: E402
from bot.settings import Settings, resolve_config_path  # noqa: E402

# full/bare and full/(bare + one SQLite write) updates per second, medians measured in the same run.
GOAL = 0.3
GOAL_WRITE = 0.75
FULL, BARE, WRITE = "full stack", "bare PTB", "PTB + SQLite write"
TOKEN = "7000000001:AAbenchmark-token-not-real-0000000000"
BOT_USER: dict[str, Any] = {
    "id": 7000000001,
    "is_bot": True,
    "first_name": "Initiatiefbot",
    "username": "initiatiefbot_bench_bot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
    "can_connect_to_business": False,
    "has_main_web_app": False,
}
FIRST_NAMES = ("Anna", "Bram", "Chantal", "Daan", "Emma", "Fatima", "Gerrit", "Hanna", "Ilse", "Jeroen")
# Methods whose result is a message: each one is something the resident sees.
MESSAGE_METHODS = frozenset({"sendMessage", "sendPhoto", "editMessageText", "editMessageReplyMarkup"})

log = logging.getLogger("bench")


# --- the stub Bot API ---------------------------------------------------------------------------


@dataclass
class ChatLog:
    """Message ids per private chat, shared by both sides as in Telegram, and the bot's last message."""

    _next_ids: dict[int, itertools.count[int]] = field(default_factory=dict)
    last_bot_message: dict[int, dict[str, Any]] = field(default_factory=dict)

    def next_message_id(self, chat_id: int) -> int:
        counter = self._next_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)


class StubBotApi(BaseRequest):
    """Answers Bot API calls at once with valid JSON bodies, counting the calls per method."""

    def __init__(self, chats: ChatLog) -> None:
        self.chats = chats
        self.calls: Counter[str] = Counter()

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = None,
        write_timeout: object = None,
        connect_timeout: object = None,
        pool_timeout: object = None,
    ) -> tuple[int, bytes]:
        endpoint = url.rsplit("/", 1)[-1]
        self.calls[endpoint] += 1
        params = request_data.parameters if request_data is not None else {}
        result = self._answer(endpoint, params)
        if result is None:
            body = {"ok": False, "error_code": 404, "description": "Not Found: method not found"}
            return 404, json.dumps(body).encode()
        return 200, json.dumps({"ok": True, "result": result}, ensure_ascii=False).encode()

    def _answer(self, endpoint: str, params: dict[str, Any]) -> object:
        if endpoint == "getMe":
            return BOT_USER
        if endpoint in ("setMyCommands", "answerCallbackQuery", "deleteWebhook"):
            return True
        if endpoint in ("sendMessage", "sendPhoto"):
            chat_id = int(params["chat_id"])
            message = self._message(chat_id, self.chats.next_message_id(chat_id), params)
            if endpoint == "sendPhoto":
                message["photo"] = _photo_sizes(str(params["photo"]))
                if "caption" in params:
                    message["caption"] = params["caption"]
            else:
                message["text"] = params["text"]
            if "reply_markup" in message or "keyboard" not in (params.get("reply_markup") or {}):
                # A message that only brings Telegram's keyboard is not one a button is pressed on.
                self.chats.last_bot_message[chat_id] = message
            return message
        if endpoint in ("editMessageText", "editMessageReplyMarkup"):
            chat_id = int(params["chat_id"])
            message_id = int(params["message_id"])
            old = self.chats.last_bot_message.get(chat_id)
            message = self._message(chat_id, message_id, params)
            message["edit_date"] = int(time.time())
            if endpoint == "editMessageText":
                message["text"] = params["text"]
            elif old is not None and old["message_id"] == message_id and "text" in old:
                message["text"] = old["text"]
            if old is None or old["message_id"] <= message_id:
                self.chats.last_bot_message[chat_id] = message
            return message
        return None

    @staticmethod
    def _message(chat_id: int, message_id: int, params: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": BOT_USER,
            "chat": {"id": chat_id, "type": "private", "first_name": "Bewoner"},
            "date": int(time.time()),
        }
        if (params.get("reply_markup") or {}).get("inline_keyboard"):
            # Like Telegram: a message shows only inline keyboards (a reply keyboard is not part of it).
            message["reply_markup"] = params["reply_markup"]
        return message


def _photo_sizes(file_id: str) -> list[dict[str, Any]]:
    return [
        {"file_id": f"{file_id}-s", "file_unique_id": "AQADs", "width": 90, "height": 67, "file_size": 1200},
        {"file_id": file_id, "file_unique_id": "AQADm", "width": 1280, "height": 960, "file_size": 123_456},
    ]


# --- resident traffic ---------------------------------------------------------------------------

# One full intake from /start to "Indienen". "{name}" is replaced by the resident's first name.
SCRIPT: tuple[tuple[str, str], ...] = (
    ("command", "/start"),
    ("button", "menu:new"),
    ("text", "Drie bankjes bij de speeltuin, zodat ouderen en ouders even kunnen rusten."),
    ("text", "Bankjes in het park"),
    ("button", "intake:theme:groen"),
    ("button", "intake:wijk:WK030101"),
    ("text", "Wij verven de bankjes en houden ze schoon."),
    ("text", "ongeveer 12"),
    ("button", "intake:needs:geld"),
    ("button", "intake:needs:!done"),
    ("text", "€ 1.250"),
    ("button", "intake:photo:!skip"),
    ("button", "intake:contact:!skip"),
    ("text", "{name}"),
    ("button", "intake:confirm:indienen"),
)
SUBMIT_DATA = "intake:confirm:indienen"


@dataclass
class Resident:
    user_id: int
    first_name: str
    position: int = 0  # index into SCRIPT of the next action

    @property
    def user(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "is_bot": False,
            "first_name": self.first_name,
            "last_name": "de Vries",
            "language_code": "nl",
        }

    @property
    def chat(self) -> dict[str, Any]:
        return {"id": self.user_id, "type": "private", "first_name": self.first_name, "last_name": "de Vries"}


class Traffic:
    """Residents each doing the intake over and over, interleaved round-robin like real traffic."""

    def __init__(self, residents: int, chats: ChatLog) -> None:
        self.residents = [
            Resident(910_000_001 + i, FIRST_NAMES[i % len(FIRST_NAMES)]) for i in range(residents)
        ]
        self.chats = chats
        self.submitted = 0
        self._update_ids = itertools.count(500_000_001)
        self._query_ids = itertools.count(1)

    def next_round(self, limit: int) -> list[dict[str, Any]]:
        """The next update (as Telegram's JSON) of up to ``limit`` residents, one each.

        A round is built only after the previous one was processed: a button press refers to the
        message the bot sent last in that chat, as in Telegram.
        """
        return [self._next(r) for r in self.residents[:limit]]

    def _next(self, resident: Resident) -> dict[str, Any]:
        kind, value = SCRIPT[resident.position]
        resident.position = (resident.position + 1) % len(SCRIPT)
        update_id = next(self._update_ids)
        now = int(time.time())
        if kind == "button":
            if value == SUBMIT_DATA:
                self.submitted += 1
            message = self.chats.last_bot_message.get(resident.user_id) or {
                "message_id": self.chats.next_message_id(resident.user_id),
                "from": BOT_USER,
                "chat": resident.chat,
                "date": now,
                "text": "…",
            }
            query = {
                "id": str(4_000_000_000_000 + next(self._query_ids)),
                "from": resident.user,
                "message": message,
                "chat_instance": str(-8_000_000_000 - resident.user_id),
                "data": value,
            }
            return {"update_id": update_id, "callback_query": query}
        text = value.format(name=resident.first_name)
        msg: dict[str, Any] = {
            "message_id": self.chats.next_message_id(resident.user_id),
            "from": resident.user,
            "chat": resident.chat,
            "date": now,
            "text": text,
        }
        if kind == "command":
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return {"update_id": update_id, "message": msg}


# --- harnesses ----------------------------------------------------------------------------------


@dataclass
class Run:
    """One timed pass of a harness."""

    harness: str
    updates: int
    seconds: float
    latencies: list[float]
    build_seconds: float  # Update.de_json of the timed updates: not in ``seconds``
    calls: dict[str, int]
    submitted_expected: int = 0
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Options:
    updates: int
    warmup: int
    residents: int
    repeat: int


async def drive(
    app: Application,
    traffic: Traffic,
    opts: Options,
    *,
    profiler: cProfile.Profile | None = None,
) -> tuple[float, list[float], float]:
    """Feed warm-up then timed updates; return (timed seconds, per-update latencies, de_json seconds)."""
    bot = app.bot
    done = 0
    target = opts.warmup + opts.updates
    seconds = 0.0
    build = 0.0
    latencies: list[float] = []
    while done < target:
        warm = done < opts.warmup
        limit = min(len(traffic.residents), (opts.warmup if warm else target) - done)
        started = time.perf_counter()
        batch = [Update.de_json(data, bot) for data in traffic.next_round(limit)]
        built = time.perf_counter()
        if warm:
            for update in batch:
                await app.process_update(update)
            await replies_sent(app)
        else:
            build += built - started
            if profiler is not None:
                profiler.enable()
            round_start = time.perf_counter()
            for update in batch:
                before = time.perf_counter()
                await app.process_update(update)
                latencies.append(time.perf_counter() - before)
            await replies_sent(app)  # the next round presses buttons in these replies
            seconds += time.perf_counter() - round_start
            if profiler is not None:
                profiler.disable()
        done += len(batch)
    return seconds, latencies, build


async def replies_sent(app: Application) -> None:
    """Wait until the replies ``run`` sends beside the next updates have gone out (bare PTB: none)."""
    while sending := app.bot_data.get("sending"):
        await asyncio.gather(*list(sending), return_exceptions=True)


def _settings(database_url: str) -> Settings:
    # Telegram's pace (30 messages/s) would measure Telegram, not the bot: the stub has no limits.
    return Settings(
        telegram_bot_token=TOKEN,
        database_url=database_url,
        config_path=resolve_config_path("zutphen"),
        data_encryption_keys=BENCH_CONTACT_KEYS,
        telegram_max_per_second=0,
        telegram_chat_max_per_second=0,
        # The scripted residents type faster than people: flood control would drop their updates.
        flood_limit=1_000_000,
    )


async def run_full(opts: Options, *, profiler: cProfile.Profile | None = None) -> Run:
    """The whole bot: PTB → dispatcher (one SQLite transaction) → outbox → stub Bot API."""
    with tempfile.TemporaryDirectory(prefix="initiatiefbot-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"
        await prepare_database(url, _settings(url).municipality)
        chats = ChatLog()
        stub = StubBotApi(chats)
        # As in production: no PTB rate limiter (the outbox paces; the bench's settings switch it off).
        app = build_application(_settings(url), request=stub)
        assert app.post_init is not None and app.post_shutdown is not None
        traffic = Traffic(opts.residents, chats)
        await app.initialize()
        try:
            await app.post_init(app)  # opens the database and starts the outbox, as run_polling would
            gc.collect()
            seconds, latencies, build = await drive(app, traffic, opts, profiler=profiler)
        finally:
            await app.post_shutdown(app)
            await app.shutdown()
        run = Run(FULL, opts.updates, seconds, latencies, build, dict(stub.calls), traffic.submitted)
        run.checks = await _check_database(url, run, opts)
    return run


def _bare_application(
    stub: StubBotApi, before_reply: Callable[[Update], Awaitable[None]] | None
) -> Application:
    """PTB with one handler per kind that answers every update with a single reply (and answers buttons),
    after awaiting ``before_reply(update)`` when given."""

    async def on_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        if before_reply is not None:
            await before_reply(update)
        await update.message.reply_text("Dank je, ontvangen.")

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and isinstance(query.message, Message)
        if before_reply is not None:
            await before_reply(update)
        await query.answer()
        await query.message.reply_text("Dank je, ontvangen.")

    app = Application.builder().token(TOKEN).request(stub).get_updates_request(stub).build()
    app.add_handler(MessageHandler(filters.ALL, on_message))
    app.add_handler(CallbackQueryHandler(on_button))
    return app


async def _drive_bare(
    name: str, opts: Options, before_reply: Callable[[Update], Awaitable[None]] | None = None
) -> Run:
    chats = ChatLog()
    stub = StubBotApi(chats)
    app = _bare_application(stub, before_reply)
    await app.initialize()
    traffic = Traffic(opts.residents, chats)
    try:
        gc.collect()
        seconds, latencies, build = await drive(app, traffic, opts)
    finally:
        await app.shutdown()
    run = Run(name, opts.updates, seconds, latencies, build, dict(stub.calls))
    total = opts.warmup + opts.updates
    messages = sum(n for method, n in stub.calls.items() if method in MESSAGE_METHODS)
    run.checks = {"messages": messages, "ok": messages >= total}
    if messages < total:
        run.checks["error"] = f"{name} sent {messages} messages for {total} updates"
    return run


async def run_bare(opts: Options) -> Run:
    """PTB alone: one handler that answers every update with a single reply (and answers buttons)."""
    return await _drive_bare(BARE, opts)


# The PRAGMAs storage/db.py sets on every SQLite connection of the bot (copied, not imported: this
# harness is what a plain bot would do, and must not change when our storage does).
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)


async def run_write(opts: Options) -> Run:
    """Bare PTB plus what a plain bot does at least: one durable SQLite write per update (aiosqlite,
    INSERT one row and COMMIT, with the bot's PRAGMAs), then the same single reply."""
    with tempfile.TemporaryDirectory(prefix="initiatiefbot-bench-write-") as tmp:
        db = await aiosqlite.connect(Path(tmp) / "plain.sqlite3")
        try:
            for pragma in SQLITE_PRAGMAS:
                await db.execute(pragma)
            await db.execute(
                "CREATE TABLE updates (update_id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, "
                "text TEXT NOT NULL, received_at TEXT NOT NULL)"
            )
            await db.commit()

            async def write(update: Update) -> None:
                user = update.effective_user
                assert user is not None
                if update.callback_query is not None:
                    text = update.callback_query.data or ""
                else:
                    assert update.message is not None
                    text = update.message.text or ""
                received = datetime.now(UTC).isoformat()
                await db.execute(
                    "INSERT INTO updates (update_id, user_id, text, received_at) VALUES (?, ?, ?, ?)",
                    (update.update_id, user.id, text, received),
                )
                await db.commit()

            run = await _drive_bare(WRITE, opts, write)
            async with db.execute("SELECT count(*) FROM updates") as cursor:
                row = await cursor.fetchone()
            async with db.execute("PRAGMA journal_mode") as cursor:
                mode = await cursor.fetchone()
        finally:
            await db.close()
    total = opts.warmup + opts.updates
    written = int(row[0]) if row else 0
    run.checks["rows_written"] = written
    run.checks["journal_mode"] = mode[0] if mode else "?"
    errors = [run.checks["error"]] if "error" in run.checks else []
    if written != total:
        errors.append(f"{WRITE} wrote {written} rows for {total} updates")
    if run.checks["journal_mode"] != "wal":
        errors.append(f"{WRITE}: journal_mode is {run.checks['journal_mode']}, not wal")
    if errors:
        run.checks["ok"] = False
        run.checks["error"] = "; ".join(errors)
    return run


async def _check_database(url: str, run: Run, opts: Options) -> dict[str, Any]:
    """Did every update get through: claimed, answered, and every intake submitted?"""
    total = opts.warmup + opts.updates
    counts = await database_counts(url)
    initiatives, processed, outbox = counts.initiatives, counts.updates_claimed, counts.outbox
    messages = sum(n for method, n in run.calls.items() if method in MESSAGE_METHODS)
    via_outbox = messages + run.calls.get("answerCallbackQuery", 0)
    errors = []
    if not run.submitted_expected:
        errors.append(f"nothing to submit: give at least {len(SCRIPT)} updates per resident")
    elif not initiatives:
        errors.append("nothing was submitted")
    elif initiatives != run.submitted_expected:
        errors.append(f"{initiatives} initiatives submitted, expected {run.submitted_expected}")
    if processed != total:
        errors.append(f"{processed} updates claimed, expected {total}")
    if messages < total:
        errors.append(f"only {messages} messages sent for {total} updates")
    if set(outbox) - {"sent"}:
        errors.append(f"outbox rows not sent: {outbox}")
    sent = outbox.get("sent", 0)
    if sent > via_outbox:
        errors.append(f"{sent} outbox rows marked sent, but only {via_outbox} Bot API calls made")
    checks: dict[str, Any] = {
        "initiatives": initiatives,
        "initiatives_expected": run.submitted_expected,
        "updates_claimed": processed,
        "messages": messages,
        "outbox": outbox,
        # More calls than rows: a row went out twice (the sweep and the post-commit send both took it).
        "duplicate_sends": via_outbox - sent,
        "ok": not errors,
    }
    if errors:
        checks["error"] = "; ".join(errors)
    return checks


# --- reporting ----------------------------------------------------------------------------------


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def summary(run: Run) -> dict[str, Any]:
    ordered = sorted(run.latencies)
    return {
        "harness": run.harness,
        "updates": run.updates,
        "seconds": round(run.seconds, 4),
        "updates_per_second": round(run.per_second, 1),
        "ms_mean": round(statistics.fmean(ordered) * 1000, 3) if ordered else 0.0,
        "ms_p50": round(_percentile(ordered, 0.50) * 1000, 3),
        "ms_p95": round(_percentile(ordered, 0.95) * 1000, 3),
        "ms_p99": round(_percentile(ordered, 0.99) * 1000, 3),
        "de_json_us_per_update": round(run.build_seconds / max(run.updates, 1) * 1e6, 1),
        "bot_api_calls": dict(sorted(run.calls.items())),
        "checks": run.checks,
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("python-telegram-bot", "SQLAlchemy", "aiosqlite"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "?"
    return found


@dataclass(frozen=True)
class Ratio:
    label: str
    value: float
    goal: float

    @property
    def verdict(self) -> str:
        return "PASS" if self.value >= self.goal else "BELOW"

    def as_dict(self) -> dict[str, Any]:
        return {"ratio": round(self.value, 4), "goal": self.goal, "verdict": self.verdict}


def ratios(medians: dict[str, Run]) -> list[Ratio]:
    """full/bare and full/(PTB + SQLite write), from the median runs, with their goals."""
    full = medians[FULL].per_second

    def of(other: str) -> float:
        rate = medians[other].per_second
        return full / rate if rate else 0.0

    return [Ratio("full/bare", of(BARE), GOAL), Ratio("full/(PTB + SQLite write)", of(WRITE), GOAL_WRITE)]


def median_run(runs: Sequence[Run]) -> Run:
    """The run with the median updates/s (the lower one of the middle two for an even count)."""
    ordered = sorted(runs, key=lambda r: r.per_second)
    return ordered[(len(ordered) - 1) // 2]


def print_table(medians: dict[str, Run], opts: Options, all_runs: dict[str, list[float]]) -> None:
    full = medians[FULL]
    v = versions()
    print(
        f"initiatiefbot throughput: {opts.updates} updates timed after {opts.warmup} warm-up, "
        f"{opts.residents} residents, median of {opts.repeat}"
    )
    print("  " + ", ".join(f"{k} {val}" for k, val in v.items()) + f", {platform.machine()}")
    print()
    header = f"{'harness':<18} {'updates':>7} {'seconds':>8} {'updates/s':>10} {'mean ms':>8} "
    header += f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"
    print(header)
    for run in medians.values():
        s = summary(run)
        print(
            f"{run.harness:<18} {s['updates']:>7} {s['seconds']:>8.3f} {s['updates_per_second']:>10.1f} "
            f"{s['ms_mean']:>8.3f} {s['ms_p50']:>7.3f} {s['ms_p95']:>7.3f} {s['ms_p99']:>7.3f}"
        )
    print()
    for ratio in ratios(medians):
        print(f"ratio {ratio.label}: {ratio.value:.3f}  {ratio.verdict} (goal ≥ {ratio.goal})")
    for name, rates in all_runs.items():
        print(f"  {name} updates/s per repeat: " + ", ".join(f"{r:.0f}" for r in rates))
    print(
        f"  Update.de_json (not timed, same in all): {summary(full)['de_json_us_per_update']:.0f} µs/update"
    )
    w = medians[WRITE].checks
    print(f"  {WRITE}: {w.get('rows_written')} rows written, journal_mode {w.get('journal_mode')}")
    print()
    print("Bot API calls (full stack, whole run incl. warm-up):")
    print("  " + ", ".join(f"{m}={n}" for m, n in sorted(full.calls.items())))
    c = full.checks
    print(
        f"checks: {c.get('initiatives')} initiatives submitted (expected {c.get('initiatives_expected')}), "
        f"{c.get('updates_claimed')} updates claimed, {c.get('messages')} messages sent, "
        f"outbox {c.get('outbox')}: {'ok' if c.get('ok') else 'FAILED'}"
    )
    if c.get("duplicate_sends"):
        print(
            f"WARNING: {c['duplicate_sends']} Bot API call(s) more than outbox rows: a message went out "
            "twice (the outbox sweep and the post-commit send took the same row)"
        )


# --- profile ------------------------------------------------------------------------------------

_TABLE = re.compile(r"^(BEGIN \w+|INSERT INTO \w+|UPDATE \w+|DELETE FROM \w+|SELECT\b.*?\bFROM \w+|\w+)")


@dataclass
class DbMeter:
    """Statements by kind (SQLAlchemy events) and wall time awaiting the aiosqlite thread, by operation."""

    statements: Counter[str] = field(default_factory=Counter)
    ops: Counter[str] = field(default_factory=Counter)
    op_seconds: Counter[str] = field(default_factory=Counter)

    def on_statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        flat = " ".join(statement.split())
        match = _TABLE.match(flat)
        label = match.group(1) if match else flat[:30]
        if label.startswith("SELECT"):
            label = "SELECT … FROM " + label.rsplit(" FROM ", 1)[-1]
        self.statements[label] += 1

    def wrap(self, original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed(conn: aiosqlite.Connection, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
            name = getattr(fn, "__name__", type(fn).__name__)
            started = time.perf_counter()
            try:
                return await original(conn, fn, *args, **kw)
            finally:
                self.ops[name] += 1
                self.op_seconds[name] += time.perf_counter() - started

        return timed


def self_time_by_area(stats: pstats.Stats) -> Counter[str]:
    """Own (not cumulative) profiled time summed per package or project folder."""
    areas: Counter[str] = Counter()
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, name), (_, _, own, *_rest) in raw.items():
        areas[_area(filename, name)] += own
    return areas


def _area(filename: str, name: str) -> str:
    if filename == "~":  # C functions
        if "epoll" in name:
            return "idle in epoll (waiting for the aiosqlite thread)"
        if "SimpleQueue" in name or "_socket.socket" in name:
            return "thread hand-off (queue put, self-pipe wake-up)"
        for key in ("greenlet", "json", "sqlite3"):
            if key in name:
                return key
        return "other C functions (isinstance, dict, …)"
    if filename.startswith("<sqlalchemy"):
        return "sqlalchemy"
    path = Path(filename)
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1]
    if path.is_relative_to(REPO_ROOT):
        folder = path.relative_to(REPO_ROOT).parts[0]
        return "bench harness (loop, DB meter)" if folder == "bench" else f"project: {folder}/"
    for key in ("asyncio", "json", "selectors", "logging"):
        if key in path.parts or path.stem == key:
            return f"stdlib: {key}"
    return "stdlib: other"


async def profile_full(opts: Options, top: int) -> Run:
    profiler = cProfile.Profile()
    meter = DbMeter()
    original = aiosqlite.Connection._execute
    # Diagnostics only: aiosqlite runs SQLite in its own thread, which cProfile does not see.
    aiosqlite.Connection._execute = meter.wrap(original)  # type: ignore[method-assign]
    event.listen(Engine, "before_cursor_execute", meter.on_statement)
    try:
        run = await run_full(opts, profiler=profiler)
    finally:
        event.remove(Engine, "before_cursor_execute", meter.on_statement)
        aiosqlite.Connection._execute = original  # type: ignore[method-assign]
    total = opts.warmup + opts.updates
    s = summary(run)
    print(
        f"full stack under cProfile: {run.updates} updates in {run.seconds:.3f} s "
        f"({s['updates_per_second']:.0f}/s with profiler overhead)"
    )
    print()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(top)
    # Cumulative times of coroutines are unreliable (each resume counts, greenlets switch stacks);
    # own time summed by where the code lives is not.
    own = self_time_by_area(stats)
    timed = sum(own.values())
    print(f"Own time by area, per timed update (profiled total {timed / run.updates * 1000:.3f} ms):")
    for area, seconds in own.most_common():
        ms = seconds / run.updates * 1000
        print(f"  {ms:7.3f} ms  {seconds / timed:6.1%}  {area}")
    print()
    print(f"Database, per update (whole run incl. {opts.warmup} warm-up and setup, {total} updates):")
    print("  statements:")
    for label, n in meter.statements.most_common():
        print(f"    {n / total:6.2f}  {label}")
    print("  aiosqlite thread round trips (wall time awaited in the event loop):")
    for name, n in meter.ops.most_common():
        ms = meter.op_seconds[name] / total * 1000
        print(f"    {n / total:6.2f} × {name:<22} {ms:7.3f} ms")
    all_ms = sum(meter.op_seconds.values()) / total * 1000
    print(f"    {sum(meter.ops.values()) / total:6.2f} round trips per update, {all_ms:.3f} ms per update")
    return run


# --- main ---------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--updates", type=int, default=5000, help="timed updates per run (default 5000)")
    p.add_argument("--warmup", type=int, default=200, help="untimed updates first (default 200)")
    p.add_argument("--residents", type=int, default=50, help="residents chatting at once (default 50)")
    p.add_argument("--repeat", type=int, default=3, help="runs per harness; the median counts (default 3)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--profile", action="store_true", help="profile one full-stack run with cProfile")
    p.add_argument("--top", type=int, default=25, help="functions to list with --profile (default 25)")
    return p


async def _main(args: argparse.Namespace) -> int:
    opts = Options(args.updates, args.warmup, args.residents, args.repeat)
    if args.profile:
        run = await profile_full(opts, args.top)
        return 0 if run.checks.get("ok") else 1
    runners: dict[str, Callable[[Options], Awaitable[Run]]] = {
        BARE: run_bare,
        WRITE: run_write,
        FULL: run_full,
    }
    runs: dict[str, list[Run]] = {name: [] for name in runners}
    for _ in range(opts.repeat):  # interleaved, so drift (heat, other load) hits all alike
        for name, runner in runners.items():
            runs[name].append(await runner(opts))
    failed = [r.checks["error"] for rs in runs.values() for r in rs if not r.checks.get("ok")]
    medians = {name: median_run(runs[name]) for name in (FULL, BARE, WRITE)}
    rates = {name: [r.per_second for r in runs[name]] for name in medians}
    if args.json:
        found = ratios(medians)
        result = {
            "options": asdict(opts),
            "versions": versions(),
            "full": summary(medians[FULL]),
            "bare": summary(medians[BARE]),
            "write": summary(medians[WRITE]),
            # full/bare, as before, and both ratios with their goals
            "ratio": round(found[0].value, 4),
            "goal": GOAL,
            "verdict": found[0].verdict,
            "ratios": {r.label: r.as_dict() for r in found},
            "updates_per_second_per_repeat": {
                key: [round(r, 1) for r in rates[name]]
                for key, name in (("full", FULL), ("bare", BARE), ("write", WRITE))
            },
            "errors": failed,
        }
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print_table(medians, opts, rates)
    for error in failed:
        print(f"error: {error}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.updates < 1 or args.residents < 1 or args.repeat < 1 or args.warmup < 0:
        print("--updates, --residents and --repeat must be at least 1, --warmup at least 0", file=sys.stderr)
        return 2
    return run_report(_main(args))


if __name__ == "__main__":
    sys.exit(main())
