"""CPU time per sendMessage of the outbox's transport on PTB's HTTPXRequest and on bot.bot_api's
AiohttpRequest, side by side, against one local aiohttp server in this process (in a thread of its
own). A report: the exit code is 0.

Run from the repository root: ``.venv/bin/python bench/bot_api.py`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from aiohttp import web  # noqa: E402
from telegram import Bot, InlineKeyboardMarkup  # noqa: E402
from telegram.request import BaseRequest, HTTPXRequest  # noqa: E402

from bot.bot_api import SEND_CONNECTIONS, AiohttpRequest  # noqa: E402
from bot.transport import SendTimeouts, TelegramTransport  # noqa: E402

TOKEN = "7000000001:AAbenchmark-token-not-real-0000000000"
BOT_USER = {"id": 7000000001, "is_bot": True, "first_name": "Initiatiefbot", "username": "bench_bot"}
CHAT = {"id": 4242, "first_name": "Anna", "type": "private"}
KEYBOARD = {
    "inline_keyboard": [[{"text": "Ja", "callback_data": "ja"}, {"text": "Nee", "callback_data": "nee"}]]
}
# What the dispatcher queues for a question with two buttons.
PAYLOAD = {"chat_id": CHAT["id"], "text": "Vraag 3 van 11: in welke wijk is het?", "reply_markup": KEYBOARD}
SENT = json.dumps(
    {
        "ok": True,
        "result": {
            "message_id": 17,
            "from": BOT_USER,
            "chat": CHAT,
            "date": 1_790_000_000,
            "text": PAYLOAD["text"],
            "reply_markup": KEYBOARD,
        },
    }
).encode()
HARNESSES: dict[str, Callable[[], BaseRequest]] = {
    "HTTPXRequest": lambda: HTTPXRequest(connection_pool_size=SEND_CONNECTIONS),
    "AiohttpRequest": lambda: AiohttpRequest(connection_pool_size=SEND_CONNECTIONS),
}
# For scale: the transport as it was, PTB objects in and out (InlineKeyboardMarkup, Message), on httpx.
BEFORE = "send_message+httpx"


async def send_with_objects(bot: Bot, payload: dict[str, Any]) -> int:
    markup = InlineKeyboardMarkup.de_json(payload["reply_markup"], bot)
    timeouts = SendTimeouts().as_kwargs()
    message = await bot.send_message(payload["chat_id"], payload["text"], reply_markup=markup, **timeouts)
    return message.message_id


@dataclass
class Run:
    cpu: float  # seconds of process CPU (client and server)
    client_cpu: float  # seconds of CPU of the client's thread alone
    wall: float


@contextmanager
def bot_api_server() -> Iterator[str]:
    """A Bot API that answers getMe and sendMessage, in a thread of its own (so its CPU can be told
    apart from the client's); yields its base URL."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        if request.match_info["method"] == "getMe":
            return web.json_response({"ok": True, "result": BOT_USER})
        return web.Response(body=SENT, content_type="application/json")

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", answer)
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/bot"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def measure(
    base_url: str, make_request: Callable[[], BaseRequest], calls: int, warmup: int, *, objects: bool = False
) -> Run:
    """``calls`` outbox sends of one question, one after another, after ``warmup`` untimed ones."""
    async with Bot(TOKEN, base_url=base_url, request=make_request()) as bot:
        transport = TelegramTransport(bot)

        async def send() -> int | None:
            if objects:
                return await send_with_objects(bot, dict(PAYLOAD))
            return await transport.deliver("sendMessage", dict(PAYLOAD))

        for _ in range(warmup):
            await send()
        gc.collect()
        cpu, client_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
        for _ in range(calls):
            message_id = await send()
        run = Run(time.process_time() - cpu, time.thread_time() - client_cpu, time.perf_counter() - wall)
        assert message_id == 17
        return run


async def measure_all(base_url: str, args: argparse.Namespace) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {name: [] for name in (BEFORE, *HARNESSES)}
    for _ in range(args.repeat):  # side by side: each repeat runs all
        make_httpx = HARNESSES["HTTPXRequest"]
        runs[BEFORE].append(await measure(base_url, make_httpx, args.calls, args.warmup, objects=True))
        for name, make_request in HARNESSES.items():
            runs[name].append(await measure(base_url, make_request, args.calls, args.warmup))
    return runs


def report(runs: dict[str, list[Run]], args: argparse.Namespace) -> None:

    def per_call(name: str, field: str) -> float:
        return statistics.median(getattr(run, field) for run in runs[name]) / args.calls * 1e6

    print(
        f"python {platform.python_version()}, python-telegram-bot {metadata.version('python-telegram-bot')}, "
        f"aiohttp {metadata.version('aiohttp')}, httpx {metadata.version('httpx')}"
    )
    print(f"{args.calls} sendMessage calls one after another, median of {args.repeat} repeats, µs per call\n")
    print(f"{'':<26}{'CPU':>8}{'client CPU':>12}{'wall':>8}")
    for name in runs:
        label = f"({name})" if name == BEFORE else f"deliver, {name}"
        print(
            f"{label:<26}{per_call(name, 'cpu'):>8.0f}{per_call(name, 'client_cpu'):>12.0f}"
            f"{per_call(name, 'wall'):>8.0f}"
        )
    for label, old in (("ratio aiohttp/httpx", "HTTPXRequest"), ("ratio aiohttp/before", BEFORE)):
        cpu, client, wall = (
            per_call("AiohttpRequest", f) / per_call(old, f) for f in ("cpu", "client_cpu", "wall")
        )
        print(f"{label:<26}{cpu:>8.2f}{client:>12.2f}{wall:>8.2f}")
    print(
        "\nCPU: time.process_time (client and server); client CPU: time.thread_time of the client's thread."
        f"\n({BEFORE}): the transport before, Bot.send_message with PTB objects, on HTTPXRequest."
    )
    if args.json:
        print(json.dumps({name: [vars(run) for run in name_runs] for name, name_runs in runs.items()}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per run (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls first (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per request class (default 3)")
    parser.add_argument("--json", action="store_true", help="also print every run as JSON")
    args = parser.parse_args()
    with bot_api_server() as base_url:
        runs = asyncio.run(measure_all(base_url, args))
    report(runs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
