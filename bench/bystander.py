"""A bystander's reply time while another resident floods the bot, against the same with nobody flooding.

The webhook app runs in this process on the embedded SQLite default with Telegram's real pacing (30
messages a second for the bot, one a second per chat after a burst of 4) against the fake Bot API of
the tests. In each round one resident sends ``FLOOD_LIMIT`` (20) messages at once; right after, a new
resident sends /start and the time until the greeting reaches the fake is measured. The same is
measured with nobody flooding, interleaved round by round, and reported side by side (a ratio: the
machine is shared and noisy).

Run from the repository root: ``.venv/bin/python bench/bystander.py [--rounds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from bench.common import BENCH_CONTACT_KEYS, prepare_database, run_report  # noqa: E402
from bench.latency import SECRET, _answers_seen, _free_port, _wait  # noqa: E402
from bot.settings import DEFAULT_FLOOD_LIMIT, Settings, resolve_config_path  # noqa: E402
from bot.web import SECRET_HEADER, build_web_app, webhook_path  # noqa: E402
from tests.fake_bot_api import FakeBotApi  # noqa: E402


async def _post(session: aiohttp.ClientSession, url: str, update: object) -> None:
    async with session.post(url, json=update, headers={SECRET_HEADER: SECRET}) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"webhook answered {response.status}")


async def run(rounds: int) -> int:
    with tempfile.TemporaryDirectory(prefix="initiatiefbot-bystander-") as folder:
        database_url = f"sqlite+aiosqlite:///{folder}/bot.db"
        settings = Settings(
            database_url=database_url,
            config_path=resolve_config_path("zutphen"),
            data_encryption_keys=BENCH_CONTACT_KEYS,
        )
        await prepare_database(database_url, settings.municipality)
        async with FakeBotApi() as fake:
            for staff in (900_001, 900_002, 900_003):  # staff opened the bot once, so it may write to them
                await fake.user(staff, "Staff").send_text("/start")
            settings = Settings(
                telegram_bot_token=fake.token,
                telegram_api_base_url=fake.base_url,
                database_url=database_url,
                config_path=resolve_config_path("zutphen"),
                telegram_webhook_secret=SECRET,
                data_encryption_keys=BENCH_CONTACT_KEYS,
            )
            runner = web.AppRunner(build_web_app(settings), access_log=None)
            await runner.setup()
            port = _free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            url = f"http://127.0.0.1:{port}{webhook_path(SECRET)}"
            times: dict[str, list[float]] = {"alone": [], "beside a flood": []}
            try:
                async with aiohttp.ClientSession() as session:
                    for n in range(rounds + 1):  # round 0 warms up and is not counted
                        for label in ("alone", "beside a flood"):
                            if label == "beside a flood":
                                flooder = fake.user(930_000_000 + n, "Flooder", language_code="nl")
                                updates = [
                                    await flooder.send_text(f"bericht {i}")
                                    for i in range(DEFAULT_FLOOD_LIMIT)
                                ]
                                await asyncio.gather(*(_post(session, url, u) for u in updates))
                            bystander = fake.user(
                                940_000_000 + 2 * n + len(label) % 2, "Bea", language_code="nl"
                            )
                            started = time.perf_counter()
                            await _post(session, url, await bystander.send_text("/start"))
                            await _wait(
                                fake, lambda c=bystander.chat_id: _answers_seen(fake, c) > 0, "greeting"
                            )
                            if n:
                                times[label].append((time.perf_counter() - started) * 1000)
                            await asyncio.sleep(1.0)  # the flooding chat's paced replies go on meanwhile
            finally:
                await runner.cleanup()
    print(f"bystander's /start until the greeting reached Telegram, {rounds} rounds (SQLite, real pacing)")
    print(f"{'':16} {'median ms':>10} {'max ms':>10}")
    for label, values in times.items():
        print(f"{label:16} {statistics.median(values):10.1f} {max(values):10.1f}")
    ratio = statistics.median(times["beside a flood"]) / statistics.median(times["alone"])
    print(f"ratio beside a flood / alone (medians): {ratio:.2f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds of each kind (default 10)")
    args = parser.parse_args(argv)
    return run_report(run(args.rounds))


if __name__ == "__main__":
    sys.exit(main())
